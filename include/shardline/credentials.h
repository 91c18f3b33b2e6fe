// File: shardline/credentials.h
//
// AWS credentials and where they come from. A `CredentialsProvider` hands out the keys that
// sign requests; `make_default_credentials_provider()` looks in the same places, in the same
// order, as the AWS SDKs, and caches what it finds, refreshing temporary credentials in the
// background before they expire.
//
//   auto provider = shardline::make_default_credentials_provider({.profile = "dev"});
//   shardline::Result<shardline::Credentials> c = provider->get();
//   if (!c.ok()) {
//     std::cerr << c.status().to_string() << "\n";  // names every source tried, never a secret
//     return 4;
//   }
//   std::cout << *c << "\n";  // Credentials{access_key_id=AKIA..., secret_access_key=<redacted>,
//   ...}
//
// Secrets. `Credentials::to_string()` and `operator<<` redact the secret access key and the
// session token. No provider puts a secret key, session token, web identity token or
// container authorization token into a Status message, and none logs.
//
// Environment. Providers read the environment variables that configure them when they are
// created (a snapshot: changing the environment later has no effect on an existing provider).
// Shared files, token files and credential processes are read each time the provider fetches,
// so a rotated file is picked up at the next refresh.
#pragma once

#include <chrono>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shardline/clock.h"
#include "shardline/result.h"

namespace shardline {

/// A set of AWS keys. Long-term keys have no session token and no expiration.
struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  /// Empty for long-term keys; sent as X-Amz-Security-Token.
  std::string session_token;
  /// When temporary credentials stop working; nullopt for keys that do not expire.
  std::optional<std::chrono::system_clock::time_point> expiration;
  /// Which source supplied them, for diagnostics: "environment", "profile 'dev'", ...
  std::string source;

  /// "Credentials{access_key_id=AKIDEXAMPLE, secret_access_key=<redacted>,
  /// session_token=<redacted>|<none>, expiration=2015-08-30T12:36:00Z|<never>, source=...}".
  /// Never contains the secret access key or the session token.
  std::string to_string() const;

  friend bool operator==(const Credentials&, const Credentials&) = default;
};

/// Writes `c.to_string()`: safe for logs and for GoogleTest failure messages.
std::ostream& operator<<(std::ostream& os, const Credentials& c);

/// A source of credentials.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;

  /// @brief Current credentials.
  /// @returns the credentials, or
  ///   - kNotFound: this source is not configured or holds no credentials (the message says
  ///     what is missing); a chain moves on to its next provider only after this code;
  ///   - kInvalidArgument: the source is configured but malformed (bad file, bad JSON, a
  ///     partial set of environment variables, an explicitly chosen profile that does not
  ///     exist);
  ///   - kUnavailable / kDeadlineExceeded: a metadata service or STS could not be reached;
  ///   - kPermissionDenied: STS refused the role (AccessDenied), or a metadata endpoint 401/403;
  ///   - kUnauthenticated: STS rejected the token or signature, credential_process failed;
  ///   - from a chain, always kUnauthenticated "no credentials found (tried: ...)" naming each
  ///     source tried and why it failed (retry class kSameCall if the last failure was
  ///     transient).
  /// @note Thread-safe. May block the calling thread on file, process or network I/O unless
  ///   the provider is a caching provider holding valid credentials.
  virtual Result<Credentials> get() = 0;

  /// Short name for error messages, e.g. "environment" or "profile 'dev'".
  virtual std::string name() const = 0;
};

/// How the caching provider refreshes.
struct CachingOptions {
  /// Start a background refresh this long before the credentials expire...
  std::chrono::seconds refresh_before_expiry{300};
  /// ...minus a uniformly random extra in [0, refresh_jitter], so that many processes started
  /// together do not all call the metadata service in the same second.
  std::chrono::seconds refresh_jitter{60};
  /// Credentials closer than this to their expiration count as expired: callers block until
  /// a refresh completes (a request signed just before expiry may arrive after it).
  std::chrono::seconds expiry_margin{10};
  /// Minimum time between the starts of two fetches from the source. It keeps a failing or
  /// short-lived source from being called in a loop: after a failed fetch with nothing valid
  /// cached, callers receive that same error until the interval has passed.
  std::chrono::seconds min_refresh_interval{10};
  /// The clock whose wall_ms() is compared with expirations; nullptr = the system clock.
  std::shared_ptr<Clock> clock;
};

/// Settings shared by the providers that call services or run processes.
struct CredentialsOptions {
  /// Profile in the shared files; "" = AWS_PROFILE, else "default".
  std::string profile;
  /// Region of the STS endpoint for AssumeRole and AssumeRoleWithWebIdentity; "" = the region
  /// resolve_region() finds for the profile (see aws_config.h), else us-east-1.
  std::string region;
  /// Connect and total timeout of one STS call.
  std::chrono::milliseconds sts_timeout{10000};
  /// Connect and total timeout of one instance-metadata or container-endpoint request.
  std::chrono::milliseconds metadata_timeout{1000};
  /// Attempts per metadata request (the first plus retries).
  int metadata_attempts = 2;
  /// How long a `credential_process` may run before it is killed.
  std::chrono::milliseconds process_timeout{60000};
  /// Used by make_default_credentials_provider() for its cache.
  CachingOptions caching;
};

/// Always returns `credentials` (source defaults to "static").
std::shared_ptr<CredentialsProvider> make_static_credentials_provider(Credentials credentials);

/// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN, read now.
/// get(): kNotFound if neither key variable is set; kInvalidArgument if only one is.
std::shared_ptr<CredentialsProvider> make_environment_credentials_provider();

/// AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME] -> STS
/// AssumeRoleWithWebIdentity (unsigned, query protocol). The token file is re-read on each
/// fetch (Kubernetes rotates it). STS endpoint: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else
/// https://sts.{region}.amazonaws.com.
std::shared_ptr<CredentialsProvider> make_web_identity_credentials_provider(
    const CredentialsOptions& options = {});

/// The shared files (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials; AWS_CONFIG_FILE,
/// default ~/.aws/config). For the profile, in this order:
///  - `role_arn` with `source_profile` (STS AssumeRole signed with the source profile's
///    credentials; chains of profiles allowed, cycles rejected), with `credential_source`
///    (Environment, Ec2InstanceMetadata, EcsContainer), or with `web_identity_token_file`;
///  - `aws_access_key_id` + `aws_secret_access_key` [+ `aws_session_token`];
///  - `credential_process` (run with /bin/sh; stdout is JSON Version 1 with AccessKeyId,
///    SecretAccessKey, optional SessionToken and Expiration).
/// Keys in the credentials file override the same keys in the config file.
std::shared_ptr<CredentialsProvider> make_profile_credentials_provider(
    const CredentialsOptions& options = {});

/// ECS/EKS container credentials: GET http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
/// or $AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback or the ECS/EKS link-local
/// addresses only), with `Authorization:` from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read
/// on each fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN.
std::shared_ptr<CredentialsProvider> make_container_credentials_provider(
    const CredentialsOptions& options = {});

/// EC2 instance metadata, IMDSv2: PUT /latest/api/token (TTL 6 hours), then GET the role name
/// and its credentials JSON. Falls back to IMDSv1 only when the token call answers 404/405 and
/// AWS_EC2_METADATA_V1_DISABLED is not true. Disabled by AWS_EC2_METADATA_DISABLED=true.
/// Endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254 (or
/// http://[fd00:ec2::254] when AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6).
std::shared_ptr<CredentialsProvider> make_instance_metadata_credentials_provider(
    const CredentialsOptions& options = {});

/// Tries each provider in order and returns the first credentials found. A provider answering
/// kNotFound (not configured) passes to the next; any other error ends the search. Failure:
/// kUnauthenticated "no credentials found (tried: environment [why], web identity [why], ...)".
std::shared_ptr<CredentialsProvider> make_chain_credentials_provider(
    std::vector<std::shared_ptr<CredentialsProvider>> providers);

/// Caches `inner`'s credentials. Thread-safety and blocking:
///  - credentials without an expiration are fetched once and kept;
///  - while the cached credentials are valid get() never blocks: once they are within
///    `refresh_before_expiry` (+ jitter) of expiring, the first get() starts a refresh on a
///    background thread owned by this provider and every caller keeps receiving the cached
///    credentials until it succeeds; a failed background refresh keeps the cached ones and is
///    retried after `min_refresh_interval`;
///  - only when nothing is cached or the cached credentials are expired (within
///    `expiry_margin`) does get() block: one caller fetches on its own thread while the others
///    wait for its result, which they all receive (success or error).
/// The destructor joins the background thread, so it may wait for one in-flight fetch (bounded
/// by the provider's timeouts).
std::shared_ptr<CredentialsProvider> make_caching_credentials_provider(
    std::shared_ptr<CredentialsProvider> inner, CachingOptions options = {});

/// The SDKs' default chain, cached: environment, web identity, profile (shared files),
/// container, instance metadata.
std::shared_ptr<CredentialsProvider> make_default_credentials_provider(
    const CredentialsOptions& options = {});

}  // namespace shardline
