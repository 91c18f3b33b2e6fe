// Internal: the AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials)
// and the environment variables that locate them.
//
// Syntax, as botocore reads it: `[section]` headers; `key = value` or `key: value` (keys are
// lower-cased, values trimmed, no inline comments); whole-line comments start with '#' or ';';
// indented lines continue the previous value (nested settings such as `s3 =`). In the config
// file a profile section is `[profile name]` or `[default]`; other sections are not profiles.
// In the credentials file every section is a profile named literally. A repeated key or
// section: the last value wins.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "shardline/result.h"

namespace shardline::detail {

/// The value of environment variable `name`; nullopt when unset or empty.
std::optional<std::string> env_var(const char* name);
/// True when the variable is set to "true" (any case).
bool env_flag(const char* name);

using ProfileValues = std::map<std::string, std::string, std::less<>>;
using ProfileMap = std::map<std::string, ProfileValues, std::less<>>;

enum class SharedFileKind { kConfig, kCredentials };

/// Parse one file. kInvalidArgument "<path>:<line>: <problem>" on a syntax error; the message
/// never quotes the line (it may hold a secret).
Result<ProfileMap> parse_shared_file(std::string_view text, SharedFileKind kind,
                                     std::string_view path_for_errors);

/// AWS_CONFIG_FILE, else $HOME/.aws/config ("" when neither is set).
std::string shared_config_file_path();
/// AWS_SHARED_CREDENTIALS_FILE, else $HOME/.aws/credentials.
std::string shared_credentials_file_path();
/// `explicit_profile`, else AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default".
std::string resolve_profile_name(std::string_view explicit_profile);

struct SharedConfig {
  std::string config_path;
  std::string credentials_path;
  ProfileMap config;       // profiles of the config file
  ProfileMap credentials;  // profiles of the credentials file

  /// The profile's settings from both files, credentials-file keys winning; nullopt when the
  /// profile is in neither file.
  std::optional<ProfileValues> profile(std::string_view name) const;
  /// "<credentials path> or <config path>", for messages.
  std::string describe_files() const;
};

/// Read both files. A missing file is empty; an unreadable or malformed one is an error
/// (kInvalidArgument).
Result<SharedConfig> load_shared_config();
Result<SharedConfig> load_shared_config(std::string config_path, std::string credentials_path);
/// Read only the config file (for the region).
Result<SharedConfig> load_shared_config_file_only();

/// The region from `explicit_region`, AWS_REGION, AWS_DEFAULT_REGION or the profile's `region`
/// in the config file; nullopt when none is set. kInvalidArgument for a malformed value or
/// config file. (resolve_region() in aws_config.h turns nullopt into an error.)
Result<std::optional<std::string>> find_configured_region(std::string_view explicit_region,
                                                          std::string_view profile);

/// Read a whole (small) file. kNotFound if it does not exist, kInvalidArgument if unreadable
/// or larger than `max_bytes`.
Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes = 1 << 20);

}  // namespace shardline::detail
