#include "support/loopback_tls_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shardline::testing {

struct LoopbackTlsServer::Tls {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  SSL_CTX* ctx = nullptr;
  ~Tls() {
    SSL_CTX_free(ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

namespace {

Status openssl_failure(std::string_view what) {
  char buf[256] = {};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  return Status::unavailable("loopback TLS server: " + std::string(what) + ": " + buf);
}

bool add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

}  // namespace

LoopbackTlsServer::LoopbackTlsServer() : tls_(std::make_unique<Tls>()) {}

Result<std::unique_ptr<LoopbackTlsServer>> LoopbackTlsServer::start(
    std::string_view subject_alt_names) {
  std::unique_ptr<LoopbackTlsServer> s(new LoopbackTlsServer());
  Tls& tls = *s->tls_;

  // A self-signed P-256 certificate valid for an hour either side of now.
  tls.key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (tls.key == nullptr) return openssl_failure("key generation");
  tls.cert = X509_new();
  if (tls.cert == nullptr) return openssl_failure("X509_new");
  X509_set_version(tls.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(tls.cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(tls.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(tls.cert), 3600);
  X509_set_pubkey(tls.cert, tls.key);
  X509_NAME* name = X509_get_subject_name(tls.cert);
  const unsigned char cn[] = "shardline loopback test";
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0);
  X509_set_issuer_name(tls.cert, name);
  const std::string san(subject_alt_names);
  if (!add_extension(tls.cert, NID_basic_constraints, "critical,CA:TRUE") ||
      !add_extension(tls.cert, NID_subject_key_identifier, "hash") ||
      !add_extension(tls.cert, NID_subject_alt_name, san.c_str())) {
    return openssl_failure("certificate extensions");
  }
  if (X509_sign(tls.cert, tls.key, EVP_sha256()) == 0) return openssl_failure("X509_sign");

  char path[] = "/tmp/shardline-test-ca-XXXXXX";
  const int pem_fd = ::mkstemp(path);
  if (pem_fd < 0) return Status::unavailable("loopback TLS server: mkstemp failed");
  s->ca_file_ = path;
  FILE* pem = ::fdopen(pem_fd, "w");
  if (pem == nullptr) {
    ::close(pem_fd);
    return Status::unavailable("loopback TLS server: fdopen failed");
  }
  const bool written = PEM_write_X509(pem, tls.cert) == 1;
  std::fclose(pem);
  if (!written) return openssl_failure("PEM_write_X509");

  tls.ctx = SSL_CTX_new(TLS_server_method());
  if (tls.ctx == nullptr) return openssl_failure("SSL_CTX_new");
  if (SSL_CTX_use_certificate(tls.ctx, tls.cert) != 1 ||
      SSL_CTX_use_PrivateKey(tls.ctx, tls.key) != 1) {
    return openssl_failure("SSL_CTX_use_certificate");
  }

  auto fail = [](std::string_view what) {
    return Status::unavailable("loopback TLS server: " + std::string(what) + ": " +
                               std::strerror(errno));
  };
  s->wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (s->wake_fd_ < 0) return fail("eventfd");
  s->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail("bind");
  }
  if (::listen(s->listen_fd_, 64) != 0) return fail("listen");
  socklen_t len = sizeof(addr);
  if (::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return fail("getsockname");
  }
  s->port_ = ntohs(addr.sin_port);
  s->thread_ = std::thread([server = s.get()] { server->run(); });
  return s;
}

LoopbackTlsServer::~LoopbackTlsServer() {
  if (thread_.joinable()) {
    stop_.store(true);
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (!ca_file_.empty()) ::unlink(ca_file_.c_str());
}

std::string LoopbackTlsServer::url(std::string_view path) const {
  return "https://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

// Locality: server thread.
void LoopbackTlsServer::run() {
  // OpenSSL writes to the socket directly: a peer that hung up must give EPIPE, not SIGPIPE.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  while (!stop_.load()) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (stop_.load()) return;
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) serve(fd);
    }
  }
}

// Blocking, one connection: a stalled client is cut off by the socket timeouts.
void LoopbackTlsServer::serve(int fd) {
  timeval tv{};
  tv.tv_sec = 5;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SSL* ssl = SSL_new(tls_->ctx);
  if (ssl != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
    handshakes_.fetch_add(1);
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      const int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    if (head.find("\r\n\r\n") != std::string::npos) {
      static constexpr std::string_view kAnswer =
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
          "Connection: close\r\n\r\nok";
      if (SSL_write(ssl, kAnswer.data(), static_cast<int>(kAnswer.size())) > 0) {
        requests_.fetch_add(1);
      }
      SSL_shutdown(ssl);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fd);
}

}  // namespace shardline::testing
