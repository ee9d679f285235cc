# Precompiled nlohmann/json.hpp for the product libraries (STRAIT_PCH). Two thirds of the
# translation units include it, and parsing it is a large part of each one's compile (clang++
# with the sanitizers: netconf.cpp, skel.cpp and range.cpp 38.0 s -> 29.2 s CPU, plus 5.2 s
# once for the header); a file that does not use it pays a fraction of a second to load it.
# One precompiled header serves every library: they share one set of flags (a header
# precompiled with other flags is rejected), so it is built once.
# On by default with clang++ (the asan tree) only. GCC 12 saves as much, but with the header
# precompiled it reports a -Warray-bounds false positive in std::string's operator+
# (libcni/protocol/fields.cpp) that it does not report without: the shipped build stays as it
# is. Off under a compiler launcher: ccache does not cache a compile that uses a precompiled
# header unless told to be sloppy about it, and a cached compile is cheaper still.
if(CMAKE_CXX_COMPILER_LAUNCHER OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(strait_pch_default OFF)
else()
  set(strait_pch_default ON)
endif()
option(STRAIT_PCH "Precompile nlohmann/json.hpp for the product libraries" ${strait_pch_default})

# strait_use_pch(dir...): every static library under each dir reuses the one header.
function(strait_use_pch)
  foreach(dir IN LISTS ARGN)
    get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    foreach(target IN LISTS targets)
      get_target_property(type ${target} TYPE)
      if(type STREQUAL "STATIC_LIBRARY")
        target_precompile_headers(${target} REUSE_FROM strait_pch)
      endif()
    endforeach()
    get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    if(subdirs)
      strait_use_pch(${subdirs})
    endif()
  endforeach()
endfunction()

if(STRAIT_PCH)
  add_library(strait_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/pch.cpp)
  target_link_libraries(strait_pch PRIVATE nlohmann_json::nlohmann_json)
  target_precompile_headers(strait_pch PRIVATE <nlohmann/json.hpp>)
  strait_use_pch(${PROJECT_SOURCE_DIR}/libcni ${PROJECT_SOURCE_DIR}/ipam ${PROJECT_SOURCE_DIR}/overlay
                 ${PROJECT_SOURCE_DIR}/plugins ${PROJECT_SOURCE_DIR}/cnitool)
endif()
