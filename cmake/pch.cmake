# Precompiled headers (STRAIT_PCH): nlohmann/json.hpp for the product libraries (and what
# compiles with their flags: test/support, the fuzz targets), and catch.hpp with it for the
# test drivers (strait_test_pch; clang++ with the sanitizers: two unity groups 39.6 s -> 32.2 s
# CPU). Two thirds of the translation units include json.hpp, and parsing it is a large part
# of each one's compile
# (clang++ with the sanitizers: netconf.cpp, skel.cpp and range.cpp 38.0 s -> 29.2 s CPU, plus
# 5.2 s once for the header; GCC netconf.cpp 15.0 s -> 10.6 s); a file that does not use it pays
# a fraction of a second to load it. One precompiled header serves every library: they share
# one set of flags (a header precompiled with other flags is rejected), so it is built once.
# On by default with clang++ (the asan tree) only. GCC 12 saves as much on the libraries, but
# with the header precompiled it reports -Warray-bounds false positives in inlined std::string
# concatenation that it does not report without (a memcpy "forming offset [32, 99]" out of a
# 32-byte std::string, the path where a long string would sit in the 15-character inline
# buffer: libcni/protocol/fields.cpp:25, ipam/host_local/disk_store.cpp:204 and :271, ...), at
# the inlined libstdc++ line inside the header where no pragma of the file reaches: the shipped
# build stays as it is. For GCC's test drivers (-O0 -g) the header made two unity groups slower,
# not faster (30.6 and 34.1 s CPU without, 37.4 and 41.0 s with). Off under a compiler launcher:
# ccache does not cache a compile that uses a precompiled header unless told to be sloppy about
# it, and a cached compile is cheaper still.
if(CMAKE_CXX_COMPILER_LAUNCHER OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(strait_pch_default OFF)
else()
  set(strait_pch_default ON)
endif()
option(STRAIT_PCH "Precompile nlohmann/json.hpp (and catch.hpp for the tests)" ${strait_pch_default})

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

# strait_test_pch(target): the test driver `target` precompiles catch.hpp and json.hpp for its
# own translation units (the test drivers' flags, -O0 among them, are not the libraries'), so
# each unity group parses neither.
function(strait_test_pch target)
  if(STRAIT_PCH)
    target_precompile_headers(${target} PRIVATE <catch2/catch.hpp> <nlohmann/json.hpp>)
  endif()
endfunction()
