# Finds liblbfgs (Debian: liblbfgs-dev) and defines the imported target lbfgs::lbfgs.
# Installed with septa's package config, so a project that links septa::crf finds it the same way.
find_path(LBFGS_INCLUDE_DIR lbfgs.h)
find_library(LBFGS_LIBRARY lbfgs)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(lbfgs REQUIRED_VARS LBFGS_LIBRARY LBFGS_INCLUDE_DIR)
if(lbfgs_FOUND AND NOT TARGET lbfgs::lbfgs)
  add_library(lbfgs::lbfgs UNKNOWN IMPORTED)
  set_target_properties(lbfgs::lbfgs PROPERTIES
    IMPORTED_LOCATION "${LBFGS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LBFGS_INCLUDE_DIR}")
endif()
mark_as_advanced(LBFGS_INCLUDE_DIR LBFGS_LIBRARY)
