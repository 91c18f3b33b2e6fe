#include "aws/shared_config.h"

#include "core/ascii.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <system_error>

namespace shardline::detail {

namespace {

constexpr std::string_view kWhitespace = " \t\r\n\f\v";

std::string_view trim(std::string_view s) {
  const std::size_t b = s.find_first_not_of(kWhitespace);
  if (b == std::string_view::npos) return {};
  const std::size_t e = s.find_last_not_of(kWhitespace);
  return s.substr(b, e - b + 1);
}

std::string to_lower(std::string_view s) { return detail::ascii_lowercase(s); }

Status syntax_error(std::string_view path, std::size_t line, std::string_view what) {
  std::string m(path);
  m.append(":").append(std::to_string(line)).append(": ").append(what);
  return Status::invalid_argument(std::move(m));
}

// The profile a config-file section names, or nullopt when it is not a profile section.
std::optional<std::string> config_profile_name(std::string_view section) {
  if (section == "default") return std::string(section);
  if (section.substr(0, 7) != "profile") return std::nullopt;
  // "profile name": exactly two whitespace-separated words (botocore splits with shlex).
  std::string_view rest = section.substr(7);
  if (rest.empty() || kWhitespace.find(rest.front()) == std::string_view::npos) {
    return std::nullopt;
  }
  rest = trim(rest);
  if (rest.size() >= 2 && (rest.front() == '"' || rest.front() == '\'') &&
      rest.back() == rest.front()) {
    rest = rest.substr(1, rest.size() - 2);
  }
  if (rest.empty() || rest.find_first_of(kWhitespace) != std::string_view::npos) {
    return std::nullopt;
  }
  return std::string(rest);
}

std::string home_path(std::string_view leaf) {
  auto home = env_var("HOME");
  if (!home) return {};
  std::string p = *home;
  if (!p.empty() && p.back() != '/') p += '/';
  p.append(".aws/").append(leaf);
  return p;
}

// "~/x" -> "$HOME/x", as the SDKs expand these variables.
std::string expand_home(std::string p) {
  if (p.size() >= 2 && p[0] == '~' && p[1] == '/') {
    if (auto home = env_var("HOME")) return *home + p.substr(1);
  }
  return p;
}

Status load_into(const std::string& path, SharedFileKind kind, ProfileMap& into) {
  if (path.empty()) return Status();
  auto text = read_small_file(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return Status();
    return text.status();
  }
  auto parsed = parse_shared_file(*text, kind, path);
  if (!parsed.ok()) return parsed.status();
  into = std::move(*parsed);
  return Status();
}

}  // namespace

std::optional<std::string> env_var(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

bool env_flag(const char* name) {
  auto v = env_var(name);
  return v && to_lower(trim(*v)) == "true";
}

Result<ProfileMap> parse_shared_file(std::string_view text, SharedFileKind kind,
                                     std::string_view path) {
  ProfileMap profiles;
  ProfileValues* current = nullptr;  // nullptr: outside any profile section
  bool in_section = false;
  std::string* last_value = nullptr;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view t = trim(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;
    const bool indented = kWhitespace.find(line.front()) != std::string_view::npos;
    if (indented && last_value != nullptr) {
      // Continuation: a nested setting ("s3 =\n  max_concurrent_requests = 10").
      last_value->append("\n").append(t);
      continue;
    }
    if (t.front() == '[') {
      const std::size_t close = t.rfind(']');
      if (close == std::string_view::npos || close < 2) {
        return syntax_error(path, line_no, "malformed section header");
      }
      const std::string_view name = trim(t.substr(1, close - 1));
      std::optional<std::string> profile;
      if (kind == SharedFileKind::kConfig) {
        profile = config_profile_name(name);
      } else if (!name.empty()) {
        profile = std::string(name);
      }
      in_section = true;
      current = profile ? &profiles[*profile] : nullptr;
      last_value = nullptr;
      continue;
    }
    const std::size_t delim = t.find_first_of("=:");
    if (delim == std::string_view::npos || delim == 0) {
      return syntax_error(path, line_no, "expected 'key = value'");
    }
    if (!in_section) return syntax_error(path, line_no, "setting outside a [section]");
    const std::string key = to_lower(trim(t.substr(0, delim)));
    if (key.empty()) return syntax_error(path, line_no, "empty key");
    if (current == nullptr) {
      last_value = nullptr;
      continue;
    }
    std::string& slot = (*current)[key];
    slot.assign(trim(t.substr(delim + 1)));
    last_value = &slot;
  }
  return profiles;
}

std::string shared_config_file_path() {
  if (auto p = env_var("AWS_CONFIG_FILE")) return expand_home(*p);
  return home_path("config");
}

std::string shared_credentials_file_path() {
  if (auto p = env_var("AWS_SHARED_CREDENTIALS_FILE")) return expand_home(*p);
  return home_path("credentials");
}

std::string resolve_profile_name(std::string_view explicit_profile) {
  if (!explicit_profile.empty()) return std::string(explicit_profile);
  if (auto p = env_var("AWS_PROFILE")) return *p;
  if (auto p = env_var("AWS_DEFAULT_PROFILE")) return *p;
  return "default";
}

std::optional<ProfileValues> SharedConfig::profile(std::string_view name) const {
  const auto c = config.find(name);
  const auto k = credentials.find(name);
  if (c == config.end() && k == credentials.end()) return std::nullopt;
  ProfileValues merged;
  if (c != config.end()) merged = c->second;
  if (k != credentials.end()) {
    for (const auto& [key, value] : k->second) merged[key] = value;
  }
  return merged;
}

std::string SharedConfig::describe_files() const {
  std::string s =
      credentials_path.empty() ? std::string("<no credentials file>") : credentials_path;
  s.append(" or ").append(config_path.empty() ? std::string("<no config file>") : config_path);
  return s;
}

Result<SharedConfig> load_shared_config() {
  return load_shared_config(shared_config_file_path(), shared_credentials_file_path());
}

Result<SharedConfig> load_shared_config(std::string config_path, std::string credentials_path) {
  SharedConfig c;
  c.config_path = std::move(config_path);
  c.credentials_path = std::move(credentials_path);
  SHARDLINE_RETURN_IF_ERROR(load_into(c.config_path, SharedFileKind::kConfig, c.config));
  SHARDLINE_RETURN_IF_ERROR(
      load_into(c.credentials_path, SharedFileKind::kCredentials, c.credentials));
  return c;
}

Result<SharedConfig> load_shared_config_file_only() {
  SharedConfig c;
  c.config_path = shared_config_file_path();
  SHARDLINE_RETURN_IF_ERROR(load_into(c.config_path, SharedFileKind::kConfig, c.config));
  return c;
}

Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Status::not_found(path + ": no such file");
    return Status::invalid_argument(
        path + ": cannot open: " + std::error_code(err, std::generic_category()).message());
  }
  std::string data;
  char buf[8192];
  for (;;) {
    const std::size_t n = std::fread(buf, 1, sizeof(buf), f.get());
    data.append(buf, n);
    if (data.size() > max_bytes) {
      return Status::invalid_argument(path + ": larger than " + std::to_string(max_bytes) +
                                      " bytes");
    }
    if (n < sizeof(buf)) {
      if (std::ferror(f.get())) return Status::invalid_argument(path + ": read error");
      break;
    }
  }
  return data;
}

}  // namespace shardline::detail
