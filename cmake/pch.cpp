// The translation unit strait_pch compiles nlohmann/json.hpp's precompiled header with
// (cmake/pch.cmake); it defines nothing.
