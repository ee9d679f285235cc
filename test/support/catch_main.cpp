// The Catch2 main of every test binary, in a library of its own (test/CMakeLists.txt):
// CATCH_CONFIG_MAIN compiles the whole framework, the slowest file of the tree, so it is
// built once per build tree and not once per test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
