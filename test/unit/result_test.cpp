#include "libcni/protocol/result.h"

#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "libcni/core/error.h"
#include "libcni/core/ip.h"
#include "libcni/protocol/version.h"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// test/fixtures/results/<version>.json is a full result of that version in the exact form
// Strait prints it, so it is both an input and the expected output for its version.
// 1.1.0-from-older.json is what a 1.1.0 print of an older result looks like: the 1.1.0-only
// fields (interface mtu/socketPath/pciID, route mtu/advmss/priority/table/scope) never
// existed in the source.
json load_fixture(const std::string& name) {
  const std::string path = std::string(STRAIT_FIXTURES_DIR) + "/results/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path);
  return json::parse(in);
}

std::string expected_fixture(const std::string& from, const std::string& to) {
  if (to == "1.1.0" && from != "1.1.0") return "1.1.0-from-older.json";
  return to + ".json";
}

std::optional<cni::Error> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cni::Error& e) {
    return e;
  }
  return std::nullopt;
}

cni::IpNet net(const char* s) { return cni::IpNet::parse(s); }
cni::IpAddress ip(const char* s) { return cni::IpAddress::parse(s); }

// Plain builders: designated initializers that skip members trip -Wmissing-field-initializers.
cni::Interface iface(const char* name, const char* mac = "", std::optional<int> mtu = {},
                     const char* sandbox = "") {
  cni::Interface i;
  i.name = name;
  i.mac = mac;
  i.mtu = mtu;
  i.sandbox = sandbox;
  return i;
}

cni::IpConfig ip_config(const char* cidr) {
  cni::IpConfig c;
  c.address = net(cidr);
  return c;
}

cni::Route route(const char* dst, std::optional<cni::IpAddress> gw = {}) {
  cni::Route r;
  r.dst = net(dst);
  r.gw = gw;
  return r;
}

cni::Dns dns(std::vector<std::string> nameservers, std::string domain,
             std::vector<std::string> search, std::vector<std::string> options) {
  cni::Dns d;
  d.nameservers = std::move(nameservers);
  d.domain = std::move(domain);
  d.search = std::move(search);
  d.options = std::move(options);
  return d;
}

}  // namespace

TEST_CASE("result: every supported version prints in every supported version", "[result]") {
  const auto& versions = cni::supported_versions();
  REQUIRE(versions == std::vector<std::string>{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"});
  const std::string from = GENERATE(from_range(cni::supported_versions()));
  const std::string to = GENERATE(from_range(cni::supported_versions()));
  CAPTURE(from, to);

  const cni::Result r = cni::parse_result(load_fixture(from + ".json"), "prevResult");
  CHECK(r.cni_version == from);
  const json printed = cni::result_to_json(r, to);
  const json expected = load_fixture(expected_fixture(from, to));
  INFO("printed:  " << printed.dump());
  INFO("expected: " << expected.dump());
  CHECK(printed == expected);
}

TEST_CASE("result: the 1.1.0 fixture parses into every field", "[result]") {
  const cni::Result r = cni::parse_result(load_fixture("1.1.0.json"));
  CHECK(r.cni_version == "1.1.0");

  REQUIRE(r.interfaces.size() == 2);
  cni::Interface host = iface("vhost-user0", "02:42:c0:00:02:0a", 1480);
  host.socket_path = "/run/vhost-user/sock0";
  host.pci_id = "0000:3b:02.1";
  CHECK(r.interfaces[0] == host);
  CHECK(r.interfaces[1] == iface("eth0", "02:42:c0:00:02:0b", 1480, "/var/run/netns/strait-pod1"));

  REQUIRE(r.ips.size() == 3);
  CHECK(r.ips[0].address.str() == "10.1.0.5/24");  // host bits kept
  CHECK(r.ips[0].gateway == ip("10.1.0.1"));
  CHECK(r.ips[0].interface == 1);
  CHECK(r.ips[1].address == net("2001:db8:1::5/64"));
  CHECK(r.ips[1].gateway == ip("2001:db8:1::1"));
  CHECK(r.ips[2].address == net("192.0.2.10/32"));
  CHECK_FALSE(r.ips[2].gateway.has_value());
  CHECK(r.ips[2].interface == 0);

  REQUIRE(r.routes.size() == 3);
  cni::Route def4 = route("0.0.0.0/0", ip("10.1.0.1"));
  def4.mtu = 1400;
  def4.advmss = 1360;
  def4.priority = 100;
  def4.table = 100;
  def4.scope = 0;
  CHECK(r.routes[0] == def4);
  CHECK(r.routes[1].dst == net("::/0"));
  CHECK(r.routes[1].advmss == 1340);
  cni::Route link = route("198.51.100.0/24");
  link.scope = 253;
  CHECK(r.routes[2] == link);

  CHECK(r.dns == dns({"10.1.0.53", "2001:db8:1::53"}, "pod.example",
                     {"ns1.svc.example", "svc.example"}, {"ndots:5", "edns0"}));
}

TEST_CASE("result: older fixtures parse to the 1.1.0 one minus the 1.1.0-only fields", "[result]") {
  cni::Result expected = cni::parse_result(load_fixture("1.1.0.json"));
  for (auto& i : expected.interfaces) {
    i.mtu.reset();
    i.socket_path.clear();
    i.pci_id.clear();
  }
  for (auto& rt : expected.routes) {
    cni::Route old;
    old.dst = rt.dst;
    old.gw = rt.gw;
    rt = old;
  }
  for (const std::string v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
    CAPTURE(v);
    expected.cni_version = v;
    CHECK(cni::parse_result(load_fixture(v + ".json")) == expected);
  }
}

TEST_CASE("result: printing in 1.1.0 and parsing back loses nothing", "[result]") {
  const cni::Result r = cni::parse_result(load_fixture("1.1.0.json"));
  const cni::Result back = cni::parse_result(cni::result_to_json(r, "1.1.0"));
  CHECK(back == r);
}

TEST_CASE("result: ips[].version comes from the address family in 0.3.x/0.4.0 only", "[result]") {
  cni::Result r;
  r.ips.push_back(ip_config("10.1.0.5/24"));
  r.ips.push_back(ip_config("2001:db8::5/64"));
  for (const std::string v : {"0.3.0", "0.3.1", "0.4.0"}) {
    CAPTURE(v);
    const json j = cni::result_to_json(r, v);
    CHECK(j["ips"] == json::parse(R"([{"version": "4", "address": "10.1.0.5/24"},
                                      {"version": "6", "address": "2001:db8::5/64"}])"));
  }
  for (const std::string v : {"1.0.0", "1.1.0"}) {
    CAPTURE(v);
    const json j = cni::result_to_json(r, v);
    CHECK(j["ips"] == json::parse(R"([{"address": "10.1.0.5/24"},
                                      {"address": "2001:db8::5/64"}])"));
  }
}

TEST_CASE("result: empty and absent fields are omitted as Go's omitempty does", "[result]") {
  cni::Result r;
  r.interfaces.push_back(iface("eth0"));
  r.interfaces.push_back(iface("", "", 0));  // a name is always printed, an mtu of 0 is unset
  r.ips.push_back(ip_config("10.1.0.5/24"));
  cni::Route zeros = route("10.2.0.0/16");  // Go ints with omitempty: 0 is unset
  zeros.mtu = 0;
  zeros.advmss = 0;
  zeros.priority = 0;
  r.routes.push_back(zeros);
  cni::Route main_table = route("10.3.0.0/16");  // Go *int: 0 is a value
  main_table.table = 0;
  main_table.scope = 0;
  r.routes.push_back(main_table);

  CHECK(cni::result_to_json(r, "1.1.0") == json::parse(R"({
    "cniVersion": "1.1.0",
    "interfaces": [{"name": "eth0"}, {"name": ""}],
    "ips": [{"address": "10.1.0.5/24"}],
    "routes": [{"dst": "10.2.0.0/16"}, {"dst": "10.3.0.0/16", "table": 0, "scope": 0}]
  })"));
  CHECK(cni::result_to_json(cni::Result{}, "1.1.0") == json{{"cniVersion", "1.1.0"}});
}

TEST_CASE("result: an empty dns prints as {} in 0.3.x/0.4.0 and is omitted from 1.0.0 on",
          "[result]") {
  // types040.Result has a plain DNS struct (always encoded); types100.Result drops an empty
  // one in MarshalJSON (containernetworking/cni#1039).
  const cni::Result empty;
  for (const std::string v : {"0.3.0", "0.3.1", "0.4.0"}) {
    CAPTURE(v);
    CHECK(cni::result_to_json(empty, v) == json{{"cniVersion", v}, {"dns", json::object()}});
  }
  for (const std::string v : {"1.0.0", "1.1.0"}) {
    CAPTURE(v);
    CHECK(cni::result_to_json(empty, v) == json{{"cniVersion", v}});
  }
  cni::Result with_domain;
  with_domain.dns.domain = "example.org";
  CHECK(cni::result_to_json(with_domain, "1.0.0")["dns"] == json{{"domain", "example.org"}});
  CHECK(cni::result_to_json(with_domain, "0.4.0")["dns"] == json{{"domain", "example.org"}});
}

TEST_CASE("result: printing in a version Strait does not speak is incompatible", "[result]") {
  const cni::Result r = cni::parse_result(load_fixture("1.1.0.json"));
  for (const std::string v : {"0.1.0", "0.2.0", "1.2.0", "2.0.0", "1.0", ""}) {
    CAPTURE(v);
    auto err = error_of([&] { cni::result_to_json(r, v); });
    REQUIRE(err.has_value());
    CHECK(err->code() == cni::kErrIncompatibleVersion);
    CHECK_THAT(err->msg(), Contains("\"" + v + "\""));
  }
}

TEST_CASE("result: an unsupported or missing cniVersion is incompatible", "[result]") {
  json j = load_fixture("1.0.0.json");
  for (const std::string v : {"0.1.0", "0.2.0", "0.3", "1.2.0", "2.0.0", "latest", ""}) {
    CAPTURE(v);
    j["cniVersion"] = v;
    auto err = error_of([&] { cni::parse_result(j, "prevResult"); });
    REQUIRE(err.has_value());
    CHECK(err->code() == cni::kErrIncompatibleVersion);
    CHECK_THAT(err->msg(), Contains("\"" + v + "\"") && Contains("\"prevResult\""));
  }

  j.erase("cniVersion");
  auto err = error_of([&] { cni::parse_result(j, "prevResult"); });
  REQUIRE(err.has_value());
  CHECK(err->code() == cni::kErrIncompatibleVersion);
  CHECK_THAT(err->msg(), Contains("\"prevResult\"") && Contains("0.1.0"));

  j["cniVersion"] = nullptr;  // null reads as absent, as in Go
  err = error_of([&] { cni::parse_result(j, "prevResult"); });
  REQUIRE(err.has_value());
  CHECK(err->code() == cni::kErrIncompatibleVersion);
}

namespace {

struct Mutation {
  std::string pointer;        // JSON pointer into the fixture
  std::optional<json> value;  // nullopt: erase the member
  std::string field;          // the field path the message must name
  std::string why;            // a fragment of the reason
};

void check_decode_errors(const std::string& fixture, const std::vector<Mutation>& mutations) {
  const json base = load_fixture(fixture);
  for (const auto& m : mutations) {
    CAPTURE(fixture, m.pointer, m.value ? m.value->dump() : "<erased>");
    json j = base;
    const json::json_pointer ptr(m.pointer);
    if (m.value) {
      j[ptr] = *m.value;
    } else {
      j[ptr.parent_pointer()].erase(ptr.back());
    }
    auto err = error_of([&] { cni::parse_result(j, "prevResult"); });
    REQUIRE(err.has_value());
    CHECK(err->code() == cni::kErrDecode);
    CHECK_THAT(err->msg(), Contains("\"" + m.field + "\": ") && Contains(m.why));
  }
}

}  // namespace

TEST_CASE("result: malformed fields are decode errors naming the field", "[result]") {
  check_decode_errors(
      "1.1.0.json",
      {
          {"/cniVersion", json(110), "prevResult.cniVersion", "110 is not a string"},
          {"/interfaces", json("eth0"), "prevResult.interfaces", "is not an array"},
          {"/interfaces/0", json("eth0"), "prevResult.interfaces[0]", "is not an object"},
          {"/interfaces/1/name", json(5), "prevResult.interfaces[1].name", "5 is not a string"},
          {"/interfaces/1/mac", json(true), "prevResult.interfaces[1].mac", "not a string"},
          {"/interfaces/1/sandbox", json::array(), "prevResult.interfaces[1].sandbox",
           "not a string"},
          {"/interfaces/0/mtu", json("1480"), "prevResult.interfaces[0].mtu",
           "\"1480\" is not an integer"},
          {"/interfaces/0/mtu", json(1480.5), "prevResult.interfaces[0].mtu", "is not an integer"},
          {"/interfaces/0/mtu", json(-1), "prevResult.interfaces[0].mtu", "out of range"},
          {"/interfaces/0/mtu", json(uint64_t{1} << 40), "prevResult.interfaces[0].mtu",
           "out of range"},
          {"/interfaces/0/socketPath", json(1), "prevResult.interfaces[0].socketPath",
           "not a string"},
          {"/interfaces/0/pciID", json(1), "prevResult.interfaces[0].pciID", "not a string"},
          {"/ips", json::object(), "prevResult.ips", "is not an array"},
          {"/ips/2", json(3), "prevResult.ips[2]", "is not an object"},
          {"/ips/0/address", json("10.1.0.300/24"), "prevResult.ips[0].address",
           "\"10.1.0.300/24\" is not a CIDR"},
          {"/ips/0/address", json("10.1.0.5"), "prevResult.ips[0].address", "is not a CIDR"},
          {"/ips/1/address", json("2001:db8:1::5/129"), "prevResult.ips[1].address",
           "is not a CIDR"},
          {"/ips/0/address", json(10), "prevResult.ips[0].address", "10 is not a string"},
          {"/ips/0/address", std::nullopt, "prevResult.ips[0].address", "missing"},
          {"/ips/1/gateway", json("2001:db8:1::zz"), "prevResult.ips[1].gateway",
           "is not an IP address"},
          {"/ips/0/gateway", json("10.1.0.1/24"), "prevResult.ips[0].gateway",
           "is not an IP address"},
          {"/ips/0/gateway", json("2001:db8:1::1"), "prevResult.ips[0].gateway",
           "not in the family"},
          {"/ips/0/interface", json(2), "prevResult.ips[0].interface", "out of range"},
          {"/ips/1/interface", json(-1), "prevResult.ips[1].interface", "out of range"},
          {"/ips/1/interface", json("1"), "prevResult.ips[1].interface", "not an integer"},
          {"/routes", json("0.0.0.0/0"), "prevResult.routes", "is not an array"},
          {"/routes/0/dst", json("0.0.0.0"), "prevResult.routes[0].dst", "is not a CIDR"},
          {"/routes/0/dst", std::nullopt, "prevResult.routes[0].dst", "missing"},
          {"/routes/0/gw", json("10.1.0.256"), "prevResult.routes[0].gw", "is not an IP address"},
          {"/routes/1/table", json("main"), "prevResult.routes[1].table", "not an integer"},
          {"/routes/1/priority", json(-5), "prevResult.routes[1].priority", "out of range"},
          {"/routes/1/advmss", json(1.5), "prevResult.routes[1].advmss", "not an integer"},
          {"/routes/1/mtu", json(false), "prevResult.routes[1].mtu", "not an integer"},
          {"/routes/2/scope", json(256), "prevResult.routes[2].scope", "out of range"},
          {"/dns", json("10.1.0.53"), "prevResult.dns", "is not an object"},
          {"/dns/nameservers", json("10.1.0.53"), "prevResult.dns.nameservers",
           "is not an array of strings"},
          {"/dns/nameservers/1", json(53), "prevResult.dns.nameservers[1]", "not a string"},
          {"/dns/domain", json::array(), "prevResult.dns.domain", "not a string"},
          {"/dns/search/0", json(nullptr), "prevResult.dns.search[0]", "not a string"},
          {"/dns/options", json::object(), "prevResult.dns.options", "not an array"},
      });
}

TEST_CASE("result: ips[].version must match the address in 0.3.x/0.4.0", "[result]") {
  for (const std::string v : {"0.3.0", "0.3.1", "0.4.0"}) {
    check_decode_errors(
        v + ".json",
        {
            {"/ips/0/version", json("6"), "prevResult.ips[0].version",
             "does not match address \"10.1.0.5/24\""},
            {"/ips/1/version", json("4"), "prevResult.ips[1].version", "does not match address"},
            {"/ips/0/version", json("5"), "prevResult.ips[0].version", "is not \"4\" or \"6\""},
            {"/ips/2/version", json(4), "prevResult.ips[2].version", "not a string"},
        });
  }
}

TEST_CASE("result: a non-object result is a decode error naming `where`", "[result]") {
  for (const json& j : {json::array(), json("result"), json(nullptr), json(1)}) {
    CAPTURE(j.dump());
    auto err = error_of([&] { cni::parse_result(j, "prevResult"); });
    REQUIRE(err.has_value());
    CHECK(err->code() == cni::kErrDecode);
    CHECK_THAT(err->msg(), Contains("\"prevResult\": ") && Contains("not an object"));
  }
  // The default prefix is "result".
  json j = load_fixture("1.0.0.json");
  j["ips"][0]["address"] = "bogus";
  auto err = error_of([&] { cni::parse_result(j); });
  REQUIRE(err.has_value());
  CHECK_THAT(err->msg(), Contains("\"result.ips[0].address\""));
}

TEST_CASE("result: lenient where Go is lenient", "[result]") {
  SECTION("1.0.0 and later ignore a stray ips[].version") {
    json j = load_fixture("1.0.0.json");
    j["ips"][0]["version"] = "6";
    CHECK(cni::parse_result(j) == cni::parse_result(load_fixture("1.0.0.json")));
  }
  SECTION("0.x accepts a missing ips[].version and prints it back") {
    json j = load_fixture("0.3.1.json");
    j["ips"][1].erase("version");
    const cni::Result r = cni::parse_result(j);
    CHECK(r == cni::parse_result(load_fixture("0.3.1.json")));
    CHECK(cni::result_to_json(r, "0.3.1")["ips"][1]["version"] == "6");
  }
  SECTION("unknown keys are ignored") {
    json j = load_fixture("1.1.0.json");
    j["x-vendor"] = {{"a", 1}};
    j["interfaces"][0]["metadata"] = {{"k", "v"}};
    j["ips"][0]["weight"] = 3;
    j["routes"][0]["onlink"] = true;
    j["dns"]["ttl"] = 30;
    CHECK(cni::parse_result(j) == cni::parse_result(load_fixture("1.1.0.json")));
  }
  SECTION("null members read as absent") {
    const json j = json::parse(R"({
      "cniVersion": "1.1.0",
      "interfaces": [{"name": "eth0", "mac": null, "mtu": null}],
      "ips": [{"address": "10.1.0.5/24", "gateway": null, "interface": null}],
      "routes": null,
      "dns": null
    })");
    cni::Result expected;
    expected.cni_version = "1.1.0";
    expected.interfaces.push_back(iface("eth0"));
    expected.ips.push_back(ip_config("10.1.0.5/24"));
    CHECK(cni::parse_result(j) == expected);
  }
  SECTION("fields newer than the declared version are kept") {
    // Go's types.Route is shared by every version, so it keeps them too.
    json j = load_fixture("0.4.0.json");
    j["routes"][0]["table"] = 100;
    const cni::Result r = cni::parse_result(j);
    CHECK(r.routes[0].table == 100);
    CHECK(cni::result_to_json(r, "1.1.0")["routes"][0]["table"] == 100);
    CHECK_FALSE(cni::result_to_json(r, "1.0.0")["routes"][0].contains("table"));
  }
  SECTION("an IPv4 route may have an IPv6 next hop (RFC 5549)") {
    json j = load_fixture("1.1.0.json");
    j["routes"][0]["gw"] = "fe80::1";
    CHECK(cni::parse_result(j).routes[0].gw == ip("fe80::1"));
  }
  SECTION("interface indexes are checked against the interfaces present") {
    json j = load_fixture("1.1.0.json");
    j.erase("interfaces");
    auto err = error_of([&] { cni::parse_result(j, "prevResult"); });
    REQUIRE(err.has_value());
    CHECK(err->code() == cni::kErrDecode);
    CHECK_THAT(err->msg(),
               Contains("\"prevResult.ips[0].interface\": ") && Contains("0 interface(s)"));
    for (auto& i : j["ips"]) i.erase("interface");  // an IPAM result has no indexes
    CHECK(cni::parse_result(j, "prevResult").ips.size() == 3);
  }
}

TEST_CASE("dns: parse_dns and dns_to_json", "[result][dns]") {
  const json full = json::parse(R"({"nameservers": ["192.0.2.53"], "domain": "example.org",
                                    "search": ["a.example.org"], "options": ["ndots:2"]})");
  const cni::Dns d = cni::parse_dns(full, "dns");
  CHECK(d == dns({"192.0.2.53"}, "example.org", {"a.example.org"}, {"ndots:2"}));
  CHECK(cni::dns_to_json(d) == full);

  CHECK(cni::parse_dns(json(nullptr), "dns").empty());
  CHECK(cni::parse_dns(json::object(), "dns").empty());
  CHECK(cni::dns_to_json(cni::Dns{}) == json::object());
  CHECK(cni::dns_to_json(dns({}, "", {"x"}, {})) == json{{"search", {"x"}}});

  auto err = error_of([] { cni::parse_dns(json{{"search", {"a", 1}}}, "ipam.dns"); });
  REQUIRE(err.has_value());
  CHECK(err->code() == cni::kErrDecode);
  CHECK_THAT(err->msg(), Contains("\"ipam.dns.search[1]\": 1 is not a string"));

  err = error_of([] { cni::parse_dns(json::array(), "dns"); });
  REQUIRE(err.has_value());
  CHECK_THAT(err->msg(), Contains("\"dns\": [] is not an object"));
}
