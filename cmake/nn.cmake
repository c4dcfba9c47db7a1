# septa::nn: the libtorch neural modules (Forward-Forward, unsupervised FF cells, backprop
# baseline). Included by the top-level CMakeLists only with -DSEPTA_WITH_TORCH=ON, so the CRF
# library and the Python package never depend on libtorch.
#
# Debian's libtorch-dev (CPU) installs its config under /usr/lib/<multiarch>/cmake/Torch.
# SEPTA_TORCH_DIR points the build at another libtorch, e.g. the CUDA-enabled one bundled with
# PyTorch: -DSEPTA_TORCH_DIR=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")
set(SEPTA_TORCH_DIR "" CACHE PATH "CMake prefix of the libtorch to build the neural modules against (empty: the system's)")
# Without a usable Torch config (a PyTorch wheel whose Caffe2 config cannot find some CUDA
# component it checks for), name the headers and libraries directly, e.g. from
# torch.utils.cpp_extension.include_paths() and torch/lib/lib{torch,torch_cpu,torch_cuda,c10,c10_cuda}.so.
# --no-as-needed keeps libtorch_cuda.so linked: only its static initialisers register the CUDA backend.
set(SEPTA_TORCH_INCLUDE_DIRS "" CACHE STRING "libtorch include directories (;-list), bypassing find_package(Torch)")
set(SEPTA_TORCH_LIBRARIES "" CACHE STRING "libtorch shared libraries (;-list), bypassing find_package(Torch)")
if(SEPTA_TORCH_INCLUDE_DIRS AND SEPTA_TORCH_LIBRARIES)
  set(TORCH_INCLUDE_DIRS ${SEPTA_TORCH_INCLUDE_DIRS})
  set(TORCH_LIBRARIES "-Wl,--no-as-needed" ${SEPTA_TORCH_LIBRARIES} "-Wl,--as-needed")
  set(Torch_DIR "(named directly: ${SEPTA_TORCH_LIBRARIES})")
elseif(SEPTA_TORCH_DIR)
  list(PREPEND CMAKE_PREFIX_PATH "${SEPTA_TORCH_DIR}")
  find_package(Torch REQUIRED PATHS "${SEPTA_TORCH_DIR}" NO_DEFAULT_PATH)
else()
  find_package(Torch REQUIRED)
endif()
message(STATUS "septa nn: libtorch from ${Torch_DIR}")
find_package(ZLIB REQUIRED)  # the Fashion-MNIST files are gzip IDX

# The IDX parser alone, without libtorch (zlib only): the fuzz target links just this.
add_library(septa_nn_idx STATIC src/nn/data/idx.cc)
target_include_directories(septa_nn_idx PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(septa_nn_idx PRIVATE ZLIB::ZLIB)

add_library(septa_nn STATIC
  src/nn/api.cc
  src/nn/checkpoint.cc
  src/nn/data/dataset.cc
  src/nn/foreach_adamw.cc
  src/nn/foreach_clip.cc
  src/nn/loop.cc
  src/nn/options.cc
  src/nn/registry.cc
  src/nn/methods/backprop/backprop.cc
  src/nn/methods/ff/ff_method.cc
  src/nn/methods/ff/forward_forward.cc
  src/nn/methods/scala/grid.cc
  src/nn/methods/scala/recipe.cc
  src/nn/methods/scala/report.cc
  src/nn/methods/scala/scala.cc
  src/nn/methods/scala/vit.cc
  src/nn/methods/uff/autoencoder_cells.cc
  src/nn/methods/uff/cell.cc
  src/nn/methods/uff/uff.cc
  src/nn/methods/uff/uff_method.cc
  src/nn/methods/vba/api.cc
  src/nn/methods/vba/baselines.cc
  src/nn/methods/vba/bench.cc
  src/nn/methods/vba/components.cc
  src/nn/methods/vba/composite.cc
  src/nn/methods/vba/composite_bench.cc
  src/nn/methods/vba/data.cc
  src/nn/methods/vba/densities.cc
  src/nn/methods/vba/linear_gaussian.cc
  src/nn/methods/vba/model.cc
  src/nn/methods/vba/npy.cc
  src/nn/methods/vba/training.cc
  src/nn/methods/vba/vba_method.cc)
target_include_directories(septa_nn
  PUBLIC ${PROJECT_SOURCE_DIR}/include
  PRIVATE ${PROJECT_SOURCE_DIR}/src)
# Torch's headers are not -Wall -Wextra clean: include them as system headers.
target_include_directories(septa_nn SYSTEM PUBLIC ${TORCH_INCLUDE_DIRS})
target_link_libraries(septa_nn PUBLIC ${TORCH_LIBRARIES}
  PRIVATE septa_nn_idx septa_safetensors septa_util ZLIB::ZLIB Threads::Threads)

if(SEPTA_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  add_executable(nn_tests
    tests/nn/checkpoint_test.cc
    tests/nn/cli_test.cc
    tests/nn/data/dataset_test.cc
    tests/nn/data/idx_test.cc
    tests/nn/foreach_adamw_test.cc
    tests/nn/foreach_clip_test.cc
    tests/nn/loop_test.cc
    tests/nn/methods/ff/forward_forward_test.cc
    tests/nn/methods/scala/grid_test.cc
    tests/nn/methods/scala/scala_test.cc
    tests/nn/methods/scala/vit_test.cc
    tests/nn/methods/uff/cell_test.cc
    tests/nn/methods/uff/uff_test.cc
    tests/nn/options_test.cc
    tests/nn/reduced_run_test.cc)
  target_include_directories(nn_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  # The checkpoint test reads a cell with tests/safetensors/make_fixture.py (an independent reader).
  set_source_files_properties(tests/nn/checkpoint_test.cc PROPERTIES
    COMPILE_DEFINITIONS "SEPTA_SOURCE_DIR=\"${PROJECT_SOURCE_DIR}\"")
  target_link_libraries(nn_tests PRIVATE septa_nn septa_nn_idx septa_safetensors GTest::gtest_main
                                         ZLIB::ZLIB Threads::Threads)
  # The CLI tests run `septa nn ...` (which runs septa-nn) as separate processes; both targets
  # are defined after this file is included, which add_dependencies and generator expressions
  # allow.
  gtest_discover_tests(nn_tests DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS nn TIMEOUT 300
               ENVIRONMENT "SEPTA_CLI=$<TARGET_FILE:septa>;SEPTA_FASHION_MNIST=/usr/share/datasets/fashion-mnist;OMP_WAIT_POLICY=passive;OPENBLAS_NUM_THREADS=2")
  add_dependencies(nn_tests septa septa-nn)

  # Variational backdoor adjustment: its own executable, so that its tests build and run alone.
  add_executable(vba_tests
    tests/nn/methods/vba/cvae_test.cc
    tests/nn/methods/vba/densities_test.cc
    tests/nn/methods/vba/npy_test.cc
    tests/nn/methods/vba/outcome_cvae_test.cc
    tests/nn/methods/vba/training_test.cc)
  target_include_directories(vba_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(vba_tests PRIVATE septa_nn GTest::gtest_main Threads::Threads)
  # Labels `vba` (ctest -L vba, docs/vba.md) and `nn` (the group). List-valued properties are
  # set by an include file that runs after discovery: gtest_discover_tests's PROPERTIES splits
  # a list value into separate arguments (CMake 3.25), so only its first element would stay.
  gtest_discover_tests(vba_tests DISCOVERY_TIMEOUT 120 PROPERTIES TIMEOUT 300)
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/vba_tests_properties.cmake CONTENT
    "set_tests_properties(\${vba_tests_TESTS} PROPERTIES LABELS \"nn;vba\" ENVIRONMENT \"SEPTA_CLI=$<TARGET_FILE:septa>;OMP_WAIT_POLICY=passive;OPENBLAS_NUM_THREADS=2\")\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${PROJECT_BINARY_DIR}/vba_tests_properties.cmake)
  add_dependencies(vba_tests septa septa-nn)
endif()

if(SEPTA_BUILD_BENCH)
  add_executable(nn_bench bench/nn/nn_bench.cc)
  target_link_libraries(nn_bench PRIVATE septa_nn septa_util Threads::Threads)
endif()
include(${PROJECT_SOURCE_DIR}/cmake/mt.cmake)  # translation (its own file: src/nn/methods/mt)
