// File: support/loopback_tls_server.h
//
// A minimal HTTPS server on 127.0.0.1 (a free port) with a freshly generated self-signed
// certificate, for testing TLS verification end to end. It serves one connection at a time:
// TLS handshake, read one request head, answer `200 ok` with `Connection: close`.
//
//   auto tls = LoopbackTlsServer::start("IP:127.0.0.1,DNS:localhost");
//   ASSERT_TRUE(tls.ok());
//   HttpClientOptions o{.ca_file = (*tls)->ca_file()};    // trust exactly this certificate
//   client->send({.url = (*tls)->url("/")});             // 200 "ok"
//
// Without ca_file the certificate is unknown to the system store, so verification fails.
// The certificate and its PEM file (ca_file()) are removed by the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "shardline/result.h"

namespace shardline::testing {

class LoopbackTlsServer {
 public:
  /// `subject_alt_names` in OpenSSL's config syntax, e.g. "IP:127.0.0.1,DNS:localhost".
  /// @returns kUnavailable if a socket or OpenSSL call fails.
  static Result<std::unique_ptr<LoopbackTlsServer>> start(std::string_view subject_alt_names);
  ~LoopbackTlsServer();

  LoopbackTlsServer(const LoopbackTlsServer&) = delete;
  LoopbackTlsServer& operator=(const LoopbackTlsServer&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /// "https://127.0.0.1:PORT" + path
  std::string url(std::string_view path = "/") const;
  /// A PEM file holding the server's self-signed certificate (to use as a CA bundle).
  const std::string& ca_file() const noexcept { return ca_file_; }

  /// Handshakes that completed, and requests answered.
  std::uint64_t handshakes() const noexcept { return handshakes_.load(); }
  std::uint64_t requests() const noexcept { return requests_.load(); }

 private:
  struct Tls;
  LoopbackTlsServer();
  void run();
  void serve(int fd);

  std::unique_ptr<Tls> tls_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  std::uint16_t port_ = 0;
  std::string ca_file_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> handshakes_{0};
  std::atomic<std::uint64_t> requests_{0};
};

}  // namespace shardline::testing
