#include "bench/doc_section.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace strait::bench {

std::string dirname_of_self() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string fmt(double v, int digits) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

void write_section(const std::string& path, const std::string& begin, const std::string& end,
                   const std::string& body) {
  std::string doc;
  {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    doc = ss.str();
  }
  const std::string block = begin + "\n" + body + end;
  const auto b = doc.find(begin);
  const auto e = doc.find(end);
  if (b != std::string::npos && e != std::string::npos && e > b) {
    doc.replace(b, e + end.size() - b, block);
  } else {
    doc += "\n" + block + "\n";
  }
  std::ofstream out(path, std::ios::trunc);
  out << doc;
  if (!out) throw std::runtime_error("failed to write " + path);
}

void publish(const std::string& text, const std::string& doc, const std::string& begin,
             const std::string& end) {
  std::cout << text;
  if (doc.empty()) return;
  write_section(doc, begin, end, text);
  std::cout << "\nwrote " << doc << "\n";
}

std::string utc_date() {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  return date;
}

int guarded_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace strait::bench
