// Credentials, the static and environment providers, the chain and the cache.
#include "shardline/credentials.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>

#include "aws/aws_time.h"
#include "aws/credentials_internal.h"
#include "aws/shared_config.h"

namespace shardline {

std::string Credentials::to_string() const {
  std::string s("Credentials{access_key_id=");
  s.append(access_key_id);
  s.append(", secret_access_key=").append(secret_access_key.empty() ? "<none>" : "<redacted>");
  s.append(", session_token=").append(session_token.empty() ? "<none>" : "<redacted>");
  s.append(", expiration=").append(expiration ? detail::format_iso8601(*expiration) : "<never>");
  if (!source.empty()) s.append(", source=").append(source);
  s += '}';
  return s;
}

std::ostream& operator<<(std::ostream& os, const Credentials& c) { return os << c.to_string(); }

namespace detail {

Status not_configured(std::string message) { return Status::not_found(std::move(message)); }

}  // namespace detail

namespace {

using std::chrono::system_clock;

class StaticProvider final : public CredentialsProvider {
 public:
  explicit StaticProvider(Credentials c) : creds_(with_source(std::move(c))) {}
  Result<Credentials> get() override {
    if (creds_.access_key_id.empty() || creds_.secret_access_key.empty()) {
      return detail::not_configured("static credentials are empty");
    }
    return creds_;
  }
  std::string name() const override { return "static"; }

 private:
  static Credentials with_source(Credentials c) {
    if (c.source.empty()) c.source = "static";
    return c;
  }
  const Credentials creds_;  // immutable: get() is thread-safe without a lock
};

class EnvironmentProvider final : public CredentialsProvider {
 public:
  EnvironmentProvider()
      : access_key_(detail::env_var("AWS_ACCESS_KEY_ID")),
        secret_key_(detail::env_var("AWS_SECRET_ACCESS_KEY")),
        token_(detail::env_var("AWS_SESSION_TOKEN")) {}

  Result<Credentials> get() override {
    if (!access_key_ && !secret_key_) {
      return detail::not_configured("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
    }
    if (!access_key_) {
      return Status::invalid_argument("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    }
    if (!secret_key_) {
      return Status::invalid_argument("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    }
    Credentials c;
    c.access_key_id = *access_key_;
    c.secret_access_key = *secret_key_;
    c.session_token = token_.value_or("");
    c.source = "environment";
    return c;
  }
  std::string name() const override { return "environment"; }

 private:
  const std::optional<std::string> access_key_, secret_key_, token_;
};

class ChainProvider final : public CredentialsProvider {
 public:
  explicit ChainProvider(std::vector<std::shared_ptr<CredentialsProvider>> providers)
      : providers_(std::move(providers)) {}

  Result<Credentials> get() override {
    std::string tried;
    RetryClass retry = RetryClass::kNone;
    for (const auto& p : providers_) {
      auto r = p->get();
      if (r.ok()) return r;
      if (!tried.empty()) tried += ", ";
      tried.append(p->name()).append(" [").append(r.status().message()).append("]");
      // Only "not configured here" (kNotFound) moves on: a source that is configured but
      // broken (a bad file, an unknown explicit profile, STS refusing the role, a failing
      // credential_process, an unreachable container endpoint) ends the search, as in
      // botocore, rather than silently falling through to other credentials such as the
      // instance role.
      if (r.status().code() != StatusCode::kNotFound) {
        retry = r.status().retry();
        break;
      }
    }
    if (providers_.empty()) tried = "no providers";
    // A transient failure (metadata service unreachable) keeps its retry class.
    return Status(StatusCode::kUnauthenticated, "no credentials found (tried: " + tried + ")",
                  retry);
  }
  std::string name() const override { return "chain"; }

 private:
  const std::vector<std::shared_ptr<CredentialsProvider>> providers_;
};

class CachingProvider final : public CredentialsProvider {
 public:
  CachingProvider(std::shared_ptr<CredentialsProvider> inner, CachingOptions options)
      : inner_(std::move(inner)), options_(std::move(options)), rng_(std::random_device{}()) {
    if (!options_.clock) {
      options_.clock = std::shared_ptr<Clock>(&SteadyClock::instance(), [](Clock*) {});
    }
  }

  ~CachingProvider() override {
    std::thread t;
    {
      std::lock_guard<std::mutex> lock(mu_);
      t = std::move(refresher_);
    }
    if (t.joinable()) t.join();
  }

  Result<Credentials> get() override {
    std::unique_lock<std::mutex> lock(mu_);
    const system_clock::time_point now = wall_now();
    if (cached_ && now < stale_at_) {
      if (now >= refresh_at_ && !refreshing_ && now >= next_attempt_) start_background(lock);
      return *cached_;
    }
    // Nothing usable cached: block until a fetch completes.
    if (refreshing_) {
      const std::uint64_t seen = generation_;
      cv_.wait(lock, [&] { return generation_ != seen && !refreshing_; });
      if (cached_ && wall_now() < stale_at_) return *cached_;
      if (!last_error_.ok()) return last_error_;
    }
    const system_clock::time_point start = wall_now();
    if (!last_error_.ok() && start < next_attempt_) return last_error_;
    refreshing_ = true;
    next_attempt_ = start + options_.min_refresh_interval;
    lock.unlock();
    Result<Credentials> r = inner_->get();
    lock.lock();
    store(r);
    if (r.ok()) return r;
    return last_error_;
  }

  std::string name() const override { return inner_->name(); }

 private:
  system_clock::time_point wall_now() const {
    return system_clock::time_point(std::chrono::milliseconds(options_.clock->wall_ms()));
  }

  // Locks: mu_ held. Records the outcome of a fetch and wakes the waiters.
  void store(const Result<Credentials>& r) {
    refreshing_ = false;
    ++generation_;
    if (r.ok()) {
      cached_ = *r;
      last_error_ = Status();
      if (cached_->expiration) {
        const auto exp = *cached_->expiration;
        const auto jitter_ms = options_.refresh_jitter.count() > 0
                                   ? std::uniform_int_distribution<std::int64_t>(
                                         0, options_.refresh_jitter.count() * 1000)(rng_)
                                   : 0;
        refresh_at_ = exp - options_.refresh_before_expiry - std::chrono::milliseconds(jitter_ms);
        // Credentials that arrive already inside the margin are served until the next attempt
        // is allowed, instead of sending every caller back to the source.
        stale_at_ = std::max(exp - options_.expiry_margin, next_attempt_);
      } else {
        refresh_at_ = system_clock::time_point::max();
        stale_at_ = system_clock::time_point::max();
      }
    } else {
      last_error_ = r.status();
    }
    cv_.notify_all();
  }

  // Locks: mu_ held on entry and exit.
  void start_background(std::unique_lock<std::mutex>& lock) {
    refreshing_ = true;
    // Attempts are spaced start to start: what a failed refresh changes is only refreshing_.
    next_attempt_ = wall_now() + options_.min_refresh_interval;
    std::thread previous = std::move(refresher_);
    // The previous refresher has finished (refreshing_ was false) or is about to return from
    // store(); joining it must not hold the lock it may still need.
    lock.unlock();
    if (previous.joinable()) previous.join();
    lock.lock();
    refresher_ = std::thread([this] {
      Result<Credentials> r = inner_->get();
      std::lock_guard<std::mutex> guard(mu_);
      if (r.ok()) {
        store(r);
      } else {
        // Keep serving the cached credentials; the next get() after next_attempt_ retries.
        refreshing_ = false;
        ++generation_;
        cv_.notify_all();
      }
    });
  }

  const std::shared_ptr<CredentialsProvider> inner_;
  CachingOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Credentials> cached_;        // guarded by mu_
  system_clock::time_point refresh_at_{};    // guarded by mu_
  system_clock::time_point stale_at_{};      // guarded by mu_
  system_clock::time_point next_attempt_{};  // guarded by mu_
  bool refreshing_ = false;                  // guarded by mu_
  std::uint64_t generation_ = 0;             // guarded by mu_: completed fetches
  Status last_error_;                        // guarded by mu_: last blocking fetch failure
  std::mt19937_64 rng_;                      // guarded by mu_
  std::thread refresher_;                    // guarded by mu_
};

}  // namespace

std::shared_ptr<CredentialsProvider> make_static_credentials_provider(Credentials credentials) {
  return std::make_shared<StaticProvider>(std::move(credentials));
}

std::shared_ptr<CredentialsProvider> make_environment_credentials_provider() {
  return std::make_shared<EnvironmentProvider>();
}

std::shared_ptr<CredentialsProvider> make_chain_credentials_provider(
    std::vector<std::shared_ptr<CredentialsProvider>> providers) {
  return std::make_shared<ChainProvider>(std::move(providers));
}

std::shared_ptr<CredentialsProvider> make_caching_credentials_provider(
    std::shared_ptr<CredentialsProvider> inner, CachingOptions options) {
  return std::make_shared<CachingProvider>(std::move(inner), std::move(options));
}

std::shared_ptr<CredentialsProvider> make_default_credentials_provider(
    const CredentialsOptions& options) {
  std::vector<std::shared_ptr<CredentialsProvider>> chain{
      make_environment_credentials_provider(),
      make_web_identity_credentials_provider(options),
      make_profile_credentials_provider(options),
      make_container_credentials_provider(options),
      make_instance_metadata_credentials_provider(options),
  };
  return make_caching_credentials_provider(make_chain_credentials_provider(std::move(chain)),
                                           options.caching);
}

}  // namespace shardline
