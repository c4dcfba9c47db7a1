# septa::nn mt: multilingual translation on Debian's translation catalogs (direction-aware
# training, group-wise merging). Included by cmake/nn.cmake (-DSEPTA_WITH_TORCH=ON).
#
# septa_mt_text is torch-free (the .mo reader, cleaning, the corpus builder, chrF/BLEU, the
# analysis and the client of the septa-spm tokenizer process); its tests build without compiling a libtorch translation unit.
find_path(SENTENCEPIECE_INCLUDE_DIR sentencepiece_processor.h REQUIRED)
find_library(SENTENCEPIECE_LIBRARY sentencepiece REQUIRED)
find_library(SENTENCEPIECE_TRAIN_LIBRARY sentencepiece_train REQUIRED)

add_library(septa_mt_text STATIC
  src/nn/data/mo.cc
  src/nn/methods/mt/clean.cc
  src/nn/methods/mt/corpus.cc
  src/nn/methods/mt/metrics.cc
  src/nn/methods/mt/analysis.cc
  src/nn/methods/mt/tokenizer.cc)
target_include_directories(septa_mt_text PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(septa_mt_text PRIVATE septa_util)  # atomic file output

# septa-spm: sentencepiece in a process of its own. Debian's libsentencepiece bundles protobuf-lite
# 3.14 and exports its symbols; libtorch loads libprotobuf 3.21; in one process they collide (a
# crash in static initialisation, or protobuf's version check aborting), whatever the link order.
add_executable(septa-spm cli/spm_main.cc)
target_include_directories(septa-spm SYSTEM PRIVATE ${SENTENCEPIECE_INCLUDE_DIR})
target_link_libraries(septa-spm PRIVATE ${SENTENCEPIECE_TRAIN_LIBRARY} ${SENTENCEPIECE_LIBRARY})
add_dependencies(septa_mt_text septa-spm)
install(TARGETS septa-spm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The torch part (the transformer, training, merging, evaluation) joins septa_nn itself: the
# septa-nn executable and the nn tests link one library.
target_sources(septa_nn PRIVATE
  src/nn/methods/mt/evaluation.cc
  src/nn/methods/mt/merging.cc
  src/nn/methods/mt/settings.cc
  src/nn/methods/mt/study.cc
  src/nn/methods/mt/transformer.cc)
target_link_libraries(septa_nn PRIVATE septa_mt_text septa_merge)

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
  gtest_discover_tests(mt_text_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS nn TIMEOUT 120)
endif()

if(SEPTA_BUILD_TESTS)
  # The translation model and the tiny end-to-end study (torch); septa merge is run as a process.
  add_executable(mt_tests tests/nn/methods/mt/study_test.cc tests/nn/methods/mt/transformer_test.cc)
  target_include_directories(mt_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(mt_tests PRIVATE septa_nn septa_mt_text septa_safetensors GTest::gtest_main Threads::Threads)
  gtest_discover_tests(mt_tests DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS nn TIMEOUT 300
               ENVIRONMENT "SEPTA_CLI=$<TARGET_FILE:septa>;OMP_WAIT_POLICY=passive;OPENBLAS_NUM_THREADS=1")
  add_dependencies(mt_tests septa)
endif()

if(SEPTA_BUILD_BENCH)
  add_executable(mt_decode_bench bench/mt/decode_bench.cc)
  target_include_directories(mt_decode_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(mt_decode_bench PRIVATE septa_nn septa_mt_text Threads::Threads)
endif()
