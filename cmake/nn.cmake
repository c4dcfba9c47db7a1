# septa::nn: the libtorch neural modules (Forward-Forward, unsupervised FF cells, backprop
# baseline). Included by the top-level CMakeLists only with -DSEPTA_WITH_TORCH=ON, so the CRF
# library and the Python package never depend on libtorch.

# Debian's libtorch-dev installs its config under /usr/lib/<multiarch>/cmake/Torch.
find_package(Torch REQUIRED)
find_package(ZLIB REQUIRED)  # the Fashion-MNIST files are gzip IDX

file(GLOB SEPTA_NN_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/nn/*.cc)
add_library(septa_nn STATIC ${SEPTA_NN_SOURCES})
target_include_directories(septa_nn
  PUBLIC ${PROJECT_SOURCE_DIR}/include
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
# Torch's headers are not -Wall -Wextra clean: include them as system headers.
target_include_directories(septa_nn SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
target_link_libraries(septa_nn PUBLIC ${TORCH_LIBRARIES} PRIVATE ZLIB::ZLIB Threads::Threads)

if(SEPTA_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  file(GLOB SEPTA_NN_TESTS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/nn/*_test.cc)
  add_executable(nn_tests ${SEPTA_NN_TESTS})
  target_include_directories(nn_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(nn_tests PRIVATE septa_nn GTest::gtest_main ZLIB::ZLIB Threads::Threads)
  # The CLI tests run `septa nn ...` (which runs septa-nn) as separate processes; both targets
  # are defined after this file is included, which add_dependencies and generator expressions
  # allow.
  gtest_discover_tests(nn_tests DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS nn TIMEOUT 300
               ENVIRONMENT "SEPTA_CLI=$<TARGET_FILE:septa>;SEPTA_FASHION_MNIST=/usr/share/datasets/fashion-mnist;OMP_WAIT_POLICY=passive;OPENBLAS_NUM_THREADS=2")
  add_dependencies(nn_tests septa septa-nn)
endif()

if(SEPTA_BUILD_BENCH)
  file(GLOB SEPTA_NN_BENCH_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bench/nn/*.cc)
  add_executable(nn_bench ${SEPTA_NN_BENCH_SOURCES})
  target_include_directories(nn_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(nn_bench PRIVATE septa_nn Threads::Threads)
endif()
