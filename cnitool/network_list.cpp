#include "cnitool/network_list.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <optional>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/read_file.h"
#include "libcni/protocol/version.h"

namespace cni::tool {

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  auto content = read_whole_file(p.string());
  if (!content) {
    throw std::system_error(errno, std::generic_category(),
                            "failed to read \"" + p.string() + "\"");
  }
  return *content;
}

// Regular files (or links to them) in `dir` whose extension is one of `exts`, sorted.
std::vector<fs::path> conf_files(const fs::path& dir, const std::vector<std::string>& exts) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    // A missing directory holds no configs; anything else is worth reporting.
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory) {
      return out;
    }
    throw std::system_error(ec, "failed to read directory \"" + dir.string() + "\"");
  }
  for (const auto& entry : it) {
    std::error_code type_ec;
    if (entry.is_directory(type_ec)) continue;
    std::string ext = entry.path().extension().string();
    if (std::find(exts.begin(), exts.end(), ext) != exts.end()) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The "name" of a config file, or nullopt (with `why`) when it is not a JSON object.
std::optional<std::string> config_name(const std::string& bytes, std::string& why) {
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) {
    why = "not valid JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  auto it = j.find("name");
  if (it == j.end() || !it->is_string()) return std::string();
  return it->get<std::string>();
}

bool read_bool(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  // libcni also accepts the strings "true" and "false".
  if (it->is_string()) {
    std::string s = it->get<std::string>();
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "true") return true;
    if (s == "false") return false;
  }
  throw Error(kErrInvalidConfig,
              "invalid config: \"" + std::string(key) + "\" must be a boolean, got " + it->dump());
}

NetworkList load_conflist(const fs::path& file, const std::string& bytes, const std::string& name) {
  nlohmann::json j = nlohmann::json::parse(bytes);
  std::vector<nlohmann::json> extra;
  if (!read_bool(j, "loadOnlyInlinedPlugins")) {
    for (const auto& p : conf_files(file.parent_path() / name, {".conf"})) {
      auto plugin = nlohmann::json::parse(read_file(p), nullptr, false);
      if (!plugin.is_object() || !plugin.contains("type") || !plugin["type"].is_string()) {
        throw Error(kErrInvalidConfig, "invalid plugin config \"" + p.string() +
                                           "\": expected a JSON object with a \"type\"");
      }
      extra.push_back(std::move(plugin));
    }
  } else if (!j.contains("plugins")) {
    throw Error(kErrInvalidConfig, "invalid config \"" + file.string() +
                                       "\": \"loadOnlyInlinedPlugins\" is true and there is no "
                                       "\"plugins\" list");
  }
  if (!j.contains("plugins") && extra.empty()) {
    throw Error(kErrInvalidConfig, "invalid config \"" + file.string() + "\": no plugin configs");
  }
  NetworkList list;
  list.source = file.string();
  list.bytes = bytes;
  if (extra.empty()) {
    list.conf = parse_conflist(bytes, supported_versions());
  } else {
    nlohmann::json merged = j;
    if (!merged.contains("plugins")) merged["plugins"] = nlohmann::json::array();
    for (auto& p : extra) merged["plugins"].push_back(std::move(p));
    list.conf = parse_conflist(merged.dump(), supported_versions());
  }
  return list;
}

// libcni's ConfListFromConf: {"cniVersion","name","plugins":[conf]}.
std::string wrap_single_conf(const std::string& bytes) {
  nlohmann::json conf = nlohmann::json::parse(bytes);
  nlohmann::json list = nlohmann::json::object();
  list["name"] = conf.value("name", std::string());
  list["cniVersion"] = conf.value("cniVersion", std::string());
  list["plugins"] = nlohmann::json::array({conf});
  return list.dump();
}

template <typename F>
auto with_source(const fs::path& file, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.code(), "\"" + file.string() + "\": " + e.msg(), e.details());
  }
}

}  // namespace

NetworkList network_list_from_bytes(std::string_view bytes, std::string source) {
  NetworkList list;
  list.source = std::move(source);
  list.conf = parse_conflist(bytes, supported_versions());
  if (list.conf.raw.contains("plugins")) {
    list.bytes = std::string(bytes);
  } else {
    list.bytes = wrap_single_conf(std::string(bytes));
  }
  return list;
}

NetworkList load_network_list(const std::string& dir, const std::string& name) {
  std::vector<std::string> skipped;
  auto files = conf_files(dir, {".conflist"});
  for (const auto& file : files) {
    std::string bytes = read_file(file);
    std::string why;
    auto n = config_name(bytes, why);
    if (!n) {
      skipped.push_back(file.filename().string() + ": " + why);
      continue;
    }
    if (*n == name) return with_source(file, [&] { return load_conflist(file, bytes, name); });
  }
  auto singles = conf_files(dir, {".conf", ".json"});
  for (const auto& file : singles) {
    std::string bytes = read_file(file);
    std::string why;
    auto n = config_name(bytes, why);
    if (!n) {
      skipped.push_back(file.filename().string() + ": " + why);
      continue;
    }
    if (*n == name) {
      return with_source(file, [&] { return network_list_from_bytes(bytes, file.string()); });
    }
  }
  std::string msg = files.empty() && singles.empty()
                        ? "no net configurations found in " + dir
                        : "no net configuration with name \"" + name + "\" in " + dir;
  if (!skipped.empty()) {
    msg += " (skipped";
    for (size_t i = 0; i < skipped.size(); ++i) msg += (i ? "; " : " ") + skipped[i];
    msg += ")";
  }
  throw Error(kErrInvalidConfig, msg);
}

}  // namespace cni::tool
