# septa::nn mt: multilingual translation on Debian's translation catalogs (direction-aware
# training, group-wise merging). Included by cmake/nn.cmake (-DSEPTA_WITH_TORCH=ON).
#
# septa_mt_text is torch-free (the .mo reader, cleaning, the corpus builder, chrF/BLEU and the
# sentencepiece tokenizer); its tests build without compiling a libtorch translation unit.
find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
find_library(SENTENCEPIECE_LIBRARY sentencepiece REQUIRED)
find_library(SENTENCEPIECE_TRAIN_LIBRARY sentencepiece_train REQUIRED)

add_library(septa_mt_text STATIC
  src/nn/data/mo.cc
  src/nn/methods/mt/clean.cc
  src/nn/methods/mt/corpus.cc
  src/nn/methods/mt/metrics.cc)
target_include_directories(septa_mt_text PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)

if(SEPTA_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  add_executable(mt_text_tests
    tests/nn/data/mo_test.cc
    tests/nn/methods/mt/clean_test.cc
    tests/nn/methods/mt/corpus_test.cc
    tests/nn/methods/mt/metrics_test.cc)
  target_link_libraries(mt_text_tests PRIVATE septa_mt_text GTest::gtest_main Threads::Threads)
  gtest_discover_tests(mt_text_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "nn;mt" TIMEOUT 120)
endif()
