// The etcd store's HTTP client against a scripted server on 127.0.0.1 (a thread in this test):
// framings, keep-alive, a connection the server closed while idle, faults and deadlines.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "ipam/global/http_client.h"
#include "libcni/core/fd.h"
#include "test/support/loopback.h"

using ipam::HttpConnection;
using ipam::HttpError;
using ipam::HttpUrl;
using namespace std::chrono_literals;

namespace {

auto in(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

// Listens on 127.0.0.1:<free port>; serve(fd) runs for each accepted connection, in order,
// on one thread.
class Server {
 public:
  explicit Server(std::vector<std::function<void(int)>> script) : script_(std::move(script)) {
    auto l = strait::test::listen_loopback(8);
    fd_ = std::move(l.fd);
    port_ = l.port;
    thread_ = std::thread([this] {
      for (auto& serve : script_) {
        cni::UniqueFd c(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        serve(c.get());
      }
    });
  }
  ~Server() {
    shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::vector<std::function<void(int)>> script_;
  cni::UniqueFd fd_;
  int port_ = 0;
  std::thread thread_;
};

// Reads one request (head and Content-Length body); "" when the client closed.
std::string read_request(int fd) {
  std::string req;
  char buf[4096];
  for (;;) {
    size_t end = req.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t cl = req.find("Content-Length: ");
      size_t n = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
      if (req.size() >= end + 4 + n) return req;
    }
    ssize_t got = read(fd, buf, sizeof buf);
    if (got <= 0) return "";
    req.append(buf, static_cast<size_t>(got));
  }
}

void send_str(int fd, const std::string& s) {
  REQUIRE(write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
}

}  // namespace

TEST_CASE("http client: URLs", "[global-ipam][http]") {
  auto u = HttpUrl::parse("https://[fd00::1]:2379/");
  CHECK(u.tls);
  CHECK(u.host == "fd00::1");
  CHECK(u.port == 2379);
  CHECK(u.authority() == "[fd00::1]:2379");
  CHECK(HttpUrl::parse("http://etcd-0").port == 80);
  CHECK(HttpUrl::parse("https://10.0.0.1").port == 443);
  for (const char* bad : {"ftp://x", "http://", "http://h:0", "http://h:70000", "http://h:x",
                          "http://h/v3", "http://[::1"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(HttpUrl::parse(bad), std::invalid_argument);
  }
}

TEST_CASE("http client: Content-Length and chunked answers on one kept-alive connection",
          "[global-ipam][http]") {
  std::vector<std::string> seen;
  Server s({[&](int fd) {
    seen.push_back(read_request(fd));
    send_str(
        fd,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
    seen.push_back(read_request(fd));
    send_str(fd,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
             "chunked\r\n\r\n4\r\n{\"b\"\r\n3;x=y\r\n:2}\r\n0\r\n\r\n");
    seen.push_back(read_request(fd));
    send_str(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno");
  }});
  HttpConnection c(HttpUrl::parse(s.url()), {});
  auto r1 = c.post("/v3/kv/range", "{\"key\":\"x\"}", in(5s), 1s);
  CHECK(r1.status == 200);
  CHECK(r1.body == "{\"a\":1}");
  auto r2 = c.post("/v3/kv/txn", "{}", in(5s), 1s);
  CHECK(r2.body == "{\"b\":2}");
  auto r3 = c.post("/v3/kv/txn", "{}", in(5s), 1s);
  CHECK(r3.status == 503);
  CHECK(r3.body == "no");
  REQUIRE(seen.size() == 3);
  CHECK(seen[0].rfind("POST /v3/kv/range HTTP/1.1\r\n", 0) == 0);
  CHECK(seen[0].find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(seen[0].find("\r\n\r\n{\"key\":\"x\"}") != std::string::npos);
}

TEST_CASE("http client: a kept-alive connection closed while idle is reopened once",
          "[global-ipam][http]") {
  Server s({[&](int fd) {
              read_request(fd);
              send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
              // and closes, as a server timing out an idle connection does
            },
            [&](int fd) {
              read_request(fd);
              send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
            }});
  HttpConnection c(HttpUrl::parse(s.url()), {});
  CHECK(c.post("/a", "{}", in(5s), 1s).body == "1");
  std::this_thread::sleep_for(50ms);  // let the close arrive (an order, not a timed check)
  CHECK(c.post("/a", "{}", in(5s), 1s).body == "2");
}

TEST_CASE(
    "http client: a connection opened ahead carries the next request, reopened once if "
    "the server closed it",
    "[global-ipam][http]") {
  std::vector<std::string> seen;
  Server s({[&](int) { seen.push_back("closed"); },  // closes at once, reading nothing
            [&](int fd) {
              seen.push_back(read_request(fd));
              send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
              seen.push_back(read_request(fd));
              send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
            }});
  HttpConnection c(HttpUrl::parse(s.url()), {});
  c.open(in(5s), 1s);
  REQUIRE(c.is_open());
  // The server closed it unused: the request meets the closed connection and goes out
  // again on a new one, as after an idle close.
  std::this_thread::sleep_for(50ms);  // let the close arrive (an order, not a timed check)
  CHECK(c.post("/a", "{}", in(5s), 1s).body == "1");
  c.open(in(5s), 1s);  // open already: nothing new
  CHECK(c.post("/b", "{}", in(5s), 1s).body == "2");
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == "closed");  // the connection opened ahead
  CHECK(seen[1].rfind("POST /a ", 0) == 0);
  CHECK(seen[2].rfind("POST /b ", 0) == 0);
}

TEST_CASE("http client: faults are HttpErrors that say what failed", "[global-ipam][http]") {
  SECTION("refused") {
    std::string url;
    {
      Server gone({});
      url = gone.url();
    }
    HttpConnection c(HttpUrl::parse(url), {});
    try {
      c.post("/a", "{}", in(5s), 1s);
      FAIL("no error");
    } catch (const HttpError& e) {
      CHECK_FALSE(e.timed_out());
      CHECK(std::string(e.what()).find("connect: Connection refused") != std::string::npos);
    }
  }
  SECTION("no answer before the deadline") {
    Server s({[&](int fd) {
      read_request(fd);
      read_request(fd);  // until the client gives up and closes
    }});
    HttpConnection c(HttpUrl::parse(s.url()), {});
    try {
      c.post("/a", "{}", in(200ms), 1s);
      FAIL("no error");
    } catch (const HttpError& e) {
      CHECK(e.timed_out());
      CHECK_FALSE(c.is_open());
    }
  }
  SECTION("closed mid-answer, and not HTTP") {
    Server s({[&](int fd) {
                read_request(fd);
                send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12");
              },
              [&](int fd) {
                read_request(fd);
                send_str(fd, "SSH-2.0-OpenSSH\r\n\r\n");
              }});
    HttpConnection c(HttpUrl::parse(s.url()), {});
    CHECK_THROWS_WITH(c.post("/a", "{}", in(5s), 1s), Catch::Contains("closed mid-answer"));
    CHECK_THROWS_WITH(c.post("/a", "{}", in(5s), 1s), Catch::Contains("not an HTTP answer"));
  }
}

TEST_CASE("http client: a chunked stream read as it arrives", "[global-ipam][http]") {
  Server s({[&](int fd) {
    read_request(fd);
    send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n");
    std::this_thread::sleep_for(100ms);
    send_str(fd, "7\r\nsecond\n\r\n");
    std::this_thread::sleep_for(100ms);
    // then the server goes away
  }});
  HttpConnection c(HttpUrl::parse(s.url()), {});
  REQUIRE(c.open_stream("/v3/watch", "{}", in(5s), 1s, nullptr) == 200);
  std::string got;
  while (got.find("second") == std::string::npos) REQUIRE(c.read_stream(got, in(5s)));
  CHECK(got == "first\nsecond\n");
  CHECK_THROWS_AS(c.read_stream(got, in(5s)), HttpError);
  CHECK_FALSE(c.is_open());
}
