#include "aws/json_writer.h"

#include "core/digest.h"

namespace shardline::detail {

JsonWriter& JsonWriter::base64(std::string_view bytes) {
  comma();
  out_.push_back('"');
  base64_append(out_, bytes);
  out_.push_back('"');
  return *this;
}

void JsonWriter::append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(esc, 6);
    }
  }
}

void JsonWriter::append_escaped(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    append_escape(out, c);
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace shardline::detail
