#include "shardline/config.h"

#include "core/ascii.h"
#include "shardline/result.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace shardline {

namespace {

// Row macros for a table of SL_TABLE_CONFIG's settings: define SL_TABLE_CONFIG, include a .def
// inside the braces of a SettingInfo<SL_TABLE_CONFIG> array, undefine it. Used once per table.
#define SL_BOOL(m, k, d, doc) \
  {SettingKind::kBool, k, #d, 0, 0, "", "", doc, &SL_TABLE_CONFIG::m, nullptr, nullptr},
#define SL_INT(m, k, d, lo, hi, unit, doc) \
  {SettingKind::kInt, k, #d, lo, hi, "", unit, doc, nullptr, &SL_TABLE_CONFIG::m, nullptr},
#define SL_ENUM(m, k, d, choices, doc) \
  {SettingKind::kEnum, k, d, 0, 0, choices, "", doc, nullptr, nullptr, &SL_TABLE_CONFIG::m},
#define SL_STR(m, k, d, doc) \
  {SettingKind::kString, k, d, 0, 0, "", "", doc, nullptr, nullptr, &SL_TABLE_CONFIG::m},
#define SL_UNUSED(k, why) \
  {SettingKind::kUnused, k, "", 0, 0, "", "", why, nullptr, nullptr, nullptr},

#define SL_TABLE_CONFIG ProducerConfig
constexpr SettingInfo<ProducerConfig> kProducerTable[] = {
#include "shardline/config/producer.def"
};
#undef SL_TABLE_CONFIG

#define SL_TABLE_CONFIG ConsumerConfig
constexpr SettingInfo<ConsumerConfig> kConsumerTable[] = {
#include "shardline/config/consumer.def"
};
#undef SL_TABLE_CONFIG

#define SL_TABLE_CONFIG MultiLangConfig
constexpr SettingInfo<MultiLangConfig> kMultiLangTable[] = {
#include "shardline/config/multilang.def"
};
#undef SL_TABLE_CONFIG

#undef SL_BOOL
#undef SL_INT
#undef SL_ENUM
#undef SL_STR
#undef SL_UNUSED

// The table of a config type, so the templates below take only the config.
std::span<const SettingInfo<ProducerConfig>> table_of(const ProducerConfig&) {
  return kProducerTable;
}
std::span<const SettingInfo<ConsumerConfig>> table_of(const ConsumerConfig&) {
  return kConsumerTable;
}
std::span<const SettingInfo<MultiLangConfig>> table_of(const MultiLangConfig&) {
  return kMultiLangTable;
}

std::string quote(std::string_view v) {
  std::string s = "'";
  s.append(v.substr(0, 80));
  if (v.size() > 80) s += "...";
  s += "'";
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\f'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\f' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

using detail::ascii_iequals;

// The human form of a default, e.g. "4294967295LL" -> "4294967295", "INT64_MAX" -> the number.
std::string pretty_number(std::int64_t v) { return std::to_string(v); }

template <class Config>
std::string default_text(const SettingInfo<Config>& s) {
  std::string d(s.default_text);
  if (s.kind == SettingKind::kInt) {
    while (!d.empty() && (d.back() == 'L' || d.back() == 'U')) d.pop_back();
  }
  return d;
}

template <class Config>
Status set_in_table(std::span<const SettingInfo<Config>> table, Config& cfg, std::string_view key,
                    std::string_view raw, std::vector<std::string>* warnings) {
  const std::string_view value = trim(raw);
  const SettingInfo<Config>* row = nullptr;
  for (const auto& s : table) {
    if (s.key == key) {
      row = &s;
      break;
    }
  }
  if (row == nullptr) {
    std::vector<std::string_view> keys;
    for (const auto& s : table) keys.push_back(s.key);
    std::string w = "unknown key '" + std::string(key) + "' ignored";
    const std::string near = nearest_key(key, keys);
    if (!near.empty()) w += "; did you mean '" + near + "'?";
    if (warnings) warnings->push_back(std::move(w));
    return {};
  }
  switch (row->kind) {
    case SettingKind::kUnused:
      if (warnings)
        warnings->push_back(std::string(key) + " accepted, not used: " + std::string(row->doc));
      return {};
    case SettingKind::kBool:
      if (ascii_iequals(value, "true")) {
        cfg.*(row->bool_member) = true;
      } else if (ascii_iequals(value, "false")) {
        cfg.*(row->bool_member) = false;
      } else {
        return Status::invalid_argument(std::string(key) + " must be true or false, got " +
                                        quote(raw));
      }
      return {};
    case SettingKind::kInt: {
      std::int64_t v = 0;
      const char* b = value.data();
      const char* e = value.data() + value.size();
      auto [p, ec] = std::from_chars(b, e, v);
      std::string range = "[" + pretty_number(row->min) + ", " + pretty_number(row->max) + "]";
      if (!row->unit.empty()) range += " " + std::string(row->unit);
      if (value.empty() || ec == std::errc::invalid_argument || p != e) {
        return Status::invalid_argument(std::string(key) + " must be an integer in " + range +
                                        ", got " + quote(raw));
      }
      if (ec == std::errc::result_out_of_range || v < row->min || v > row->max) {
        return Status::invalid_argument(std::string(key) + " must be in " + range + ", got " +
                                        quote(raw));
      }
      cfg.*(row->int_member) = v;
      return {};
    }
    case SettingKind::kEnum: {
      std::string_view rest = row->choices;
      while (!rest.empty()) {
        const auto bar = rest.find('|');
        const std::string_view choice = rest.substr(0, bar);
        if (ascii_iequals(choice, value)) {
          cfg.*(row->string_member) = std::string(choice);
          return {};
        }
        if (bar == std::string_view::npos) break;
        rest.remove_prefix(bar + 1);
      }
      return Status::invalid_argument(std::string(key) + " must be one of " +
                                      std::string(row->choices) + ", got " + quote(raw));
    }
    case SettingKind::kString:
      cfg.*(row->string_member) = std::string(value);
      return {};
  }
  return Status::internal("unhandled setting kind");
}

}  // namespace

std::span<const SettingInfo<ProducerConfig>> producer_settings() noexcept { return kProducerTable; }

std::span<const SettingInfo<ConsumerConfig>> consumer_settings() noexcept { return kConsumerTable; }

std::span<const SettingInfo<MultiLangConfig>> multilang_settings() noexcept {
  return kMultiLangTable;
}

Status set_setting(ProducerConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings) {
  return set_in_table(table_of(cfg), cfg, key, value, warnings);
}

Status set_setting(ConsumerConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings) {
  return set_in_table(table_of(cfg), cfg, key, value, warnings);
}

Status set_setting(MultiLangConfig& cfg, std::string_view key, std::string_view value,
                   std::vector<std::string>* warnings) {
  return set_in_table(table_of(cfg), cfg, key, value, warnings);
}

namespace {
template <class Config>
bool has_key(std::span<const SettingInfo<Config>> table, std::string_view key) {
  for (const auto& s : table) {
    if (s.key == key) return true;
  }
  return false;
}

// The KCL matches its credentials keys without regard to case, and documents both the
// `AWSCredentialsProvider` and the `AwsCredentialsProvider` spelling.
std::string_view canonical_multilang_key(std::string_view key) {
  for (std::string_view k : {std::string_view("AwsCredentialsProvider"),
                             std::string_view("AwsCredentialsProviderDynamoDB"),
                             std::string_view("AwsCredentialsProviderCloudWatch")}) {
    if (ascii_iequals(key, k)) return k;
  }
  return key;
}
}  // namespace

Status set_setting(ConsumerConfig& consumer, MultiLangConfig& multilang, std::string_view key,
                   std::string_view value, std::vector<std::string>* warnings) {
  const std::string_view k = canonical_multilang_key(key);
  if (has_key(table_of(multilang), k))
    return set_in_table(table_of(multilang), multilang, k, value, warnings);
  if (has_key(table_of(consumer), k))
    return set_in_table(table_of(consumer), consumer, k, value, warnings);
  std::vector<std::string_view> keys;
  for (const auto& s : table_of(multilang)) keys.push_back(s.key);
  for (const auto& s : table_of(consumer)) keys.push_back(s.key);
  std::string w = "unknown key '" + std::string(key) + "' ignored";
  const std::string near = nearest_key(key, keys);
  if (!near.empty()) w += "; did you mean '" + near + "'?";
  if (warnings) warnings->push_back(std::move(w));
  return {};
}

namespace {
// Check every field of a config built in code against its table row, with the messages of
// set_setting (each value is set again, as text, on a scratch copy).
template <class Config>
Status validate_in_table(const Config& cfg) {
  Config scratch = cfg;
  for (const auto& row : table_of(cfg)) {
    std::string text;
    switch (row.kind) {
      case SettingKind::kInt:
        text = std::to_string(cfg.*(row.int_member));
        break;
      case SettingKind::kEnum:
        text = cfg.*(row.string_member);
        break;
      default:
        continue;
    }
    SHARDLINE_RETURN_IF_ERROR(set_in_table(table_of(cfg), scratch, row.key, text, nullptr));
  }
  return {};
}
}  // namespace

Status validate_config(const ProducerConfig& cfg) { return validate_in_table(cfg); }
Status validate_config(const ConsumerConfig& cfg) { return validate_in_table(cfg); }
Status validate_config(const MultiLangConfig& cfg) { return validate_in_table(cfg); }

std::string nearest_key(std::string_view key, std::span<const std::string_view> known) {
  if (key.size() > 128) return {};  // no key is that long; skip the quadratic work
  const std::string a = detail::ascii_lowercase(key);
  std::size_t best = SIZE_MAX;
  std::string_view best_key;
  std::vector<std::size_t> prev, cur;
  for (std::string_view k : known) {
    const std::string b = detail::ascii_lowercase(k);
    prev.assign(b.size() + 1, 0);
    cur.assign(b.size() + 1, 0);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j) {
        const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      }
      std::swap(prev, cur);
    }
    if (prev[b.size()] < best) {
      best = prev[b.size()];
      best_key = k;
    }
  }
  // Accept a suggestion within a third of the key's length (at least 2 edits).
  const std::size_t limit = std::max<std::size_t>(2, key.size() / 3);
  return best <= limit ? std::string(best_key) : std::string();
}

Status parse_properties(std::string_view text, std::vector<Property>& out) {
  out.clear();
  std::size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    // Gather one logical line (joined over backslash continuations).
    std::string logical;
    const int start_line = line_no + 1;
    bool first_physical = true;
    while (true) {
      const std::size_t nl = text.find('\n', pos);
      std::string_view phys =
          text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
      pos = (nl == std::string_view::npos) ? text.size() : nl + 1;
      ++line_no;
      if (!phys.empty() && phys.back() == '\r') phys.remove_suffix(1);
      if (!first_physical) {  // continuation lines drop their leading whitespace
        while (!phys.empty() &&
               (phys.front() == ' ' || phys.front() == '\t' || phys.front() == '\f'))
          phys.remove_prefix(1);
      }
      if (first_physical) {
        std::string_view t = trim(phys);
        if (t.empty() || t.front() == '#' || t.front() == '!') {
          logical.clear();
          break;  // blank or comment line: never continued
        }
      }
      first_physical = false;
      // Count trailing backslashes: an odd count continues the line.
      std::size_t bs = 0;
      while (bs < phys.size() && phys[phys.size() - 1 - bs] == '\\') ++bs;
      if (bs % 2 == 1 && pos < text.size()) {
        logical.append(phys.substr(0, phys.size() - 1));
        continue;
      }
      if (bs % 2 == 1) phys.remove_suffix(1);  // a dangling continuation at end of file
      logical.append(phys);
      break;
    }
    std::string_view l = logical;
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t' || l.front() == '\f'))
      l.remove_prefix(1);
    if (l.empty()) continue;

    // Split key / value at the first unescaped '=', ':' or whitespace, then unescape both.
    std::string key, value;
    std::string* dst = &key;
    bool in_key = true;
    bool separator_seen = false;
    for (std::size_t i = 0; i < l.size(); ++i) {
      char c = l[i];
      if (in_key && (c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f')) {
        in_key = false;
        dst = &value;
        // Skip whitespace, then at most one '=' or ':' and whitespace after it.
        std::size_t j = i;
        while (j < l.size() && (l[j] == ' ' || l[j] == '\t' || l[j] == '\f')) ++j;
        if (j < l.size() && (l[j] == '=' || l[j] == ':') && !separator_seen) {
          ++j;
          while (j < l.size() && (l[j] == ' ' || l[j] == '\t' || l[j] == '\f')) ++j;
        }
        separator_seen = true;
        i = j - 1;
        continue;
      }
      if (c == '\\') {
        if (i + 1 >= l.size()) break;
        const char e = l[++i];
        switch (e) {
          case 't':
            dst->push_back('\t');
            break;
          case 'n':
            dst->push_back('\n');
            break;
          case 'r':
            dst->push_back('\r');
            break;
          case 'f':
            dst->push_back('\f');
            break;
          case 'u': {
            unsigned cp = 0;
            for (int k = 1; k <= 4; ++k) {
              if (i + static_cast<std::size_t>(k) >= l.size())
                return Status::invalid_argument("line " + std::to_string(start_line) +
                                                ": malformed \\uXXXX escape");
              const char h = l[i + static_cast<std::size_t>(k)];
              unsigned d;
              if (h >= '0' && h <= '9')
                d = static_cast<unsigned>(h - '0');
              else if (h >= 'a' && h <= 'f')
                d = static_cast<unsigned>(h - 'a' + 10);
              else if (h >= 'A' && h <= 'F')
                d = static_cast<unsigned>(h - 'A' + 10);
              else
                return Status::invalid_argument("line " + std::to_string(start_line) +
                                                ": malformed \\uXXXX escape");
              cp = cp * 16 + d;
            }
            i += 4;
            // UTF-8 encode the BMP code point (surrogates are kept as-is, encoded naively).
            if (cp < 0x80) {
              dst->push_back(static_cast<char>(cp));
            } else if (cp < 0x800) {
              dst->push_back(static_cast<char>(0xC0 | (cp >> 6)));
              dst->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            } else {
              dst->push_back(static_cast<char>(0xE0 | (cp >> 12)));
              dst->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
              dst->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            }
            break;
          }
          default:
            dst->push_back(e);
            break;  // \\ \= \: \# \! and any other char map to itself
        }
        continue;
      }
      dst->push_back(c);
    }
    out.push_back(Property{std::move(key), std::move(value), start_line});
  }
  return {};
}

namespace {

// `set(key, value, warnings)` applies one entry.
template <class Setter>
Status apply_with(const Setter& set, std::string_view text, std::string_view source,
                  std::vector<std::string>* warnings) {
  std::vector<Property> props;
  Status s = parse_properties(text, props);
  if (!s.ok()) return std::move(s).with_context(source);
  for (const Property& p : props) {
    std::vector<std::string> w;
    Status r = set(p.key, p.value, &w);
    const std::string where = std::string(source) + ":" + std::to_string(p.line);
    if (!r.ok()) return std::move(r).with_context(where);
    if (warnings)
      for (auto& x : w) warnings->push_back(where + ": " + x);
  }
  return {};
}

template <class Config>
Status apply_to(Config& cfg, std::string_view text, std::string_view source,
                std::vector<std::string>* warnings) {
  return apply_with(
      [&cfg](std::string_view k, std::string_view v, std::vector<std::string>* w) {
        return set_in_table(table_of(cfg), cfg, k, v, w);
      },
      text, source, warnings);
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot read properties file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class Config>
Status load_into(const std::string& path, Config& cfg, std::vector<std::string>* warnings) {
  auto text = read_text(path);
  if (!text.ok()) return text.status();
  return apply_to(cfg, *text, path, warnings);
}

// Text for a Markdown table cell: '|' would end the cell and '<' could open an HTML tag.
std::string md_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '<')
      out += "&lt;";
    else
      out += c;
  }
  return out;
}

// One scope's section: the settings table, then the keys accepted but not used. `library`
// names where the key names come from ("KPL", "KCL").
template <class Config>
void append_section(std::string& md, std::string_view heading, std::string_view library,
                    std::span<const SettingInfo<Config>> table) {
  md += "## " + std::string(heading) + "\n\n";
  md += "| Key | Type | Default | Range / choices | Unit | Description |\n";
  md += "|---|---|---|---|---|---|\n";
  std::string unused;
  for (const SettingInfo<Config>& s : table) {
    if (s.kind == SettingKind::kUnused) {
      unused += "| `" + std::string(s.key) + "` | " + md_cell(s.doc) + " |\n";
      continue;
    }
    std::string type, range;
    switch (s.kind) {
      case SettingKind::kBool:
        type = "bool";
        range = "true, false";
        break;
      case SettingKind::kInt:
        type = "int";
        range = pretty_number(s.min) + " .. " + pretty_number(s.max);
        break;
      case SettingKind::kEnum: {
        type = "enum";
        range = std::string(s.choices);
        std::replace(range.begin(), range.end(), '|', ',');
        std::string spaced;
        for (char c : range) {
          spaced += c;
          if (c == ',') spaced += ' ';
        }
        range = spaced;
        break;
      }
      case SettingKind::kString:
        type = "string";
        range = "any";
        break;
      case SettingKind::kUnused:
        break;
    }
    std::string def = default_text(s);
    if (def.empty()) def = "(empty)";
    md += "| `" + std::string(s.key) + "` | " + type + " | `" + def + "` | " + range + " | " +
          std::string(s.unit) + " | " + md_cell(s.doc) + " |\n";
  }
  md += "\n### Accepted, not used\n\nThese " + std::string(library) +
        " keys load without error and log a warning saying why they have no effect in "
        "shardline.\n\n";
  md += "| Key | Why |\n|---|---|\n";
  md += unused;
}

}  // namespace

Status apply_properties(ProducerConfig& cfg, std::string_view text, std::string_view source,
                        std::vector<std::string>* warnings) {
  return apply_to(cfg, text, source, warnings);
}

Status apply_properties(ConsumerConfig& cfg, std::string_view text, std::string_view source,
                        std::vector<std::string>* warnings) {
  return apply_to(cfg, text, source, warnings);
}

Status load_properties_file(const std::string& path, ProducerConfig& cfg,
                            std::vector<std::string>* warnings) {
  return load_into(path, cfg, warnings);
}

Status load_properties_file(const std::string& path, ConsumerConfig& cfg,
                            std::vector<std::string>* warnings) {
  return load_into(path, cfg, warnings);
}

Status apply_properties(ConsumerConfig& consumer, MultiLangConfig& multilang, std::string_view text,
                        std::string_view source, std::vector<std::string>* warnings) {
  return apply_with(
      [&](std::string_view k, std::string_view v, std::vector<std::string>* w) {
        return set_setting(consumer, multilang, k, v, w);
      },
      text, source, warnings);
}

Status load_properties_file(const std::string& path, ConsumerConfig& consumer,
                            MultiLangConfig& multilang, std::vector<std::string>* warnings) {
  auto text = read_text(path);
  if (!text.ok()) return text.status();
  return apply_properties(consumer, multilang, *text, path, warnings);
}

std::string configuration_markdown() {
  std::string md;
  md += "# Configuration\n\n";
  md +=
      "<!-- Generated from include/shardline/config/*.def by `shardline config docs`. "
      "Do not edit; a test fails when this file is stale. -->\n\n";
  md +=
      "Settings load from a Java-style `.properties` file (`key = value`, `#` comments) or from "
      "code. Key names are the KPL's (producer) and the KCL's (consumer, MultiLangDaemon), so "
      "existing KPL, KCL and MultiLangDaemon properties files load unchanged. "
      "Unknown keys are warned about (naming the nearest known key) and ignored; a value out "
      "of range is an error that names the key and the range.\n\n";
  append_section(md, "Producer (`shardline put --config FILE`, `ProducerConfig`)", "KPL",
                 producer_settings());
  md += "\n";
  append_section(md, "Consumer (`shardline consume --config FILE`, `ConsumerConfig`)", "KCL",
                 consumer_settings());
  md += "\n";
  append_section(md, "MultiLangDaemon (`shardline multilang --properties FILE`, `MultiLangConfig`)",
                 "KCL MultiLangDaemon", multilang_settings());
  md +=
      "\nA MultiLangDaemon properties file holds keys of both the consumer table and this one: "
      "each key is applied to the table that has it (this one first), and a key neither has is "
      "warned about with the nearest key of either.\n";
  return md;
}

}  // namespace shardline
