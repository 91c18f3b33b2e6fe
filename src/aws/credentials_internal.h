// Internal: pieces shared by the credential providers in credentials*.cc.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "aws/sts.h"
#include "shardline/credentials.h"
#include "shardline/result.h"

namespace shardline::detail {

/// kNotFound, "this source is not configured": the only error after which a chain moves on.
Status not_configured(std::string message);

enum class CredentialsJsonFormat {
  kProcess,   // credential_process: Version 1, SessionToken
  kMetadata,  // IMDS and container endpoints: Token, optional Code == "Success"
};

/// Parse credentials JSON. kInvalidArgument naming the problem, never quoting the document.
Result<Credentials> parse_credentials_json(std::string_view json, CredentialsJsonFormat format);

/// Run `command` with /bin/sh -c, stdin and stderr inherited, and return its stdout.
/// kDeadlineExceeded (child killed) after `timeout`; kUnauthenticated for a non-zero exit;
/// kInternal if it cannot be started.
Result<std::string> run_credential_process(const std::string& command,
                                           std::chrono::milliseconds timeout);

/// AssumeRoleWithWebIdentity with the token read from `token_file` now.
Result<Credentials> web_identity_credentials(const CredentialsOptions& options,
                                             const Result<StsTarget>& target,
                                             const std::string& token_file,
                                             const std::string& role_arn,
                                             const std::string& session_name);

}  // namespace shardline::detail
