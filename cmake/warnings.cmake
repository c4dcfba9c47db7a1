# Compiler flags as properties of each target, never global ones (no add_compile_options):
# septa_warnings(target) adds the warnings, and in sanitizer or fuzzing builds the
# instrumentation, to one target; septa_warn_all_targets() (called last by the top-level
# CMakeLists) does it for every target built from septa's own sources in `dir` and below, so a
# target defined in any folder's list is covered.
set(SEPTA_WARNING_FLAGS -Wall -Wextra)

# Sanitizer builds (SEPTA_SANITIZE, see the top-level CMakeLists): sanitizers work only when
# every translation unit and the link are instrumented, so each target gets them.
set(SEPTA_INSTRUMENT_COMPILE_FLAGS "")
set(SEPTA_INSTRUMENT_LINK_FLAGS "")
if(SEPTA_SANITIZE)
  list(APPEND SEPTA_INSTRUMENT_COMPILE_FLAGS -fsanitize=${SEPTA_SANITIZE} -fno-omit-frame-pointer -g)
  list(APPEND SEPTA_INSTRUMENT_LINK_FLAGS -fsanitize=${SEPTA_SANITIZE})
  if(SEPTA_SANITIZE MATCHES "undefined")
    list(APPEND SEPTA_INSTRUMENT_COMPILE_FLAGS -fno-sanitize-recover=undefined)
  endif()
endif()
if(SEPTA_FUZZ)  # coverage for libFuzzer in every library the fuzz targets link
  list(APPEND SEPTA_INSTRUMENT_COMPILE_FLAGS -fsanitize=fuzzer-no-link)
endif()

function(septa_warnings target)
  target_compile_options(${target} PRIVATE ${SEPTA_WARNING_FLAGS} ${SEPTA_INSTRUMENT_COMPILE_FLAGS})
  if(SEPTA_INSTRUMENT_LINK_FLAGS)
    target_link_options(${target} PRIVATE ${SEPTA_INSTRUMENT_LINK_FLAGS})
  endif()
endfunction()

function(septa_warn_all_targets dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$")
      septa_warnings(${target})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(subdir ${subdirs})
    septa_warn_all_targets(${subdir})
  endforeach()
endfunction()
