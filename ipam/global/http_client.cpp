#include "ipam/global/http_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace ipam {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 64 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

// The queued OpenSSL errors, oldest first ("" when none).
std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out;
}

// OpenSSL writes to the socket with send(2) without MSG_NOSIGNAL: a peer that closed the
// connection would kill the process with SIGPIPE. Blocked around each TLS call, and a
// SIGPIPE raised meanwhile is taken out of the thread's pending set before it is unblocked
// (a process-wide SIG_IGN would change every caller's process).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~SigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old_, SIGPIPE)) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      timespec zero{};
      sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t old_;
};

bool is_ip_literal(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

long ms_left(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max<long>(0, left.count());
}

}  // namespace

// ---- URL --------------------------------------------------------------------------------

HttpUrl HttpUrl::parse(const std::string& url) {
  HttpUrl u;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    throw std::invalid_argument("\"" + url + "\" is not an http:// or https:// URL");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) {
    throw std::invalid_argument("\"" + url + "\": an endpoint has no path");
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) throw std::invalid_argument("\"" + url + "\": unclosed [");
    u.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') throw std::invalid_argument("\"" + url + "\": junk after ]");
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (u.host.empty()) throw std::invalid_argument("\"" + url + "\" has no host");
  u.port = u.tls ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) {
      throw std::invalid_argument("\"" + url + "\": bad port \"" + port + "\"");
    }
    u.port = static_cast<uint16_t>(v);
  }
  return u;
}

std::string HttpUrl::authority() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// ---- TLS context ------------------------------------------------------------------------

class TlsContext {
 public:
  explicit TlsContext(const TlsFiles& f) {
    // Only here: an http:// endpoint never initialises OpenSSL.
    OPENSSL_init_ssl(0, nullptr);
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) throw HttpError("SSL: cannot make a context: " + ssl_errors(), false);
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    // A peer closing without close_notify is an end of stream, not an error (as curl does).
    SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (!f.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_, f.ca_file.c_str(), nullptr) != 1) {
        fail("SSL: cannot read the CA file \"" + f.ca_file + "\"");
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
      fail("SSL: cannot load the system's trust store");
    }
    if (!f.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx_, f.cert_file.c_str()) != 1) {
        fail("SSL: cannot read the client certificate \"" + f.cert_file + "\"");
      }
      if (SSL_CTX_use_PrivateKey_file(ctx_, f.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx_) != 1) {
        fail("SSL: cannot use the client key \"" + f.key_file + "\"");
      }
    }
  }
  ~TlsContext() { SSL_CTX_free(ctx_); }
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  [[noreturn]] void fail(const std::string& what) {
    std::string why = ssl_errors();
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw HttpError(what + (why.empty() ? "" : ": " + why), false);
  }
  SSL_CTX* ctx_ = nullptr;
};

void HttpConnection::SslDeleter::operator()(ssl_st* ssl) const {
  SigpipeBlock block;
  SSL_free(ssl);
}

// ---- chunked transfer coding ------------------------------------------------------------

class HttpConnection::Chunked {
 public:
  // Moves what `in` holds of the body into `out`; true once the last chunk and the trailer
  // are consumed. Throws HttpError on malformed framing.
  bool decode(std::string& in, std::string& out) {
    size_t pos = 0;
    while (state_ != kDone) {
      if (state_ == kData) {
        size_t n = std::min(left_, in.size() - pos);
        out.append(in, pos, n);
        pos += n;
        left_ -= n;
        if (left_ > 0) break;
        state_ = kDataEnd;
        continue;
      }
      size_t eol = in.find("\r\n", pos);
      if (eol == std::string::npos) {
        if (in.size() - pos > 4096) throw HttpError("malformed chunked answer", false);
        break;
      }
      std::string line = in.substr(pos, eol - pos);
      pos = eol + 2;
      if (state_ == kDataEnd) {
        if (!line.empty())
          throw HttpError("malformed chunked answer (no CRLF after a chunk)", false);
        state_ = kSize;
      } else if (state_ == kSize) {
        size_t size = 0;
        std::string hex = trim(line.substr(0, line.find(';')));
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (hex.empty() || ec != std::errc() || p != hex.data() + hex.size()) {
          throw HttpError("malformed chunk size \"" + line + "\"", false);
        }
        if (size == 0) {
          state_ = kTrailer;
        } else {
          left_ = size;
          state_ = kData;
        }
      } else if (line.empty()) {  // kTrailer: an empty line ends it
        state_ = kDone;
      }
    }
    in.erase(0, pos);
    return state_ == kDone;
  }

 private:
  enum State { kSize, kData, kDataEnd, kTrailer, kDone } state_ = kSize;
  size_t left_ = 0;
};

// ---- connection -------------------------------------------------------------------------

HttpConnection::HttpConnection(HttpUrl url, const TlsFiles& tls)
    : url_(std::move(url)), tls_files_(tls) {}

HttpConnection::~HttpConnection() = default;

void HttpConnection::close() {
  stream_.reset();
  stream_plain_ = false;
  ssl_.reset();
  fd_.reset();
  in_.clear();
  reused_ = false;
}

bool HttpConnection::buffered() const { return ssl_ && SSL_pending(ssl_.get()) > 0; }

void HttpConnection::fail(const std::string& what, bool timed_out) {
  close();
  throw HttpError(url_.authority() + ": " + what, timed_out);
}

void HttpConnection::wait_io(bool want_write, Deadline deadline, const char* what) {
  for (;;) {
    long left = ms_left(deadline);
    if (left <= 0) fail(std::string(what) + ": timed out", true);
    pollfd p{fd_.get(), static_cast<short>(want_write ? POLLOUT : POLLIN), 0};
    int n = poll(&p, 1, static_cast<int>(std::min<long>(left, 60000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(std::string(what) + ": poll: " + std::strerror(errno));
    if (n > 0) return;  // ready, or an error the next read/write reports
  }
}

void HttpConnection::connect(Deadline deadline, std::chrono::milliseconds connect_timeout) {
  close();
  Deadline until = std::min(deadline, Clock::now() + connect_timeout);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  // An address needs no resolver (nor, in a static executable, the NSS modules).
  if (is_ip_literal(url_.host)) hints.ai_flags |= AI_NUMERICHOST;
  addrinfo* res = nullptr;
  std::string port = std::to_string(url_.port);
  if (int rc = getaddrinfo(url_.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    fail(std::string("cannot resolve host: ") + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, freeaddrinfo);
  std::string error = "no address";
  for (addrinfo* a = res; a && !fd_; a = a->ai_next) {
    cni::UniqueFd fd(socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      error = std::string("connect: ") + std::strerror(errno);
      continue;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = 0;
    do {
      n = poll(&p, 1, static_cast<int>(ms_left(until)));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      error = "connect: timed out";
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (n < 0 || err != 0) {
      error = std::string("connect: ") + std::strerror(n < 0 ? errno : err);
      continue;
    }
    fd_ = std::move(fd);
  }
  if (!fd_) fail(error, error == "connect: timed out");
  if (!url_.tls) return;

  SigpipeBlock block;
  try {
    if (!tls_) tls_ = std::make_unique<TlsContext>(tls_files_);
  } catch (const HttpError& e) {
    fail(e.what());
  }
  ssl_.reset(SSL_new(tls_->get()));
  if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) fail("SSL: " + ssl_errors());
  if (is_ip_literal(url_.host)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), url_.host.c_str());
  } else {
    // SNI (SSL_set_tlsext_host_name, spelled out: the macro casts the C way).
    SSL_ctrl(ssl_.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(url_.host.c_str()));
    SSL_set1_host(ssl_.get(), url_.host.c_str());
  }
  for (;;) {
    int rc = SSL_connect(ssl_.get());
    if (rc == 1) return;
    int err = SSL_get_error(ssl_.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      wait_io(err == SSL_ERROR_WANT_WRITE, until, "SSL handshake");
      continue;
    }
    long verify = SSL_get_verify_result(ssl_.get());
    std::string why = ssl_errors();
    if (verify != X509_V_OK) {
      fail(std::string("SSL certificate problem: ") + X509_verify_cert_error_string(verify));
    }
    fail("SSL handshake failed" +
         (why.empty() ? std::string(err == SSL_ERROR_SYSCALL ? ": connection closed" : "")
                      : ": " + why));
  }
}

ssize_t HttpConnection::io_read(char* buf, size_t n, bool* want_write) {
  *want_write = false;
  if (!ssl_) {
    ssize_t r = ::recv(fd_.get(), buf, n, 0);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -1;
    fail(std::string("receive: ") + std::strerror(errno));
  }
  SigpipeBlock block;
  int r = SSL_read(ssl_.get(), buf, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
  if (r > 0) return r;
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_READ) return -1;
  if (err == SSL_ERROR_WANT_WRITE) {
    *want_write = true;
    return -1;
  }
  if (err == SSL_ERROR_ZERO_RETURN) return 0;
  std::string why = ssl_errors();
  if (err == SSL_ERROR_SYSCALL && why.empty()) {
    if (errno == 0 || errno == ECONNRESET) return 0;
    fail(std::string("receive: ") + std::strerror(errno));
  }
  fail("SSL read: " + why);
}

ssize_t HttpConnection::io_write(const char* buf, size_t n, bool* want_write) {
  *want_write = true;
  if (!ssl_) {
    ssize_t r = ::send(fd_.get(), buf, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return -1;
    fail(std::string("send: ") + std::strerror(errno));
  }
  SigpipeBlock block;
  int r = SSL_write(ssl_.get(), buf, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
  if (r > 0) return r;
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_WRITE) return -1;
  if (err == SSL_ERROR_WANT_READ) {
    *want_write = false;
    return -1;
  }
  std::string why = ssl_errors();
  fail("SSL write: " + (why.empty() ? std::string(std::strerror(errno)) : why));
}

void HttpConnection::send_all(const std::string& data, Deadline deadline) {
  size_t off = 0;
  while (off < data.size()) {
    bool want_write = true;
    ssize_t n = io_write(data.data() + off, data.size() - off, &want_write);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else {
      wait_io(want_write, deadline, "send");
    }
  }
}

bool HttpConnection::fill(Deadline deadline) {
  char buf[16384];
  for (;;) {
    bool want_write = false;
    ssize_t n = io_read(buf, sizeof buf, &want_write);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      received_ += static_cast<size_t>(n);
      return true;
    }
    if (n == 0) return false;
    wait_io(want_write, deadline, "waiting for the answer");
  }
}

void HttpConnection::send_request(const std::string& path, const std::string& body,
                                  Deadline deadline) {
  std::string req =
      "POST " + path + " HTTP/1.1\r\nHost: " + url_.authority() +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  req += body;
  received_ = 0;
  send_all(req, deadline);
}

HttpConnection::Head HttpConnection::read_head(Deadline deadline) {
  size_t end;
  while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
    if (in_.size() > kMaxHead) fail("answer head larger than 64 KiB");
    if (!fill(deadline)) fail(in_.empty() ? "connection closed" : "connection closed mid-answer");
  }
  std::string head = in_.substr(0, end);
  in_.erase(0, end + 4);
  Head h;
  size_t eol = head.find("\r\n");
  std::string status = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status.rfind("HTTP/1.", 0) != 0 || status.size() < 12) {
    fail("not an HTTP answer: \"" + status.substr(0, 80) + "\"");
  }
  auto [p, ec] = std::from_chars(status.data() + 9, status.data() + 12, h.status);
  if (ec != std::errc() || p != status.data() + 12) fail("bad status line \"" + status + "\"");
  h.close = status[7] == '0';  // HTTP/1.0
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "content-length") {
      size_t n = 0;
      auto [q, e2] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (e2 != std::errc() || q != value.data() + value.size()) {
        fail("bad Content-Length \"" + value + "\"");
      }
      h.content_length = n;
    } else if (name == "transfer-encoding") {
      h.chunked = lower(value).find("chunked") != std::string::npos;
    } else if (name == "connection") {
      std::string v = lower(value);
      if (v.find("close") != std::string::npos) h.close = true;
      if (v.find("keep-alive") != std::string::npos) h.close = false;
    }
  }
  return h;
}

std::string HttpConnection::read_body(const Head& h, Deadline deadline) {
  std::string body;
  if (h.chunked) {
    Chunked c;
    while (!c.decode(in_, body)) {
      if (!fill(deadline)) fail("connection closed mid-answer");
    }
  } else if (h.content_length) {
    while (in_.size() < *h.content_length) {
      if (!fill(deadline)) fail("connection closed mid-answer");
    }
    body = in_.substr(0, *h.content_length);
    in_.erase(0, *h.content_length);
  } else {
    while (fill(deadline)) {
    }
    body = std::move(in_);
    in_.clear();
    close();
  }
  return body;
}

void HttpConnection::open(Deadline deadline, std::chrono::milliseconds connect_timeout) {
  if (is_open()) return;
  connect(deadline, connect_timeout);
  reused_ = true;
}

HttpResponse HttpConnection::post(const std::string& path, const std::string& body,
                                  Deadline deadline, std::chrono::milliseconds connect_timeout) {
  for (int attempt = 0;; ++attempt) {
    bool fresh = !is_open();
    if (fresh) connect(deadline, connect_timeout);
    bool reused = reused_;
    try {
      send_request(path, body, deadline);
      Head h = read_head(deadline);
      HttpResponse r{h.status, read_body(h, deadline)};
      if (h.close) {
        close();
      } else {
        reused_ = true;
      }
      return r;
    } catch (const HttpError& e) {
      // A kept-alive connection the server closed while it was idle fails before any byte of
      // an answer: open a new one, once.
      if (!reused || attempt > 0 || e.timed_out() || received_ > 0) throw;
    }
  }
}

int HttpConnection::open_stream(const std::string& path, const std::string& body, Deadline deadline,
                                std::chrono::milliseconds connect_timeout,
                                std::string* error_body) {
  close();  // a stream has its connection to itself
  connect(deadline, connect_timeout);
  send_request(path, body, deadline);
  Head h = read_head(deadline);
  if (h.status != 200) {
    std::string b = read_body(h, deadline);
    if (error_body) *error_body = std::move(b);
    close();
    return h.status;
  }
  if (h.chunked) {
    stream_ = std::make_unique<Chunked>();
  } else {
    stream_plain_ = true;
  }
  return h.status;
}

bool HttpConnection::read_stream(std::string& out, Deadline deadline) {
  if (!stream_ && !stream_plain_) throw HttpError(url_.authority() + ": no stream open", false);
  for (;;) {
    size_t before = out.size();
    bool done = false;
    if (stream_) {
      done = stream_->decode(in_, out);
    } else {
      out += in_;
      in_.clear();
    }
    if (done) fail("the stream ended");
    if (out.size() > before) return true;
    // What has arrived (the socket does not block), then wait, but not past the deadline:
    // there, nothing new is an answer too.
    char buf[16384];
    bool want_write = false;
    ssize_t n = io_read(buf, sizeof buf, &want_write);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) fail("the stream was closed");
    long left = ms_left(deadline);
    if (left <= 0) return false;
    pollfd p{fd_.get(), static_cast<short>(want_write ? POLLOUT : POLLIN), 0};
    int r = poll(&p, 1, static_cast<int>(std::min<long>(left, 60000)));
    if (r < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
  }
}

}  // namespace ipam
