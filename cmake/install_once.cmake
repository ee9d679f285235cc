# Runs at install time (install(CODE) of cmake/install.cmake): installs STRAIT_ONCE_SOURCE into
# STRAIT_ONCE_DESTINATION (relative to the prefix unless absolute) unless a file of that name is
# already there, which is kept as it is: a config an operator edited is never overwritten.
if(IS_ABSOLUTE "${STRAIT_ONCE_DESTINATION}")
  set(strait_once_dir "${STRAIT_ONCE_DESTINATION}")
else()
  set(strait_once_dir "${CMAKE_INSTALL_PREFIX}/${STRAIT_ONCE_DESTINATION}")
endif()
get_filename_component(strait_once_name "${STRAIT_ONCE_SOURCE}" NAME)
if(EXISTS "$ENV{DESTDIR}${strait_once_dir}/${strait_once_name}")
  message(STATUS "Kept (exists): $ENV{DESTDIR}${strait_once_dir}/${strait_once_name}")
else()
  file(INSTALL DESTINATION "${strait_once_dir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE
       GROUP_READ WORLD_READ FILES "${STRAIT_ONCE_SOURCE}")
endif()
