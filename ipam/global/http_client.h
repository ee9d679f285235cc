#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "libcni/core/fd.h"

struct ssl_st;  // OpenSSL's SSL

// The etcd store's HTTP/1.1 client: one kept-alive connection over a socket, TLS (OpenSSL)
// only for https:// endpoints. It replaces libcurl, whose load cost (36 shared objects,
// about 13 MB RSS) every exec of global-ipam paid (docs/benchmarks.md): a plugin exec on
// the pod start path must cost next to nothing beyond its own work. It knows exactly what
// the etcd v3 JSON gateway needs: POST with a JSON body; answers with Content-Length, chunked
// or read to the end; a chunked answer read as a stream (the watch).
namespace ipam {

using Deadline = std::chrono::steady_clock::time_point;

// A transport fault (connect, TLS, send, receive, a malformed answer) or a deadline passed
// (timed_out()): the caller may try another endpoint. what() says what failed on what, in
// the words of the failing layer ("connect to 127.0.0.1:2379: Connection refused", "SSL
// certificate problem: unable to get local issuer certificate").
class HttpError : public std::runtime_error {
 public:
  HttpError(const std::string& what, bool timed_out)
      : std::runtime_error(what), timed_out_(timed_out) {}
  bool timed_out() const { return timed_out_; }

 private:
  bool timed_out_;
};

// "http://host:port" or "https://host:port" (host a name, an IPv4 address or a bracketed
// IPv6 address; port defaults to 80 / 443). Throws std::invalid_argument.
struct HttpUrl {
  bool tls = false;
  std::string host;  // without brackets
  uint16_t port = 0;
  static HttpUrl parse(const std::string& url);
  std::string authority() const;  // "host:port", IPv6 in brackets
};

// Certificates for https (PEM files); empty: the system's trust store, no client cert.
struct TlsFiles {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

class TlsContext;  // OpenSSL's SSL_CTX, made on the first https connection only

struct HttpResponse {
  int status = 0;
  std::string body;
};

// One connection to one endpoint, opened on first use and kept open between requests (etcd
// keeps idle HTTP/1.1 connections). Not thread-safe; one request at a time.
class HttpConnection {
 public:
  HttpConnection(HttpUrl url, const TlsFiles& tls);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  const HttpUrl& url() const { return url_; }

  // POSTs `body` (JSON) to `path` and reads the whole answer, all before `deadline`
  // (connecting takes at most `connect_timeout` of it: a dead member refuses at once, a hung
  // one must not eat the whole budget). A kept-alive connection the server closed while idle
  // is reopened once, transparently. Throws HttpError; the connection is then closed.
  HttpResponse post(const std::string& path, const std::string& body, Deadline deadline,
                    std::chrono::milliseconds connect_timeout);

  // The watch: POSTs like post() and reads the answer's head; the body is then read with
  // read_stream() as it arrives. Returns the status (for anything but 200 the body has been
  // read whole into `error_body` and the stream is closed).
  int open_stream(const std::string& path, const std::string& body, Deadline deadline,
                  std::chrono::milliseconds connect_timeout, std::string* error_body);
  // Appends what arrived of the streamed body to `out`, waiting until `deadline` for at least
  // one byte. Returns false at the deadline with nothing new. Throws HttpError when the
  // stream ends or breaks.
  bool read_stream(std::string& out, Deadline deadline);
  // The socket to poll(POLLIN) for the stream (-1 when closed). Data may also be buffered:
  // call read_stream() when buffered() is true without polling.
  int fd() const { return fd_.get(); }
  bool buffered() const;

  // Connects now (TLS handshake included) unless open, as the next post() would, within
  // `deadline` and `connect_timeout`. Throws HttpError; the connection is then closed.
  void open(Deadline deadline, std::chrono::milliseconds connect_timeout);
  void close();
  bool is_open() const { return static_cast<bool>(fd_); }

 private:
  struct Head {
    int status = 0;
    std::optional<size_t> content_length;
    bool chunked = false;
    bool close = false;
  };
  class Chunked;

  void connect(Deadline deadline, std::chrono::milliseconds connect_timeout);
  void send_request(const std::string& path, const std::string& body, Deadline deadline);
  void send_all(const std::string& data, Deadline deadline);
  // Reads more bytes into in_; false when the peer closed the connection.
  bool fill(Deadline deadline);
  Head read_head(Deadline deadline);
  std::string read_body(const Head& head, Deadline deadline);
  // One socket or TLS read/write of at most n bytes: > 0 done, 0 peer closed, -1 would block
  // (then *want_write says for which direction to poll).
  ssize_t io_read(char* buf, size_t n, bool* want_write);
  ssize_t io_write(const char* buf, size_t n, bool* want_write);
  void wait_io(bool want_write, Deadline deadline, const char* what);
  [[noreturn]] void fail(const std::string& what, bool timed_out = false);

  HttpUrl url_;
  TlsFiles tls_files_;
  std::unique_ptr<TlsContext> tls_;  // made on the first https connect
  cni::UniqueFd fd_;
  struct SslDeleter {
    void operator()(ssl_st* ssl) const;
  };
  std::unique_ptr<ssl_st, SslDeleter> ssl_;
  std::string in_;  // bytes received and not yet consumed
  std::unique_ptr<Chunked> stream_;
  bool stream_plain_ = false;  // stream body without framing: read until the peer closes
  // The connection was open before this request (it carried an answer, or open() made it
  // ahead): the server may have closed it while it was idle.
  bool reused_ = false;
  size_t received_ = 0;  // bytes of the current answer received
};

}  // namespace ipam
