#include "aws/aws_errors.h"

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace shardline::detail {
namespace {

constexpr AwsErrorInfo kAwsErrors[] = {
#define SHARDLINE_AWS_ERROR(code, services, status, retry, description) \
  {code, services, StatusCode::status, RetryClass::retry, description},
#include "aws/aws_errors.def"
};

constexpr HttpStatusInfo kHttpStatuses[] = {
#define SHARDLINE_AWS_HTTP_STATUS(first, last, status, retry, description) \
  {first, last, StatusCode::status, RetryClass::retry, description},
#include "aws/aws_errors.def"
};

constexpr TransportErrorInfo kTransportErrors[] = {
#define SHARDLINE_TRANSPORT_ERROR(name, status, retry, description) \
  {TransportError::name, #name, StatusCode::status, RetryClass::retry, description},
#include "aws/aws_errors.def"
};

constexpr bool aws_codes_unique() {
  constexpr std::size_t n = std::size(kAwsErrors);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (kAwsErrors[i].code == kAwsErrors[j].code) return false;
    }
  }
  return true;
}
static_assert(aws_codes_unique(), "aws_errors.def: an AWS error code appears twice");

constexpr bool transport_rows_in_enum_order() {
  for (std::size_t i = 0; i < std::size(kTransportErrors); ++i) {
    if (static_cast<std::size_t>(kTransportErrors[i].error) != i) return false;
  }
  return true;
}
static_assert(transport_rows_in_enum_order());

constexpr bool http_fallback_is_total() {
  const HttpStatusInfo& last = kHttpStatuses[std::size(kHttpStatuses) - 1];
  return last.first == 0 && last.last == 999;
}
static_assert(http_fallback_is_total(), "aws_errors.def: the last HTTP row must cover 0..999");

// Server messages are shown to users and logged: bound them and drop control characters.
constexpr std::size_t kMaxMessageBytes = 1024;

std::string clean_message(std::string_view m) {
  if (m.size() > kMaxMessageBytes) m = m.substr(0, kMaxMessageBytes);
  std::string out(m);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

struct ParsedBody {
  std::string code;  // normalized
  std::string message;
};

// JSON 1.0/1.1: {"__type":"prefix#Code","message":"..."} (or "Message"), possibly wrapped
// coral-style as {"Output":{"__type":...},"Version":"1.0"}.
bool parse_json_body(std::string_view body, ParsedBody& out) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return false;
  simdjson::dom::object output;
  if (obj["Output"].get_object().get(output) == simdjson::SUCCESS) obj = output;
  std::string_view type;
  if (obj["__type"].get_string().get(type) == simdjson::SUCCESS) {
    out.code = std::string(normalize_aws_error_type(type));
  }
  std::string_view message;
  if (obj["message"].get_string().get(message) == simdjson::SUCCESS ||
      obj["Message"].get_string().get(message) == simdjson::SUCCESS) {
    out.message = clean_message(message);
  }
  return true;
}

std::string_view xml_element_text(std::string_view body, std::string_view name) {
  std::string open = "<" + std::string(name) + ">";
  std::string close = "</" + std::string(name) + ">";
  std::size_t begin = body.find(open);
  if (begin == std::string_view::npos) return {};
  begin += open.size();
  std::size_t end = body.find(close, begin);
  if (end == std::string_view::npos) return {};
  return trim(body.substr(begin, end - begin));
}

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// XML errors: the query-protocol <ErrorResponse><Error><Code>..</Code><Message>..</Message>
// shape (STS, moto's auth errors), or kinesalite's bare root element such as
// <AccessDeniedException> or <UnknownOperationException/>. A root element counts only if
// the table knows it, so an HTML page never yields a code.
void parse_xml_body(std::string_view body, ParsedBody& out) {
  std::string_view code = xml_element_text(body, "Code");
  if (!code.empty()) {
    out.code = std::string(normalize_aws_error_type(code));
    out.message = clean_message(xml_element_text(body, "Message"));
    return;
  }
  std::string_view s = trim(body);
  if (s.starts_with("<?")) {
    std::size_t end = s.find("?>");
    if (end == std::string_view::npos) return;
    s = trim(s.substr(end + 2));
  }
  if (!s.starts_with("<")) return;
  s.remove_prefix(1);
  std::size_t n = 0;
  while (n < s.size() && is_name_char(s[n])) ++n;
  std::string_view root = s.substr(0, n);
  if (find_aws_error(root) != nullptr) {
    out.code = std::string(root);
    out.message = clean_message(xml_element_text(body, "Message"));
  }
}

ParsedBody parse_body(std::string_view body) {
  ParsedBody parsed;
  std::string_view t = trim(body);
  if (t.empty()) return parsed;
  if (t.front() == '{') {
    if (parse_json_body(t, parsed)) return parsed;
    return ParsedBody{};
  }
  if (t.front() == '<') parse_xml_body(t, parsed);
  return parsed;
}

}  // namespace

std::span<const AwsErrorInfo> aws_error_table() noexcept { return kAwsErrors; }
std::span<const HttpStatusInfo> http_status_table() noexcept { return kHttpStatuses; }
std::span<const TransportErrorInfo> transport_error_table() noexcept { return kTransportErrors; }

const AwsErrorInfo* find_aws_error(std::string_view code) noexcept {
  if (code.empty()) return nullptr;
  for (const AwsErrorInfo& row : kAwsErrors) {
    if (row.code == code) return &row;
  }
  return nullptr;
}

const HttpStatusInfo& classify_http_status(int http_status) noexcept {
  for (const HttpStatusInfo& row : kHttpStatuses) {
    if (http_status >= row.first && http_status <= row.last) return row;
  }
  return kHttpStatuses[std::size(kHttpStatuses) - 1];
}

const TransportErrorInfo& transport_error_info(TransportError error) noexcept {
  return kTransportErrors[static_cast<std::size_t>(error)];
}

std::string_view normalize_aws_error_type(std::string_view type) noexcept {
  std::size_t hash = type.rfind('#');
  if (hash != std::string_view::npos) type.remove_prefix(hash + 1);
  std::size_t colon = type.find(':');
  if (colon != std::string_view::npos) type = type.substr(0, colon);
  return trim(type);
}

Status aws_error_status(int http_status, std::string_view body,
                        std::string_view amzn_error_type_header, std::string_view request_id) {
  ParsedBody parsed = parse_body(body);
  if (parsed.code.empty())
    parsed.code = std::string(normalize_aws_error_type(amzn_error_type_header));

  const HttpStatusInfo& http_row = classify_http_status(http_status);
  std::string http_text = "HTTP " + std::to_string(http_status);
  Status status;
  if (const AwsErrorInfo* row = find_aws_error(parsed.code)) {
    std::string message =
        parsed.message.empty() ? std::string(row->description) : std::move(parsed.message);
    status = Status(row->status_code, std::move(message), row->retry);
  } else if (!parsed.code.empty()) {
    // A code the table does not know (a new AWS error): the HTTP status decides the class.
    std::string message = parsed.message.empty()
                              ? http_text + ": " + std::string(http_row.description)
                              : std::move(parsed.message);
    status = Status(http_row.status_code, std::move(message), http_row.retry);
  } else if (http_status >= 200 && http_status < 300) {
    return Status();
  } else {
    std::string message = http_text + ": " + std::string(http_row.description);
    if (!parsed.message.empty()) message += ": " + parsed.message;
    status = Status(http_row.status_code, std::move(message), http_row.retry);
  }
  status.set_aws(std::move(parsed.code), http_status, std::string(request_id));
  return status;
}

Status transport_error_status(TransportError error, std::string_view host,
                              std::string_view detail) {
  const TransportErrorInfo& row = transport_error_info(error);
  std::string message(row.description);
  if (!host.empty()) message.append(" (host ").append(host).append(")");
  detail = trim(detail);
  if (!detail.empty()) message.append(": ").append(clean_message(detail));
  return Status(row.status_code, std::move(message), row.retry);
}

std::string_view retry_class_name(RetryClass retry) noexcept {
  switch (retry) {
    case RetryClass::kNone:
      return "none";
    case RetryClass::kSameCall:
      return "same call";
    case RetryClass::kRestart:
      return "restart";
  }
  return "none";
}

std::string aws_errors_markdown() {
  std::string md;
  auto row_tail = [&md](StatusCode code, RetryClass retry, std::string_view description) {
    md.append(" | `").append(status_code_name(code)).append("` | ");
    md.append(retry_class_name(retry)).append(" | ").append(description).append(" |\n");
  };
  md +=
      "## AWS error codes\n\n"
      "Generated from `src/aws/aws_errors.def`. Retry: *none* = fail now; *same call* = back "
      "off, then send the same call again; *restart* = restart from fresh state (a new shard "
      "iterator, re-read the lease), then retry.\n\n"
      "| AWS error code | Services | Status | Retry | Meaning |\n"
      "|---|---|---|---|---|\n";
  for (const AwsErrorInfo& row : kAwsErrors) {
    md.append("| `").append(row.code).append("` | ").append(row.services);
    row_tail(row.status_code, row.retry, row.description);
  }
  md +=
      "\n## HTTP status when the response names no known code\n\n"
      "The first matching row wins.\n\n"
      "| HTTP status | Status | Retry | Meaning |\n"
      "|---|---|---|---|\n";
  for (const HttpStatusInfo& row : kHttpStatuses) {
    md += "| ";
    if (row.first == 0 && row.last == 999) {
      md += "any other";
    } else if (row.first == row.last) {
      md += std::to_string(row.first);
    } else {
      md += std::to_string(row.first) + "–" + std::to_string(row.last);
    }
    row_tail(row.status_code, row.retry, row.description);
  }
  md +=
      "\n## Transport failures (no HTTP response)\n\n"
      "| Failure | Status | Retry | Meaning |\n"
      "|---|---|---|---|\n";
  for (const TransportErrorInfo& row : kTransportErrors) {
    md.append("| `").append(row.name).append("`");
    row_tail(row.status_code, row.retry, row.description);
  }
  return md;
}

}  // namespace shardline::detail
