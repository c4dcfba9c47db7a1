# Compiler warnings as a property of each target, not a global flag: septa_warnings(target)
# adds them to one target; septa_warn_all_targets() (called last by the top-level CMakeLists)
# adds them to every target built from septa's own sources in `dir` and below, so a target
# defined in any folder's list is covered without a global add_compile_options.
set(SEPTA_WARNING_FLAGS -Wall -Wextra)

function(septa_warnings target)
  target_compile_options(${target} PRIVATE ${SEPTA_WARNING_FLAGS})
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
