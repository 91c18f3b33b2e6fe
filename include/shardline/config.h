// File: shardline/config.h
//
// Typed settings generated from the tables in shardline/config/*.def (producer.def ->
// ProducerConfig, KPL key names; consumer.def -> ConsumerConfig, KCL key names; multilang.def ->
// MultiLangConfig, the KCL MultiLangDaemon's own keys), a Java-style `.properties` parser, and
// validation whose messages name the key and its allowed range.
//
//   shardline::ProducerConfig cfg;                              // KPL defaults
//   std::vector<std::string> warnings;
//   shardline::Status s = shardline::load_properties_file("kpl.properties", cfg, &warnings);
//   s = shardline::set_setting(cfg, "RecordTtl", "60000");
//   // s: "RecordTtl must be an integer in [100, 9223372036854775807] ms, got '6e4'"
//
//   shardline::ConsumerConfig kcl;                              // KCL defaults
//   s = shardline::load_properties_file("app.properties", kcl, &warnings);
//
//   shardline::MultiLangConfig mld;                             // a MultiLangDaemon file: both
//   s = shardline::load_properties_file("sample.properties", kcl, mld, &warnings);
//
// Unknown keys and keys that are accepted but unused produce warnings (never errors), as the
// KPL does; the warning for an unknown key names the nearest known key of the same table.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardline/status.h"

namespace shardline {

// The member of each row: a .def row becomes one default-initialised field.
#define SL_BOOL(m, k, d, doc) bool m = d;
#define SL_INT(m, k, d, lo, hi, unit, doc) std::int64_t m = d;
#define SL_ENUM(m, k, d, choices, doc) std::string m = d;
#define SL_STR(m, k, d, doc) std::string m = d;
#define SL_UNUSED(k, why)

/// Producer settings. Member names are the snake_case of the KPL keys; times are in ms.
struct ProducerConfig {
#include "shardline/config/producer.def"
};

/// Consumer (worker) settings. Member names are the snake_case of the KCL keys; times are in
/// ms unless the key says otherwise (initialPositionInStreamExtended is in seconds).
struct ConsumerConfig {
#include "shardline/config/consumer.def"
};

/// The KCL MultiLangDaemon's own settings (`shardline multilang`): executableName,
/// timeoutInSeconds, shutdownGraceMillis, credentials providers, ... Times in ms unless the key
/// says otherwise (timeoutInSeconds).
struct MultiLangConfig {
#include "shardline/config/multilang.def"
};

#undef SL_BOOL
#undef SL_INT
#undef SL_ENUM
#undef SL_STR
#undef SL_UNUSED

/// One row of a settings table.
enum class SettingKind : std::uint8_t { kBool, kInt, kEnum, kString, kUnused };

template <class Config>
struct SettingInfo {
  SettingKind kind;
  std::string_view key;
  std::string_view default_text;
  std::int64_t min = 0;
  std::int64_t max = 0;
  std::string_view choices;  // kEnum: "a|b|c"
  std::string_view unit;
  std::string_view doc;  // kUnused: why it has no effect
  bool Config::*bool_member = nullptr;
  std::int64_t Config::*int_member = nullptr;
  std::string Config::*string_member = nullptr;
};

/// The producer table, in the order of producer.def.
std::span<const SettingInfo<ProducerConfig>> producer_settings() noexcept;

/// The consumer table, in the order of consumer.def.
std::span<const SettingInfo<ConsumerConfig>> consumer_settings() noexcept;

/// The MultiLangDaemon table, in the order of multilang.def.
std::span<const SettingInfo<MultiLangConfig>> multilang_settings() noexcept;

/// Set one key from its text form. Errors (kInvalidArgument) name the key, the allowed
/// range or choices, and the rejected value. An unknown key or an unused one returns OK and
/// appends a warning to `warnings` (when given).
Status set_setting(ProducerConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings = nullptr);
/// The same against the consumer table (KCL key names).
Status set_setting(ConsumerConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings = nullptr);
/// The same against the MultiLangDaemon table.
Status set_setting(MultiLangConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings = nullptr);
/// One key of a MultiLangDaemon file: the multilang table if it has the key (the KCL's
/// AWSCredentialsProvider spellings, in any case, are its AwsCredentialsProvider keys), else the
/// consumer table; a key unknown to both is a warning naming the nearest key of either table.
Status set_setting(ConsumerConfig& consumer, MultiLangConfig& multilang, std::string_view key,
                   std::string_view value, std::vector<std::string>* warnings = nullptr);

/// Check a config built in code: every integer within its key's range and every enum one of its
/// choices. kInvalidArgument with the message set_setting() would give for that key.
Status validate_config(const ProducerConfig& cfg);
Status validate_config(const ConsumerConfig& cfg);
Status validate_config(const MultiLangConfig& cfg);

/// One `key=value` entry of a .properties file.
struct Property {
  std::string key;
  std::string value;
  int line = 0;  // 1-based line where the entry starts
};

/// Parse the java.util.Properties text format: `#`/`!` comments, `=`, `:` or whitespace as
/// separator, backslash line continuations and escapes (\t \n \r \f \uXXXX \\).
/// Returns kInvalidArgument on malformed escapes (with the line number).
Status parse_properties(std::string_view text, std::vector<Property>& out);

/// Parse `text` and apply every entry to `cfg`. `source` names the file in messages
/// ("kpl.properties:12: ...").
Status apply_properties(ProducerConfig& cfg, std::string_view text, std::string_view source,
                        std::vector<std::string>* warnings = nullptr);
/// The same against the consumer table ("kcl.properties:12: ...").
Status apply_properties(ConsumerConfig& cfg, std::string_view text, std::string_view source,
                        std::vector<std::string>* warnings = nullptr);
/// A KCL MultiLangDaemon properties file, applied across both tables (see the set_setting
/// overload with both configs).
Status apply_properties(ConsumerConfig& consumer, MultiLangConfig& multilang, std::string_view text,
                        std::string_view source, std::vector<std::string>* warnings = nullptr);

/// Read a file and apply it. kNotFound when the file cannot be read.
Status load_properties_file(const std::string& path, ProducerConfig& cfg,
                            std::vector<std::string>* warnings = nullptr);
/// The same against the consumer table.
Status load_properties_file(const std::string& path, ConsumerConfig& cfg,
                            std::vector<std::string>* warnings = nullptr);
/// The same for a MultiLangDaemon file, across both tables.
Status load_properties_file(const std::string& path, ConsumerConfig& consumer,
                            MultiLangConfig& multilang,
                            std::vector<std::string>* warnings = nullptr);

/// docs/CONFIGURATION.md, generated from the tables (producer, consumer and MultiLangDaemon
/// sections).
std::string configuration_markdown();

/// The key in `known` closest to `key` (case-insensitive edit distance), or "" if none is
/// reasonably close.
std::string nearest_key(std::string_view key, std::span<const std::string_view> known);

}  // namespace shardline
