// Credential providers against local fixtures: environment variables (saved and restored),
// temporary shared files, credential_process scripts, and tests/support/fake_aws_metadata.py
// serving IMDSv2, the container endpoint and STS on a free loopback port.
#include "shardline/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "aws/aws_time.h"
#include "aws/blocking_http.h"
#include "aws/credentials_internal.h"
#include "aws/shared_config.h"
#include "aws/sts.h"
#include "support/fake_aws_metadata.h"
#include "support/scoped_env.h"
#include "support/test_util.h"

namespace shardline {
namespace {

namespace fs = std::filesystem;
using std::chrono::system_clock;
using testing::FakeAwsMetadata;
using testing::ScopedEnv;

// Failure detection only: how long a poll waits before declaring that something never
// happened. Nothing is asserted about how fast anything is.
constexpr auto kPollDeadline = std::chrono::seconds(20);

template <class Pred>
bool poll_until(Pred pred) {
  return shardline::testing::poll_until(pred, kPollDeadline);
}

std::string make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "shardline-creds-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// Every test starts from an empty AWS environment, HOME in a fresh temp directory (so the
// developer's ~/.aws is never read) and instance metadata disabled (so nothing tries to reach
// 169.254.169.254). The fake server is shared by the suite and reset before each test.
class CredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = FakeAwsMetadata::start(server_error_).release(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << server_error_;
    server_->reset();
    env_.emplace(testing::aws_environment_names());
    dir_ = make_temp_dir();
    env_->set("HOME", dir_);
    env_->set("AWS_EC2_METADATA_DISABLED", "true");
  }
  void TearDown() override {
    env_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  FakeAwsMetadata& server() { return *server_; }
  ScopedEnv& env() { return *env_; }

  std::string write(const std::string& name, const std::string& content, bool executable = false) {
    const std::string path = dir_ + "/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
    if (executable) ::chmod(path.c_str(), 0700);
    return path;
  }
  void use_files(const std::string& credentials, const std::string& config) {
    env().set("AWS_SHARED_CREDENTIALS_FILE", write("credentials", credentials));
    env().set("AWS_CONFIG_FILE", write("config", config));
  }
  void use_sts() {
    env().set("AWS_ENDPOINT_URL_STS", server().url());
    env().set("AWS_REGION", "us-west-2");
  }
  void use_imds() {
    env().unset("AWS_EC2_METADATA_DISABLED");
    env().set("AWS_EC2_METADATA_SERVICE_ENDPOINT", server().url());
  }

  static CredentialsOptions fast_options() {
    CredentialsOptions o;
    o.metadata_timeout = std::chrono::milliseconds(5000);
    o.sts_timeout = std::chrono::milliseconds(5000);
    return o;
  }

  std::optional<ScopedEnv> env_;
  std::string dir_;
  static FakeAwsMetadata* server_;
  static std::string server_error_;
};

FakeAwsMetadata* CredentialsTest::server_ = nullptr;
std::string CredentialsTest::server_error_;

// ---- Credentials itself ---------------------------------------------------------------------

TEST(CredentialsValue, PrintingRedactsSecretAndToken) {
  Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "FwoGZXIvYXdzEXAMPLETOKEN", detail::parse_iso8601("2030-01-02T03:04:05Z"), "test"};
  const std::string s = c.to_string();
  EXPECT_EQ(s,
            "Credentials{access_key_id=AKIDEXAMPLE, secret_access_key=<redacted>, "
            "session_token=<redacted>, expiration=2030-01-02T03:04:05Z, source=test}");
  std::ostringstream os;
  os << c;
  EXPECT_EQ(os.str(), s);
  // GoogleTest prints values through operator<< in failure messages.
  EXPECT_EQ(::testing::PrintToString(c), s);
  c.session_token.clear();
  c.expiration.reset();
  EXPECT_NE(c.to_string().find("session_token=<none>, expiration=<never>"), std::string::npos);
}

// ---- static and environment -----------------------------------------------------------------

TEST_F(CredentialsTest, StaticProviderReturnsItsCredentials) {
  auto p = make_static_credentials_provider({"AKID", "SECRET", "", {}, ""});
  auto c = p->get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->access_key_id, "AKID");
  EXPECT_EQ(c->source, "static");
  EXPECT_EQ(make_static_credentials_provider({})->get().status().code(), StatusCode::kNotFound);
}

TEST_F(CredentialsTest, EnvironmentProviderReadsKeysAndToken) {
  env().set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env().set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
  env().set("AWS_SESSION_TOKEN", "TOKENENV");
  auto p = make_environment_credentials_provider();
  // A snapshot: later changes do not affect this provider.
  env().set("AWS_ACCESS_KEY_ID", "CHANGED");
  auto c = p->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "AKIDENV");
  EXPECT_EQ(c->secret_access_key, "SECRETENV");
  EXPECT_EQ(c->session_token, "TOKENENV");
  EXPECT_FALSE(c->expiration.has_value());
  EXPECT_EQ(c->source, "environment");
}

TEST_F(CredentialsTest, EnvironmentProviderNotConfiguredOrPartial) {
  auto none = make_environment_credentials_provider()->get();
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(none.status().message(), "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set");
  env().set("AWS_SECRET_ACCESS_KEY", "SECRETONLY");
  auto partial = make_environment_credentials_provider()->get();
  EXPECT_EQ(partial.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(partial.status().to_string().find("SECRETONLY"), std::string::npos);
}

// ---- shared files ---------------------------------------------------------------------------

TEST_F(CredentialsTest, ProfileStaticKeysFromDefaultProfile) {
  use_files("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = SECRETDEFAULT\n",
            "");
  auto c = make_profile_credentials_provider()->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(c->secret_access_key, "SECRETDEFAULT");
  EXPECT_TRUE(c->session_token.empty());
  EXPECT_EQ(c->source, "profile 'default'");
}

TEST_F(CredentialsTest, ProfileSelectedByAwsProfileOrOption) {
  use_files("[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = S2\n",
            "[default]\nregion = us-east-1\n"
            "[profile dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = S1\n"
            "aws_session_token = T1\n");
  env().set("AWS_PROFILE", "dev");
  auto dev = make_profile_credentials_provider()->get();
  ASSERT_TRUE(dev.ok()) << dev.status().to_string();
  EXPECT_EQ(dev->access_key_id, "AKIDDEV");
  EXPECT_EQ(dev->session_token, "T1");
  CredentialsOptions o;
  o.profile = "other";
  auto other = make_profile_credentials_provider(o)->get();
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  EXPECT_EQ(other->access_key_id, "AKIDOTHER");
  EXPECT_EQ(make_profile_credentials_provider(o)->name(), "profile 'other'");
}

TEST_F(CredentialsTest, ProfileCredentialsFileOverridesConfigFile) {
  use_files("[dev]\naws_secret_access_key = FROM-CREDENTIALS\n",
            "[profile dev]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = FROM-CONFIG\n");
  env().set("AWS_PROFILE", "dev");
  auto c = make_profile_credentials_provider()->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "AKIDCONFIG");
  EXPECT_EQ(c->secret_access_key, "FROM-CREDENTIALS");
}

TEST_F(CredentialsTest, ProfileMissingDefaultIsNotConfiguredButMissingNamedIsAnError) {
  use_files("", "[profile dev]\nregion = us-east-1\n");
  auto missing_default = make_profile_credentials_provider()->get();
  EXPECT_EQ(missing_default.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing_default.status().message().find("profile 'default' not found"),
            std::string::npos);
  env().set("AWS_PROFILE", "nope");
  EXPECT_EQ(make_profile_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);
  // A profile with settings but no credentials is "nothing here".
  env().set("AWS_PROFILE", "dev");
  EXPECT_EQ(make_profile_credentials_provider()->get().status().code(), StatusCode::kNotFound);
}

TEST_F(CredentialsTest, ProfileMalformedOrPartialIsInvalid) {
  use_files("[default]\naws_access_key_id AKIDNOEQUALS SECRETINLINE\n", "");
  auto bad = make_profile_credentials_provider()->get();
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("credentials:2:"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("SECRETINLINE"), std::string::npos);
  use_files("[default]\naws_secret_access_key = SECRETPARTIAL\n", "");
  auto partial = make_profile_credentials_provider()->get();
  EXPECT_EQ(partial.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(partial.status().message().find("SECRETPARTIAL"), std::string::npos);
}

TEST_F(CredentialsTest, ProfileCredentialProcess) {
  const std::string script =
      write("creds.sh",
            "#!/bin/sh\n"
            "cat <<EOF\n"
            "{\"Version\": 1, \"AccessKeyId\": \"AKIDPROC\",\n"
            " \"SecretAccessKey\": \"SECRETPROC\", \"SessionToken\": \"TOKENPROC\",\n"
            " \"Expiration\": \"2030-01-01T00:00:00Z\"}\n"
            "EOF\n",
            true);
  use_files("", "[default]\ncredential_process = " + script + " --some-arg\n");
  auto c = make_profile_credentials_provider()->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "AKIDPROC");
  EXPECT_EQ(c->secret_access_key, "SECRETPROC");
  EXPECT_EQ(c->session_token, "TOKENPROC");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(detail::format_iso8601(*c->expiration), "2030-01-01T00:00:00Z");
  EXPECT_EQ(c->source, "profile 'default' credential_process");
}

TEST_F(CredentialsTest, ProfileCredentialProcessFailures) {
  auto run = [&](const std::string& command,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    use_files("", "[default]\ncredential_process = " + command + "\n");
    CredentialsOptions o;
    o.process_timeout = timeout;
    return make_profile_credentials_provider(o)->get().status();
  };
  const Status exit3 = run(
      write("fail.sh", "#!/bin/sh\necho '{\"SecretAccessKey\": \"SECRETLEAK1\"}'\nexit 3\n", true));
  EXPECT_EQ(exit3.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(exit3.message().find("exited with status 3"), std::string::npos);
  const Status version = run(write("v2.sh",
                                   "#!/bin/sh\necho '{\"Version\": 2, \"AccessKeyId\": \"A\", "
                                   "\"SecretAccessKey\": \"SECRETLEAK2\"}'\n",
                                   true));
  EXPECT_EQ(version.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(version.message().find("Version 2"), std::string::npos);
  const Status no_id = run(
      write("noid.sh", "#!/bin/sh\necho '{\"Version\": 1, \"SecretAccessKey\": \"SECRETLEAK3\"}'\n",
            true));
  EXPECT_EQ(no_id.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_id.message().find("AccessKeyId"), std::string::npos);
  const Status not_json = run(write("text.sh", "#!/bin/sh\necho SECRETLEAK4\n", true));
  EXPECT_EQ(not_json.code(), StatusCode::kInvalidArgument);
  // A process that never finishes is killed at the timeout.
  const Status hung = run("exec sleep 30", std::chrono::milliseconds(200));
  EXPECT_EQ(hung.code(), StatusCode::kDeadlineExceeded);
  for (const Status* s : {&exit3, &version, &no_id, &not_json}) {
    EXPECT_EQ(s->to_string().find("SECRETLEAK"), std::string::npos) << s->to_string();
  }
}

TEST_F(CredentialsTest, ProfileAssumeRoleWithSourceProfileIsSignedBySource) {
  use_sts();
  server().control({{"known_keys", {{"AKIDBASE", "SECRETBASE"}}}});
  use_files("[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = SECRETBASE\n",
            "[profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n"
            "role_session_name = app-session\nexternal_id = ext-42\nduration_seconds = 1800\n");
  CredentialsOptions o = fast_options();
  o.profile = "app";
  auto c = make_profile_credentials_provider(o)->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIASTS1");
  EXPECT_EQ(c->secret_access_key, "SECRET-sts-1/+&x");  // XML entity decoded
  EXPECT_EQ(c->session_token, "TOKEN-sts-1");
  EXPECT_TRUE(c->expiration.has_value());
  EXPECT_EQ(c->source, "profile 'app' (assume role)");
  const auto last = server().stats()["last_sts"];
  EXPECT_EQ(last["Action"], "AssumeRole");
  EXPECT_EQ(last["RoleArn"], "arn:aws:iam::123456789012:role/app");
  EXPECT_EQ(last["RoleSessionName"], "app-session");
  EXPECT_EQ(last["ExternalId"], "ext-42");
  EXPECT_EQ(last["DurationSeconds"], "1800");
  EXPECT_EQ(last["signing_access_key"], "AKIDBASE");
  EXPECT_EQ(last["signing_region"], "us-west-2");
  EXPECT_EQ(last["content_type"], "application/x-www-form-urlencoded; charset=utf-8");
}

TEST_F(CredentialsTest, ProfileAssumeRoleChainUsesEachHopsCredentials) {
  use_sts();
  server().control({{"known_keys", {{"AKIDBASE", "SECRETBASE"}}}});
  use_files("[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = SECRETBASE\n",
            "[profile mid]\nrole_arn = arn:aws:iam::123456789012:role/mid\nsource_profile = base\n"
            "[profile top]\nrole_arn = arn:aws:iam::123456789012:role/top\nsource_profile = mid\n");
  CredentialsOptions o = fast_options();
  o.profile = "top";
  auto c = make_profile_credentials_provider(o)->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIASTS2");
  const auto stats = server().stats();
  EXPECT_EQ(stats["sts_assume_role"], 2);
  // The second call was signed with the first call's temporary credentials, token included.
  EXPECT_EQ(stats["last_sts"]["RoleArn"], "arn:aws:iam::123456789012:role/top");
  EXPECT_EQ(stats["last_sts"]["signing_access_key"], "ASIASTS1");
  EXPECT_EQ(stats["last_sts"]["security_token"], "TOKEN-sts-1");
}

TEST_F(CredentialsTest, ProfileAssumeRoleErrors) {
  use_sts();
  server().control({{"known_keys", {{"AKIDBASE", "SECRETBASE"}}}});
  use_files(
      "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = SECRETBASE\n"
      "[wrong]\naws_access_key_id = AKIDBASE\naws_secret_access_key = SECRETWRONG\n",
      "[profile denied]\nrole_arn = arn:aws:iam::123456789012:role/denied\nsource_profile = base\n"
      "[profile badsig]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = wrong\n"
      "[profile a]\nrole_arn = arn:aws:iam::1:role/a\nsource_profile = b\n"
      "[profile b]\nrole_arn = arn:aws:iam::1:role/b\nsource_profile = a\n"
      "[profile nosource]\nrole_arn = arn:aws:iam::1:role/x\n"
      "[profile mfa]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\nmfa_serial = "
      "arn:mfa\n"
      "[profile badsrc]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Somewhere\n");
  auto get = [&](const std::string& profile) {
    CredentialsOptions o = fast_options();
    o.profile = profile;
    return make_profile_credentials_provider(o)->get().status();
  };
  const Status denied = get("denied");
  EXPECT_EQ(denied.code(), StatusCode::kPermissionDenied) << denied.to_string();
  EXPECT_EQ(denied.aws_error_code(), "AccessDenied");
  EXPECT_EQ(denied.http_status(), 403);
  EXPECT_EQ(denied.request_id(), "err-request-id");
  const Status badsig = get("badsig");
  EXPECT_EQ(badsig.code(), StatusCode::kUnauthenticated) << badsig.to_string();
  EXPECT_EQ(badsig.aws_error_code(), "SignatureDoesNotMatch");
  EXPECT_EQ(badsig.to_string().find("SECRETWRONG"), std::string::npos);
  const Status cycle = get("a");
  EXPECT_EQ(cycle.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cycle.message().find("cycle"), std::string::npos) << cycle.message();
  EXPECT_EQ(get("nosource").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(get("mfa").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(get("badsrc").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server().stats()["sts_assume_role"], 2);  // denied + badsig only
}

TEST_F(CredentialsTest, ProfileAssumeRoleWithCredentialSourceEnvironment) {
  use_sts();
  env().set("AWS_ACCESS_KEY_ID", "AKIDENVSRC");
  env().set("AWS_SECRET_ACCESS_KEY", "SECRETENVSRC");
  server().control({{"known_keys", {{"AKIDENVSRC", "SECRETENVSRC"}}}});
  use_files("", "[default]\nrole_arn = arn:aws:iam::1:role/x\ncredential_source = Environment\n");
  auto c = make_profile_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(server().stats()["last_sts"]["signing_access_key"], "AKIDENVSRC");
}

TEST_F(CredentialsTest, ProfileWebIdentity) {
  use_sts();
  const std::string token = write("token", "web-identity-token-value");
  use_files("", "[default]\nrole_arn = arn:aws:iam::1:role/web\nweb_identity_token_file = " +
                    token + "\nrole_session_name = prof-web\n");
  auto c = make_profile_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIAWEB1");
  EXPECT_EQ(server().stats()["last_sts"]["RoleSessionName"], "prof-web");
}

// ---- web identity ---------------------------------------------------------------------------

TEST_F(CredentialsTest, WebIdentityAssumesRoleWithTokenFromFile) {
  use_sts();
  env().set("AWS_WEB_IDENTITY_TOKEN_FILE", write("token", "web-identity-token-value\n"));
  env().set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/web");
  env().set("AWS_ROLE_SESSION_NAME", "my-session");
  auto c = make_web_identity_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIAWEB1");
  EXPECT_EQ(c->secret_access_key, "SECRET-web-1/+&x");
  EXPECT_EQ(c->session_token, "TOKEN-web-1");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_GT(*c->expiration, system_clock::now());
  EXPECT_EQ(c->source, "web identity");
  const auto last = server().stats()["last_sts"];
  EXPECT_EQ(last["Action"], "AssumeRoleWithWebIdentity");
  EXPECT_EQ(last["RoleArn"], "arn:aws:iam::123456789012:role/web");
  EXPECT_EQ(last["RoleSessionName"], "my-session");
  EXPECT_EQ(last["signed"], false);
}

TEST_F(CredentialsTest, WebIdentityDefaultSessionNameAndErrors) {
  use_sts();
  EXPECT_EQ(make_web_identity_credentials_provider()->get().status().code(), StatusCode::kNotFound);
  const std::string token_file = write("token", "WRONG-WEB-TOKEN");
  env().set("AWS_WEB_IDENTITY_TOKEN_FILE", token_file);
  EXPECT_EQ(make_web_identity_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);  // no AWS_ROLE_ARN
  env().set("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
  const Status wrong = make_web_identity_credentials_provider(fast_options())->get().status();
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.aws_error_code(), "InvalidIdentityToken");
  EXPECT_EQ(wrong.to_string().find("WRONG-WEB-TOKEN"), std::string::npos) << wrong.to_string();
  EXPECT_EQ(std::string(server().stats()["last_sts"]["RoleSessionName"]).rfind("shardline-", 0),
            0u);
  env().set("AWS_WEB_IDENTITY_TOKEN_FILE", dir_ + "/missing-token");
  // Configured but missing: an error that stops a chain, not "not configured".
  EXPECT_EQ(make_web_identity_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);
}

// ---- container ------------------------------------------------------------------------------

TEST_F(CredentialsTest, ContainerFullUriWithAuthorizationToken) {
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/v2/credentials");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token");
  auto c = make_container_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIAECS1");
  EXPECT_EQ(c->session_token, "TOKEN-ecs-1");
  EXPECT_TRUE(c->expiration.has_value());
  EXPECT_EQ(c->source, "container");
  EXPECT_EQ(server().stats()["last_ecs_authorization"], "ecs-auth-token");
}

TEST_F(CredentialsTest, ContainerTokenFileWinsAndIsRereadEachFetch) {
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-env-token");
  const std::string file = write("ecs-token", "file-token-1\n");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file);
  server().control({{"ecs_auth_token", "file-token-1"}});
  auto p = make_container_credentials_provider(fast_options());
  ASSERT_TRUE(p->get().ok());
  write("ecs-token", "file-token-2");  // rotated, as EKS Pod Identity does
  server().control({{"ecs_auth_token", "file-token-2"}});
  auto c = p->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIAECS2");
}

TEST_F(CredentialsTest, ContainerErrors) {
  EXPECT_EQ(make_container_credentials_provider()->get().status().code(), StatusCode::kNotFound);
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "WRONG-ECS-TOKEN");
  const Status wrong = make_container_credentials_provider(fast_options())->get().status();
  EXPECT_EQ(wrong.code(), StatusCode::kPermissionDenied) << wrong.to_string();
  EXPECT_EQ(wrong.to_string().find("WRONG-ECS-TOKEN"), std::string::npos);
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "bad\r\nX-Injected: 1");
  EXPECT_EQ(make_container_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);
  // Plain http only to loopback or the ECS/EKS agents (nothing is sent to this host).
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://credentials.example.com/creds");
  const Status remote = make_container_credentials_provider()->get().status();
  EXPECT_EQ(remote.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(remote.message().find("plain http"), std::string::npos);
  env().unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  env().set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/credentials");
  EXPECT_EQ(make_container_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CredentialsTest, ContainerRetriesOnceAfterServerError) {
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token");
  server().control({{"fail_next", {{"ecs", 1}}}});
  auto c = make_container_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(server().stats()["ecs"], 2);
  server().control({{"fail_next", {{"ecs", 2}}}});
  const Status twice = make_container_credentials_provider(fast_options())->get().status();
  EXPECT_EQ(twice.code(), StatusCode::kUnavailable) << twice.to_string();
}

// ---- instance metadata ----------------------------------------------------------------------

TEST_F(CredentialsTest, ImdsV2TokenThenRoleThenCredentials) {
  use_imds();
  auto c = make_instance_metadata_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIAIMDS1");
  EXPECT_EQ(c->secret_access_key, "SECRET-imds-1/+&x");
  EXPECT_EQ(c->session_token, "TOKEN-imds-1");
  EXPECT_TRUE(c->expiration.has_value());
  EXPECT_EQ(c->source, "instance metadata");
  const auto stats = server().stats();
  EXPECT_EQ(stats["imds_token"], 1);
  EXPECT_EQ(stats["imds_role"], 1);
  EXPECT_EQ(stats["imds_creds"], 1);
  EXPECT_EQ(stats["imds_v1_requests"], 0);
}

TEST_F(CredentialsTest, ImdsFallsBackToV1OnlyWhenAllowed) {
  use_imds();
  server().control({{"imds_token_status", 404}, {"imds_require_token", false}});
  auto v1 = make_instance_metadata_credentials_provider(fast_options())->get();
  ASSERT_TRUE(v1.ok()) << v1.status().to_string();
  EXPECT_EQ(server().stats()["imds_v1_requests"], 2);
  env().set("AWS_EC2_METADATA_V1_DISABLED", "true");
  EXPECT_FALSE(make_instance_metadata_credentials_provider(fast_options())->get().ok());
  server().control({{"imds_token_status", 403}});
  EXPECT_EQ(make_instance_metadata_credentials_provider(fast_options())->get().status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(CredentialsTest, ImdsRetriesOnceAndReportsNoRole) {
  use_imds();
  server().control({{"fail_next", {{"imds_creds", 1}, {"imds_token", 1}}}});
  auto c = make_instance_metadata_credentials_provider(fast_options())->get();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(server().stats()["imds_creds"], 2);
  EXPECT_EQ(server().stats()["imds_token"], 2);
  server().control({{"imds_role", ""}});
  EXPECT_EQ(make_instance_metadata_credentials_provider(fast_options())->get().status().code(),
            StatusCode::kNotFound);
}

TEST_F(CredentialsTest, ImdsDisabledUnreachableOrMisconfigured) {
  const Status disabled = make_instance_metadata_credentials_provider()->get().status();
  EXPECT_EQ(disabled.code(), StatusCode::kNotFound);
  EXPECT_EQ(disabled.message(), "disabled by AWS_EC2_METADATA_DISABLED");
  env().unset("AWS_EC2_METADATA_DISABLED");
  env().set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1");  // nothing listens
  const Status refused = make_instance_metadata_credentials_provider()->get().status();
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.to_string();
  env().set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "not a url");
  EXPECT_EQ(make_instance_metadata_credentials_provider()->get().status().code(),
            StatusCode::kInvalidArgument);
}

// ---- the default chain ----------------------------------------------------------------------

TEST_F(CredentialsTest, DefaultChainOrder) {
  // Configure every source, then remove them one by one from the front.
  use_sts();
  use_imds();
  env().set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env().set("AWS_SECRET_ACCESS_KEY", "SECRETENV");
  env().set("AWS_WEB_IDENTITY_TOKEN_FILE", write("token", "web-identity-token-value"));
  env().set("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
  use_files("[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = S\n", "");
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token");
  auto source = [&] {
    auto c = make_default_credentials_provider(fast_options())->get();
    return c.ok() ? c->source : c.status().to_string();
  };
  EXPECT_EQ(source(), "environment");
  env().unset("AWS_ACCESS_KEY_ID");
  env().unset("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(source(), "web identity");
  env().unset("AWS_WEB_IDENTITY_TOKEN_FILE");
  EXPECT_EQ(source(), "profile 'default'");
  env().unset("AWS_SHARED_CREDENTIALS_FILE");
  EXPECT_EQ(source(), "container");
  env().unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  EXPECT_EQ(source(), "instance metadata");
}

TEST_F(CredentialsTest, DefaultChainNamesEverySourceWhenNothingIsFound) {
  const Status s = make_default_credentials_provider()->get().status();
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  const std::string m(s.message());
  EXPECT_EQ(m.rfind("no credentials found (tried: environment [", 0), 0u) << m;
  for (const char* part : {"environment [AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set]",
                           "web identity [AWS_WEB_IDENTITY_TOKEN_FILE not set]",
                           "profile 'default' [profile 'default' not found in",
                           "container [AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI not set]",
                           "instance metadata [disabled by AWS_EC2_METADATA_DISABLED]"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part << "\nin: " << m;
  }
  EXPECT_EQ(s.retry(), RetryClass::kNone);
}

TEST_F(CredentialsTest, DefaultChainStopsAtAConfiguredButBrokenSource) {
  use_imds();  // would succeed, but must not be reached
  env().set("AWS_ACCESS_KEY_ID", "AKIDONLY");
  const Status s = make_default_credentials_provider()->get().status();
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("environment [AWS_ACCESS_KEY_ID is set but"), std::string::npos);
  EXPECT_EQ(s.message().find("instance metadata"), std::string::npos);
  EXPECT_EQ(server().stats()["imds_token"], 0);
}

TEST_F(CredentialsTest, DefaultChainKeepsRetryClassOfTransientFailure) {
  env().unset("AWS_EC2_METADATA_DISABLED");
  env().set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1");
  const Status s = make_default_credentials_provider()->get().status();
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(s.retry(), RetryClass::kSameCall) << s.to_string();
}

// ---- the cache ------------------------------------------------------------------------------

// A wall clock the test moves by hand.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(system_clock::time_point t)
      : ms_(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()) {}
  time_point now() const override { return time_point(std::chrono::milliseconds(ms_.load())); }
  std::int64_t wall_ms() const override { return ms_.load(); }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<std::int64_t> ms_;
};

// Answers get() with `answer(call number)`, optionally holding each call at a gate.
class ScriptedProvider final : public CredentialsProvider {
 public:
  explicit ScriptedProvider(std::function<Result<Credentials>(int)> answer)
      : answer_(std::move(answer)) {}
  Result<Credentials> get() override {
    std::unique_lock<std::mutex> lock(mu_);
    const int n = ++calls_;
    cv_.wait(lock, [&] { return open_; });
    lock.unlock();
    auto r = answer_(n);
    ++returned_;
    return r;
  }
  std::string name() const override { return "scripted"; }
  void close_gate() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = false;
  }
  void open_gate() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  int calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  int returned() const { return returned_.load(); }

 private:
  std::function<Result<Credentials>(int)> answer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int calls_ = 0;
  std::atomic<int> returned_{0};
};

const system_clock::time_point kT0 = *detail::parse_iso8601("2030-01-01T00:00:00Z");

Credentials temp_creds(int n, system_clock::time_point expiration) {
  return {"AK" + std::to_string(n), "SK" + std::to_string(n), "TK" + std::to_string(n), expiration,
          "scripted"};
}

CachingOptions manual_options(const std::shared_ptr<ManualClock>& clock) {
  CachingOptions o;
  o.refresh_before_expiry = std::chrono::minutes(5);
  o.refresh_jitter = std::chrono::seconds(0);
  o.expiry_margin = std::chrono::seconds(10);
  o.min_refresh_interval = std::chrono::seconds(10);
  o.clock = clock;
  return o;
}

TEST(CredentialsCache, LongTermCredentialsAreFetchedOnce) {
  auto clock = std::make_shared<ManualClock>(kT0);
  auto inner = std::make_shared<ScriptedProvider>([](int n) {
    return Credentials{"AK" + std::to_string(n), "SK", "", {}, ""};
  });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(cache->get()->access_key_id, "AK1");
    clock->advance(std::chrono::hours(24 * 365));
  }
  EXPECT_EQ(inner->calls(), 1);
}

TEST(CredentialsCache, RefreshesInBackgroundBeforeExpiryWithoutBlocking) {
  auto clock = std::make_shared<ManualClock>(kT0);
  const auto expiry = [&](int n) { return kT0 + std::chrono::hours(n); };
  auto inner = std::make_shared<ScriptedProvider>([&](int n) { return temp_creds(n, expiry(n)); });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  EXPECT_EQ(cache->get()->access_key_id, "AK1");
  clock->advance(std::chrono::minutes(50));  // 10 min before expiry: still fresh
  EXPECT_EQ(cache->get()->access_key_id, "AK1");
  EXPECT_EQ(inner->calls(), 1);

  clock->advance(std::chrono::minutes(6));        // 4 min before expiry: refresh due
  inner->close_gate();                            // the refresh cannot finish yet...
  EXPECT_EQ(cache->get()->access_key_id, "AK1");  // ...and the caller is not blocked by it
  ASSERT_TRUE(poll_until([&] { return inner->calls() == 2; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(cache->get()->access_key_id, "AK1");
  EXPECT_EQ(inner->calls(), 2);  // one refresh in flight, not one per caller
  inner->open_gate();
  ASSERT_TRUE(poll_until([&] { return cache->get()->access_key_id == "AK2"; }));
  EXPECT_EQ(inner->calls(), 2);
}

TEST(CredentialsCache, ExpiredCredentialsBlockUntilRefreshed) {
  auto clock = std::make_shared<ManualClock>(kT0);
  auto inner = std::make_shared<ScriptedProvider>(
      [&](int n) { return temp_creds(n, kT0 + std::chrono::hours(n)); });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  ASSERT_TRUE(cache->get().ok());
  clock->advance(std::chrono::minutes(59) + std::chrono::seconds(55));  // inside the 10 s margin
  inner->close_gate();
  auto waiter = std::async(std::launch::async, [&] { return cache->get(); });
  ASSERT_TRUE(poll_until([&] { return inner->calls() == 2; }));
  // The fetch is held at the gate, so the caller cannot have returned.
  EXPECT_EQ(waiter.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  inner->open_gate();
  auto r = waiter.get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->access_key_id, "AK2");
}

TEST(CredentialsCache, ConcurrentCallersShareOneFetch) {
  auto clock = std::make_shared<ManualClock>(kT0);
  auto inner = std::make_shared<ScriptedProvider>(
      [&](int n) { return temp_creds(n, kT0 + std::chrono::hours(1)); });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  inner->close_gate();
  std::vector<std::future<Result<Credentials>>> callers;
  for (int i = 0; i < 8; ++i) {
    callers.push_back(std::async(std::launch::async, [&] { return cache->get(); }));
  }
  ASSERT_TRUE(poll_until([&] { return inner->calls() >= 1; }));
  inner->open_gate();
  for (auto& f : callers) {
    auto r = f.get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->access_key_id, "AK1");
  }
  EXPECT_EQ(inner->calls(), 1);
}

TEST(CredentialsCache, FailuresAreSharedThenRetriedAfterTheInterval) {
  auto clock = std::make_shared<ManualClock>(kT0);
  auto inner = std::make_shared<ScriptedProvider>([&](int n) -> Result<Credentials> {
    if (n == 1) return Status::unavailable("metadata service down");
    return temp_creds(n, kT0 + std::chrono::hours(2));
  });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  EXPECT_EQ(cache->get().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(cache->get().status().code(), StatusCode::kUnavailable);  // not fetched again yet
  EXPECT_EQ(inner->calls(), 1);
  clock->advance(std::chrono::seconds(11));
  EXPECT_EQ(cache->get()->access_key_id, "AK2");
}

TEST(CredentialsCache, FailedBackgroundRefreshKeepsServingAndRetries) {
  auto clock = std::make_shared<ManualClock>(kT0);
  auto inner = std::make_shared<ScriptedProvider>([&](int n) -> Result<Credentials> {
    if (n == 2) return Status::unavailable("blip");
    return temp_creds(n, kT0 + std::chrono::hours(1) * n);
  });
  auto cache = make_caching_credentials_provider(inner, manual_options(clock));
  EXPECT_EQ(cache->get()->access_key_id, "AK1");
  clock->advance(std::chrono::minutes(57));
  EXPECT_EQ(cache->get()->access_key_id, "AK1");  // starts refresh #2, which fails
  ASSERT_TRUE(poll_until([&] { return inner->returned() == 2; }));
  EXPECT_EQ(cache->get()->access_key_id, "AK1");  // still valid: served
  clock->advance(std::chrono::seconds(11));       // past min_refresh_interval
  ASSERT_TRUE(poll_until([&] { return cache->get()->access_key_id == "AK3"; }));
}

TEST_F(CredentialsTest, CacheRefreshesShortLivedContainerCredentials) {
  // Real clock, real server: credentials that expire in 2 minutes are inside the 5 minute
  // refresh window from the start, so the second get() triggers a background refresh.
  server().control({{"expires_in", 120}});
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-auth-token");
  CachingOptions o;
  o.refresh_jitter = std::chrono::seconds(0);
  o.min_refresh_interval = std::chrono::seconds(0);
  auto cache =
      make_caching_credentials_provider(make_container_credentials_provider(fast_options()), o);
  auto first = cache->get();
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->access_key_id, "ASIAECS1");
  ASSERT_TRUE(poll_until([&] {
    auto c = cache->get();
    return c.ok() && c->access_key_id != "ASIAECS1";
  }));
  EXPECT_GE(server().stats()["ecs"].get<int>(), 2);
}

// ---- no secret in any message ---------------------------------------------------------------

TEST_F(CredentialsTest, NoMessageOrPrintoutContainsASecret) {
  use_sts();
  const std::vector<std::string> secrets = {"SECRETAAA111", "TOKENBBB222", "WEBTOKENCCC333",
                                            "ECSTOKENDDD444"};
  std::vector<std::string> texts;
  auto record = [&](const Status& s) { texts.push_back(s.to_string()); };

  // Partial environment, and the chain's summary of it.
  env().set("AWS_SECRET_ACCESS_KEY", "SECRETAAA111");
  env().set("AWS_SESSION_TOKEN", "TOKENBBB222");
  record(make_environment_credentials_provider()->get().status());
  record(make_default_credentials_provider()->get().status());
  env().unset("AWS_SECRET_ACCESS_KEY");
  env().unset("AWS_SESSION_TOKEN");
  // Shared files: malformed line, partial keys, failing process, STS rejecting the signature.
  use_files("[default]\naws_secret_access_key SECRETAAA111\n", "");
  record(make_profile_credentials_provider()->get().status());
  use_files("[default]\naws_secret_access_key = SECRETAAA111\naws_session_token = TOKENBBB222\n",
            "");
  record(make_profile_credentials_provider()->get().status());
  record(make_default_credentials_provider()->get().status());
  use_files(
      "[src]\naws_access_key_id = AKIDX\naws_secret_access_key = SECRETAAA111\n"
      "aws_session_token = TOKENBBB222\n",
      "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = src\n");
  record(make_profile_credentials_provider(fast_options())->get().status());
  use_files("", "[default]\ncredential_process = " +
                    write("leak.sh",
                          "#!/bin/sh\necho '{\"Version\":1,\"SecretAccessKey\":\"SECRETAAA111\","
                          "\"SessionToken\":\"TOKENBBB222\"}'\nexit 1\n",
                          true) +
                    "\n");
  record(make_profile_credentials_provider()->get().status());
  use_files("", "[default]\ncredential_process = " +
                    write("leak2.sh",
                          "#!/bin/sh\necho '{\"Version\":1,\"SecretAccessKey\":\"SECRETAAA111\","
                          "\"SessionToken\":\"TOKENBBB222\",\"Expiration\":\"TOKENBBB222\","
                          "\"AccessKeyId\":\"A\"}'\n",
                          true) +
                    "\n");
  record(make_profile_credentials_provider()->get().status());
  env().unset("AWS_CONFIG_FILE");
  env().unset("AWS_SHARED_CREDENTIALS_FILE");
  // Web identity with a rejected token; container with a rejected authorization token.
  env().set("AWS_WEB_IDENTITY_TOKEN_FILE", write("wt", "WEBTOKENCCC333"));
  env().set("AWS_ROLE_ARN", "arn:aws:iam::1:role/w");
  record(make_web_identity_credentials_provider(fast_options())->get().status());
  record(make_default_credentials_provider(fast_options())->get().status());
  env().unset("AWS_WEB_IDENTITY_TOKEN_FILE");
  env().set("AWS_CONTAINER_CREDENTIALS_FULL_URI", server().url() + "/ecs/creds");
  env().set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ECSTOKENDDD444");
  record(make_container_credentials_provider(fast_options())->get().status());
  record(make_default_credentials_provider(fast_options())->get().status());
  // Printing credentials.
  const Credentials c{"AKIDX", "SECRETAAA111", "TOKENBBB222", kT0, "x"};
  texts.push_back(c.to_string());
  texts.push_back(::testing::PrintToString(c));

  ASSERT_EQ(texts.size(), 14u);
  for (const auto& t : texts) {
    EXPECT_FALSE(t.empty());
    EXPECT_EQ(t.rfind("OK", 0), std::string::npos) << "expected a failure: " << t;
    for (const auto& secret : secrets) {
      EXPECT_EQ(t.find(secret), std::string::npos) << "'" << secret << "' leaked in: " << t;
    }
  }
}

// ---- internal parsers -----------------------------------------------------------------------

TEST(CredentialsSharedFile, Syntax) {
  auto parsed = detail::parse_shared_file(
      "# comment\n"
      "; another\n"
      "[default]\r\n"
      "Region = us-east-1   \n"
      "s3 =\n"
      "  max_concurrent_requests = 10\n"
      "role_arn: arn:aws:iam::1:role/x\n"
      "[profile dev]  \n"
      "key=value=with=equals\n"
      "[profile  \"spaced\"]\n"
      "a = 1\n"
      "[sso-session x]\n"
      "ignored = yes\n"
      "[default]\n"
      "region = eu-west-1\n",
      detail::SharedFileKind::kConfig, "cfg");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  const auto& p = *parsed;
  EXPECT_EQ(p.size(), 3u);  // default, dev, spaced; not the sso-session
  EXPECT_EQ(p.at("default").at("region"), "eu-west-1");  // repeated: last wins
  EXPECT_EQ(p.at("default").at("s3"), "\nmax_concurrent_requests = 10");
  EXPECT_EQ(p.at("default").at("role_arn"), "arn:aws:iam::1:role/x");
  EXPECT_EQ(p.at("dev").at("key"), "value=with=equals");
  EXPECT_EQ(p.at("spaced").at("a"), "1");

  auto creds =
      detail::parse_shared_file("[profile x]\na=1\n", detail::SharedFileKind::kCredentials, "c");
  ASSERT_TRUE(creds.ok());
  EXPECT_EQ(creds->count("profile x"), 1u);  // the credentials file names profiles literally

  EXPECT_EQ(
      detail::parse_shared_file("a = 1\n", detail::SharedFileKind::kConfig, "f").status().message(),
      "f:1: setting outside a [section]");
  EXPECT_EQ(
      detail::parse_shared_file("[x\n", detail::SharedFileKind::kConfig, "f").status().message(),
      "f:1: malformed section header");
}

TEST(CredentialsTimestamps, ParseIso8601) {
  using detail::format_iso8601;
  using detail::parse_iso8601;
  EXPECT_EQ(format_iso8601(*parse_iso8601("2015-08-30T12:36:00Z")), "2015-08-30T12:36:00Z");
  EXPECT_EQ(format_iso8601(*parse_iso8601("2015-08-30T12:36:00.999Z")), "2015-08-30T12:36:00Z");
  EXPECT_EQ(*parse_iso8601("2015-08-30T12:36:00.5Z") - *parse_iso8601("2015-08-30T12:36:00Z"),
            std::chrono::milliseconds(500));
  EXPECT_EQ(format_iso8601(*parse_iso8601("2015-08-30T14:36:00+02:00")), "2015-08-30T12:36:00Z");
  EXPECT_EQ(format_iso8601(*parse_iso8601("2015-08-30T07:36:00-0500")), "2015-08-30T12:36:00Z");
  for (const char* bad :
       {"", "2015-08-30", "2015-08-30T12:36:00", "2015-02-30T00:00:00Z", "2015-08-30T24:00:00Z",
        "2015-08-30T12:36:00Zjunk", "2015-08-30T12:36:00.Z", "20150830T123600Z"}) {
    EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
  }
}

TEST(CredentialsStsXml, ParsesCredentialsAndErrors) {
  const std::string ok =
      "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
      "<Credentials>\n <AccessKeyId> ASIA1 </AccessKeyId><SecretAccessKey>a&amp;b&lt;&#x2F;&#47;"
      "</SecretAccessKey><SessionToken>tok</SessionToken><Expiration>2030-01-01T00:00:00.123Z"
      "</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>";
  auto c = detail::parse_sts_credentials(ok);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->access_key_id, "ASIA1");
  EXPECT_EQ(c->secret_access_key, "a&b<//");
  EXPECT_EQ(c->session_token, "tok");
  EXPECT_EQ(detail::format_iso8601(*c->expiration), "2030-01-01T00:00:00Z");
  EXPECT_EQ(detail::parse_sts_credentials("<X/>").status().code(), StatusCode::kInvalidArgument);
  const Status missing =
      detail::parse_sts_credentials(
          "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>SECRETXML</SecretAccessKey>"
          "</Credentials>")
          .status();
  EXPECT_NE(missing.message().find("SessionToken"), std::string::npos);
  EXPECT_EQ(missing.message().find("SECRETXML"), std::string::npos);

  const Status throttled = detail::sts_error(
      "AssumeRole", 400,
      "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
      "<RequestId>r-1</RequestId></ErrorResponse>",
      "");
  EXPECT_EQ(throttled.retry(), RetryClass::kSameCall);
  EXPECT_EQ(throttled.aws_error_code(), "Throttling");
  EXPECT_EQ(throttled.request_id(), "r-1");
  EXPECT_NE(throttled.message().find("STS AssumeRole"), std::string::npos);
  EXPECT_EQ(detail::sts_error("AssumeRole", 503, "<html>", "").code(), StatusCode::kUnavailable);
}

TEST(CredentialsJson, MetadataAndProcessFormats) {
  using detail::CredentialsJsonFormat;
  auto imds = detail::parse_credentials_json(
      R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"A","SecretAccessKey":"S",)"
      R"("Token":"T","Expiration":"2030-01-01T00:00:00Z"})",
      CredentialsJsonFormat::kMetadata);
  ASSERT_TRUE(imds.ok()) << imds.status().to_string();
  EXPECT_EQ(imds->session_token, "T");
  EXPECT_EQ(detail::parse_credentials_json(R"({"Code":"Failure","AccessKeyId":"A"})",
                                           CredentialsJsonFormat::kMetadata)
                .status()
                .code(),
            StatusCode::kUnavailable);
  auto process = detail::parse_credentials_json(
      R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S"})", CredentialsJsonFormat::kProcess);
  ASSERT_TRUE(process.ok());
  EXPECT_FALSE(process->expiration.has_value());
  EXPECT_TRUE(process->session_token.empty());
  for (const char* bad :
       {"", "[]", R"({"Version":"1","AccessKeyId":"A","SecretAccessKey":"S"})",
        R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":""})",
        R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"soon"})",
        R"({"Version":1,"AccessKeyId":5,"SecretAccessKey":"S"})"}) {
    EXPECT_EQ(detail::parse_credentials_json(bad, CredentialsJsonFormat::kProcess).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(CredentialsTest, BlockingHttpBasics) {
  detail::BlockingHttpRequest req;
  req.method = "PUT";
  req.url = server().url() + "/latest/api/token";
  req.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", "60");
  auto r = detail::blocking_http(req);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "imds-token-1");
  EXPECT_EQ(r->header("content-type"), "text/plain");
  req.headers.emplace_back("X-Bad", "a\r\nInjected: yes");
  EXPECT_EQ(detail::blocking_http(req).status().code(), StatusCode::kInvalidArgument);
  detail::BlockingHttpRequest small;
  small.url = server().url() + "/_stats";
  small.max_response_bytes = 10;
  EXPECT_EQ(detail::blocking_http(small).status().code(), StatusCode::kResourceExhausted);
  detail::BlockingHttpRequest bad;
  bad.url = "ftp://127.0.0.1/";
  EXPECT_FALSE(detail::blocking_http(bad).ok());
}

}  // namespace
}  // namespace shardline
