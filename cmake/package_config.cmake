# Read by cpack when it runs (CPACK_PROJECT_CONFIG_FILE): the package takes the version the
# built binaries carry, so the two never disagree.
if(NOT EXISTS "${CPACK_STRAIT_VERSION_FILE}")
  message(FATAL_ERROR "${CPACK_STRAIT_VERSION_FILE} is missing: build strait-executables first")
endif()
file(STRINGS "${CPACK_STRAIT_VERSION_FILE}" CPACK_PACKAGE_VERSION LIMIT_COUNT 1)
set(CPACK_DEBIAN_PACKAGE_VERSION "${CPACK_PACKAGE_VERSION}")
set(CPACK_DEBIAN_FILE_NAME "strait-cni_${CPACK_PACKAGE_VERSION}_amd64.deb")
set(CPACK_PACKAGE_FILE_NAME "strait-cni_${CPACK_PACKAGE_VERSION}_amd64")
