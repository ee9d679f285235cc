#pragma once

#include <string>

// What the bench executables share besides the lab: where they run from, the machine's load,
// number formatting for the tables, and their generated blocks of docs/benchmarks.md.
namespace strait::bench {

// The directory of this executable (<build>/bench).
std::string dirname_of_self();
// /proc/loadavg's first three fields ("2.96 2.58 3.38").
std::string loadavg();
// `v` with `digits` decimals; "-" for NaN.
std::string fmt(double v, int digits = 2);
// Replaces the block from `begin` to `end` (marker lines) of the markdown file `path` with
// `body` between the markers, or appends the block: what is outside stays.
void write_section(const std::string& path, const std::string& begin, const std::string& end,
                   const std::string& body);
// Prints `text` and, when `doc` is not empty, writes it as the section between the markers.
void publish(const std::string& text, const std::string& doc, const std::string& begin,
             const std::string& end);
// "2026-12-01 16:40 UTC".
std::string utc_date();
// A bench's main: `run`'s exit code, 1 with "<name>: <what>" on stderr when it throws.
int guarded_main(const char* name, int (*run)(int, char**), int argc, char** argv);

}  // namespace strait::bench
