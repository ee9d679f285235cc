#include "libcni/protocol/fields.h"

#include <limits>

#include "libcni/core/error.h"

namespace cni {

namespace {
const nlohmann::json& empty_object() {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kEmpty;
}

std::string type_name(const nlohmann::json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}
}  // namespace

std::string quote_value(const nlohmann::json& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  constexpr size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

Fields::Fields(const nlohmann::json& obj, std::string path)
    : obj_(obj.is_null() ? empty_object() : obj), path_(std::move(path)) {
  if (!obj_.is_object()) {
    throw Error(kErrInvalidConfig, "invalid config: \"" + (path_.empty() ? "." : path_) +
                                       "\" must be an object, got " + quote_value(obj));
  }
}

std::string Fields::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void Fields::fail(std::string_view key, const std::string& why) const {
  throw Error(kErrInvalidConfig, "invalid config: \"" + key_path(key) + "\": " + why);
}

const nlohmann::json* Fields::get(std::string_view key) const {
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(std::string_view key) const { return get(key) != nullptr; }

std::optional<std::string> Fields::str(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(key, "must be a string, got " + type_name(*v) + " " + quote_value(*v));
  return v->get<std::string>();
}

std::string Fields::str_or(std::string_view key, std::string def) const {
  auto v = str(key);
  return v ? *v : std::move(def);
}

std::string Fields::required_str(std::string_view key) const {
  auto v = str(key);
  if (!v || v->empty()) fail(key, "is required");
  return *v;
}

std::optional<bool> Fields::boolean(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(key, "must be true or false, got " + quote_value(*v));
  return v->get<bool>();
}

bool Fields::boolean_or(std::string_view key, bool def) const {
  auto v = boolean(key);
  return v ? *v : def;
}

std::optional<int64_t> Fields::integer(std::string_view key, int64_t min, int64_t max) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  int64_t n = 0;
  if (v->is_number_unsigned()) {
    auto u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(key, quote_value(*v) + " is out of range [" + std::to_string(min) + ", " +
                    std::to_string(max) + "]");
    }
    n = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    n = v->get<int64_t>();
  } else {
    fail(key, "must be an integer, got " + type_name(*v) + " " + quote_value(*v));
  }
  if (n < min || n > max) {
    fail(key, quote_value(*v) + " is out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]");
  }
  return n;
}

std::optional<uint64_t> Fields::uinteger(std::string_view key, uint64_t max) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0)) {
    if (v->is_number_integer()) fail(key, quote_value(*v) + " must not be negative");
    fail(key, "must be a non-negative integer, got " + type_name(*v) + " " + quote_value(*v));
  }
  auto u = v->get<uint64_t>();
  if (u > max) fail(key, quote_value(*v) + " is larger than " + std::to_string(max));
  return u;
}

std::optional<IpAddress> Fields::ip(std::string_view key) const {
  auto s = str(key);
  if (!s) return std::nullopt;
  auto a = IpAddress::try_parse(*s);
  if (!a) fail(key, quote_value(*s) + " is not an IP address");
  return a;
}

std::optional<IpNet> Fields::cidr(std::string_view key, bool network_only) const {
  auto s = str(key);
  if (!s) return std::nullopt;
  auto n = IpNet::try_parse(*s);
  if (!n) fail(key, quote_value(*s) + " is not a CIDR");
  if (network_only && n->has_host_bits()) {
    fail(key, quote_value(*s) + " has host bits set (network is " + n->network().str() + ")");
  }
  return n;
}

std::optional<std::vector<std::string>> Fields::str_list(std::string_view key) const {
  const auto* v = array(key);
  if (!v) return std::nullopt;
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const auto& e = (*v)[i];
    if (!e.is_string()) {
      fail(std::string(key) + "[" + std::to_string(i) + "]",
           "must be a string, got " + quote_value(e));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<Fields> Fields::object(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return std::nullopt;
  if (!v->is_object()) fail(key, "must be an object, got " + quote_value(*v));
  return Fields(*v, key_path(key));
}

const nlohmann::json* Fields::array(std::string_view key) const {
  const auto* v = get(key);
  if (!v) return nullptr;
  if (!v->is_array()) fail(key, "must be a list, got " + quote_value(*v));
  return v;
}

}  // namespace cni
