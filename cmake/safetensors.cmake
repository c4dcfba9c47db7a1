# septa::safetensors (checkpoint files) and septa::merge (model merging): no libtorch, no
# Python. zlib provides the CRC-32 of the "septa.checksum" metadata entry (crc32, with a
# PCLMULQDQ path of ours in crc32.cc, and crc32_combine, so per-tensor checksums computed on
# worker threads combine in file order).
find_package(ZLIB REQUIRED)

add_library(septa_safetensors STATIC
  ${PROJECT_SOURCE_DIR}/src/safetensors/crc32.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/direct_stream.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/dtype.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/file_io.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/json.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/model.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/reader.cc
  ${PROJECT_SOURCE_DIR}/src/safetensors/writer.cc)
# src/ is public so that other septa libraries (septa::nn checkpoints) include
# "safetensors/safetensors.h".
target_include_directories(septa_safetensors
  PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(septa_safetensors PRIVATE septa_util ZLIB::ZLIB Threads::Threads)

if(SEPTA_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  find_package(Python3 COMPONENTS Interpreter)
  add_executable(safetensors_tests
    ${PROJECT_SOURCE_DIR}/tests/safetensors/crc32_test.cc
    ${PROJECT_SOURCE_DIR}/tests/safetensors/dtype_test.cc
    ${PROJECT_SOURCE_DIR}/tests/safetensors/json_test.cc
    ${PROJECT_SOURCE_DIR}/tests/safetensors/safetensors_test.cc)
  target_include_directories(safetensors_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(safetensors_tests PRIVATE septa_safetensors GTest::gtest_main ZLIB::ZLIB)
  target_compile_definitions(safetensors_tests PRIVATE
    SEPTA_PYTHON="${Python3_EXECUTABLE}"
    SEPTA_FIXTURE_SCRIPT="${PROJECT_SOURCE_DIR}/tests/safetensors/make_fixture.py")
  gtest_discover_tests(safetensors_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS safetensors)
endif()

# septa merge's engine. yaml-cpp (Debian's libyaml-cpp-dev) reads the mergekit-style config:
# a real YAML parser, so anchors, flow style and quoting behave as users expect.
find_package(yaml-cpp REQUIRED)
add_library(septa_merge STATIC
  ${PROJECT_SOURCE_DIR}/src/merge/config.cc
  ${PROJECT_SOURCE_DIR}/src/merge/executor.cc
  ${PROJECT_SOURCE_DIR}/src/merge/methods.cc
  ${PROJECT_SOURCE_DIR}/src/merge/plan.cc
  ${PROJECT_SOURCE_DIR}/src/merge/source.cc
  ${PROJECT_SOURCE_DIR}/src/merge/task_vectors.cc)
# No FP traps assumed: lets GCC vectorise the comparisons in the TIES vote (results unchanged;
# unlike -ffast-math it allows no reassociation). No fused multiply-add contraction: the AVX2
# clones (src/merge/simd.h) and the baseline code must round identically.
set_source_files_properties(
  ${PROJECT_SOURCE_DIR}/src/merge/methods.cc ${PROJECT_SOURCE_DIR}/src/merge/task_vectors.cc
  PROPERTIES COMPILE_OPTIONS "-fno-trapping-math;-ffp-contract=off")
target_include_directories(septa_merge PUBLIC ${PROJECT_SOURCE_DIR}/include PRIVATE ${PROJECT_SOURCE_DIR}/src)
target_link_libraries(septa_merge PUBLIC septa_safetensors PRIVATE yaml-cpp ZLIB::ZLIB Threads::Threads)

if(SEPTA_BUILD_TESTS)
  add_executable(merge_tests
    ${PROJECT_SOURCE_DIR}/tests/merge/methods_test.cc
    ${PROJECT_SOURCE_DIR}/tests/merge/merge_test.cc
    ${PROJECT_SOURCE_DIR}/tests/merge/task_vectors_test.cc)
  target_include_directories(merge_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(merge_tests PRIVATE septa_merge GTest::gtest_main Threads::Threads)
  target_compile_definitions(merge_tests PRIVATE SEPTA_CLI_PATH="$<TARGET_FILE:septa>")
  add_dependencies(merge_tests septa)
  gtest_discover_tests(merge_tests DISCOVERY_TIMEOUT 60 PROPERTIES LABELS merge)
endif()

if(SEPTA_BUILD_BENCH)
  add_executable(merge_bench ${PROJECT_SOURCE_DIR}/bench/merge_bench.cc)
  target_include_directories(merge_bench PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(merge_bench PRIVATE septa_merge Threads::Threads)
endif()
