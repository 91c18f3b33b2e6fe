// Internal: the two STS calls the credential providers need, over the query protocol
// (form-encoded POST, XML response): AssumeRole (SigV4-signed with the source credentials) and
// AssumeRoleWithWebIdentity (unsigned; the web identity token authenticates).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "shardline/aws_config.h"
#include "shardline/credentials.h"
#include "shardline/result.h"

namespace shardline::detail {

/// Where STS calls go: the region signs AssumeRole, the endpoint receives both calls.
struct StsTarget {
  std::string region;
  Endpoint endpoint;
};

/// Region: `region`, else resolve_region({}, profile), else us-east-1. Endpoint:
/// resolve_endpoint("sts", region) (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, regional default).
Result<StsTarget> resolve_sts_target(std::string_view region, std::string_view profile);

struct AssumeRoleParams {
  std::string role_arn;
  std::string role_session_name;  // "" = generated ("shardline-<epoch ms>")
  std::string external_id;        // optional
  std::optional<int> duration_seconds;
};

Result<Credentials> sts_assume_role(const StsTarget& target, const Credentials& source,
                                    const AssumeRoleParams& params,
                                    std::chrono::milliseconds timeout);

Result<Credentials> sts_assume_role_with_web_identity(const StsTarget& target,
                                                      std::string_view role_arn,
                                                      std::string_view role_session_name,
                                                      std::string_view web_identity_token,
                                                      std::chrono::milliseconds timeout);

/// The <Credentials> of an AssumeRole[WithWebIdentity]Response. kInvalidArgument when a field
/// is missing (the message names the field, never the document).
Result<Credentials> parse_sts_credentials(std::string_view xml);

/// A failed STS response as a Status, classified by the AWS error table (aws_errors.def):
/// AccessDenied -> kPermissionDenied, expired tokens and bad signatures -> kUnauthenticated,
/// throttling and 5xx -> retryable; unknown 4xx -> kInvalidArgument. Carries the AWS code,
/// HTTP status and request id; prefixed "STS <action>".
Status sts_error(std::string_view action, long http_status, std::string_view xml,
                 std::string_view request_id);

/// The raw content of the first <tag>...</tag> in `xml`, or nullopt.
std::optional<std::string_view> xml_element_raw(std::string_view xml, std::string_view tag);
/// The decoded text of the first <tag>...</tag> in `xml` (entities decoded, trimmed).
std::optional<std::string> xml_element_text(std::string_view xml, std::string_view tag);

/// "shardline-<epoch ms>": a valid RoleSessionName.
std::string default_role_session_name();

}  // namespace shardline::detail
