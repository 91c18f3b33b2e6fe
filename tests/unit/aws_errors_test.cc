// The AWS error table (src/aws/aws_errors.def) and aws_error_status() on every body shape the
// local servers and AWS send (shared reference: local-test-servers.md §6).
#include "aws/aws_errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

namespace shardline {
namespace {

using detail::aws_error_status;
using detail::find_aws_error;
using detail::normalize_aws_error_type;
using detail::transport_error_status;
using detail::TransportError;

TEST(AwsErrors, DynamoDbTypeWithNamespacePrefix) {
  // dynalite / DynamoDB (JSON 1.0).
  Status s = aws_error_status(
      400,
      R"({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",)"
      R"("message":"The conditional request failed"})",
      "", "REQ123");
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(s.retry(), RetryClass::kRestart);
  EXPECT_EQ(s.aws_error_code(), "ConditionalCheckFailedException");
  EXPECT_EQ(s.message(), "The conditional request failed");
  EXPECT_EQ(s.http_status(), 400);
  EXPECT_EQ(s.request_id(), "REQ123");
}

TEST(AwsErrors, CoralValidatePrefix) {
  Status s = aws_error_status(
      400, R"({"__type":"com.amazon.coral.validate#ValidationException","message":"bad"})", "", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.retry(), RetryClass::kNone);
  EXPECT_EQ(s.aws_error_code(), "ValidationException");
}

TEST(AwsErrors, KinesaliteShortTypeThrottle) {
  Status s = aws_error_status(
      400,
      R"({"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard )"
      R"(shardId-000000000000 in stream s under account 000000000000."})",
      "", "");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.retry(), RetryClass::kSameCall);
  EXPECT_EQ(s.aws_error_code(), "ProvisionedThroughputExceededException");
  EXPECT_NE(s.message().find("Rate exceeded"), std::string_view::npos);
}

TEST(AwsErrors, MotoCapitalMessageAndErrorTypeHeader) {
  Status s = aws_error_status(
      400, R"({"__type": "ResourceNotFoundException", "Message": "Stream s not found"})",
      "ResourceNotFoundException", "moto-req");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.retry(), RetryClass::kNone);
  EXPECT_EQ(s.message(), "Stream s not found");
  EXPECT_EQ(s.request_id(), "moto-req");
}

TEST(AwsErrors, ErrorTypeHeaderOnly) {
  Status s = aws_error_status(
      400, "", "ValidationException:http://internal.amazon.com/coral/com.amazon.coral.validate/",
      "r");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.aws_error_code(), "ValidationException");
  // No message in the body: the table's description stands in.
  EXPECT_FALSE(s.message().empty());
}

TEST(AwsErrors, BodyTypeWinsOverHeader) {
  Status s = aws_error_status(400, R"({"__type":"ExpiredIteratorException","message":"old"})",
                              "ValidationException", "");
  EXPECT_EQ(s.aws_error_code(), "ExpiredIteratorException");
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(s.retry(), RetryClass::kRestart);
}

TEST(AwsErrors, KinesaliteEmpty413IsRequestTooLarge) {
  Status s = aws_error_status(413, "", "", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.retry(), RetryClass::kNone);
  EXPECT_NE(s.message().find("request too large"), std::string_view::npos) << s.to_string();
  EXPECT_EQ(s.aws_error_code(), "");
  EXPECT_EQ(s.http_status(), 413);
}

TEST(AwsErrors, MotoHtml500IsUnavailableAndBodyIsNotEchoed) {
  const std::string html =
      "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>500 Internal Server "
      "Error</title>\n<h1>Internal Server Error</h1>\n<p>secret-looking-echo</p>\n";
  Status s = aws_error_status(500, html, "", "");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.retry(), RetryClass::kSameCall);
  EXPECT_EQ(s.to_string().find("secret-looking-echo"), std::string::npos);
  EXPECT_EQ(s.to_string().find("<"), std::string::npos);
}

TEST(AwsErrors, Empty500AndOther5xx) {
  for (int code : {500, 502, 503, 504}) {
    Status s = aws_error_status(code, "", "", "");
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << code;
    EXPECT_EQ(s.retry(), RetryClass::kSameCall) << code;
  }
}

TEST(AwsErrors, HttpStatusFallbacks) {
  EXPECT_EQ(aws_error_status(429, "", "", "").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(aws_error_status(429, "", "", "").retry(), RetryClass::kSameCall);
  EXPECT_EQ(aws_error_status(403, "", "", "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(aws_error_status(401, "", "", "").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(aws_error_status(404, "", "", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(aws_error_status(400, "not json", "", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(aws_error_status(400, "not json", "", "").retry(), RetryClass::kNone);
  EXPECT_EQ(aws_error_status(302, "", "", "").code(), StatusCode::kUnknown);
}

TEST(AwsErrors, UnknownCodeKeepsCodeAndFollowsHttpStatus) {
  Status s = aws_error_status(400, R"({"__type":"BrandNewException","message":"m"})", "", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.retry(), RetryClass::kNone);
  EXPECT_EQ(s.aws_error_code(), "BrandNewException");
  EXPECT_EQ(s.message(), "m");
  Status t = aws_error_status(503, R"({"__type":"BrandNewOutage"})", "", "");
  EXPECT_EQ(t.code(), StatusCode::kUnavailable);
  EXPECT_EQ(t.retry(), RetryClass::kSameCall);
  EXPECT_EQ(t.aws_error_code(), "BrandNewOutage");
}

TEST(AwsErrors, MalformedJsonFallsBackToHttpStatus) {
  Status s = aws_error_status(400, R"({"__type": "ValidationExcep)", "", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.aws_error_code(), "");
  Status t = aws_error_status(500, R"(["__type"])", "", "");
  EXPECT_EQ(t.code(), StatusCode::kUnavailable);
}

TEST(AwsErrors, CoralOutputWrapper) {
  // kinesalite with a wrong Content-Type.
  Status s = aws_error_status(
      400,
      R"({"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"})",
      "", "");
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.aws_error_code(), "UnknownOperationException");
}

TEST(AwsErrors, XmlBodies) {
  // kinesalite's XML errors: the root element is the code.
  Status a = aws_error_status(403,
                              "<AccessDeniedException>\n  <Message>Unable to determine service/"
                              "operation name to be authorized</Message>\n"
                              "</AccessDeniedException>\n",
                              "", "");
  EXPECT_EQ(a.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(a.aws_error_code(), "AccessDeniedException");
  EXPECT_NE(a.message().find("Unable to determine"), std::string_view::npos);

  Status b = aws_error_status(404, "<UnknownOperationException/>\n", "", "");
  EXPECT_EQ(b.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(b.aws_error_code(), "UnknownOperationException");

  // Query-protocol shape (STS, moto's signature checks).
  Status c = aws_error_status(
      403,
      "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type>"
      "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not "
      "match</Message></Error><RequestId>x</RequestId></ErrorResponse>",
      "", "");
  EXPECT_EQ(c.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(c.retry(), RetryClass::kNone);
  EXPECT_EQ(c.aws_error_code(), "SignatureDoesNotMatch");
}

TEST(AwsErrors, SuccessWithoutCodeIsOk) {
  EXPECT_TRUE(aws_error_status(200, R"({"StreamNames":[]})", "", "").ok());
  EXPECT_TRUE(aws_error_status(200, "", "", "").ok());
}

TEST(AwsErrors, ServerMessageIsBoundedAndHasNoControlCharacters) {
  std::string long_message(5000, 'x');
  Status s = aws_error_status(
      400, R"({"__type":"ValidationException","message":"a\nb\u0001c)" + long_message + "\"}", "",
      "");
  EXPECT_LE(s.message().size(), 1024u);
  EXPECT_EQ(s.message().find('\n'), std::string_view::npos);
  EXPECT_EQ(s.message().find('\x01'), std::string_view::npos);
}

TEST(AwsErrors, NormalizeErrorType) {
  EXPECT_EQ(normalize_aws_error_type("com.amazonaws.dynamodb.v20120810#ThrottlingException"),
            "ThrottlingException");
  EXPECT_EQ(normalize_aws_error_type("ValidationException:http://internal.amazon.com/coral/"),
            "ValidationException");
  EXPECT_EQ(normalize_aws_error_type("a#b#Code:x:y"), "Code");
  EXPECT_EQ(normalize_aws_error_type(" Code "), "Code");
  EXPECT_EQ(normalize_aws_error_type(""), "");
}

struct Expected {
  std::string_view code;
  StatusCode status;
  RetryClass retry;
};

TEST(AwsErrors, TableClassifiesEveryRequiredCode) {
  const Expected expected[] = {
      // Kinesis
      {"ProvisionedThroughputExceededException", StatusCode::kResourceExhausted,
       RetryClass::kSameCall},
      {"LimitExceededException", StatusCode::kResourceExhausted, RetryClass::kSameCall},
      {"ExpiredIteratorException", StatusCode::kAborted, RetryClass::kRestart},
      {"ExpiredNextTokenException", StatusCode::kAborted, RetryClass::kRestart},
      {"ResourceNotFoundException", StatusCode::kNotFound, RetryClass::kNone},
      {"ResourceInUseException", StatusCode::kFailedPrecondition, RetryClass::kNone},
      {"InvalidArgumentException", StatusCode::kInvalidArgument, RetryClass::kNone},
      {"AccessDeniedException", StatusCode::kPermissionDenied, RetryClass::kNone},
      {"KMSThrottlingException", StatusCode::kResourceExhausted, RetryClass::kSameCall},
      {"KMSDisabledException", StatusCode::kFailedPrecondition, RetryClass::kNone},
      {"KMSInvalidStateException", StatusCode::kFailedPrecondition, RetryClass::kNone},
      {"KMSAccessDeniedException", StatusCode::kPermissionDenied, RetryClass::kNone},
      {"KMSNotFoundException", StatusCode::kFailedPrecondition, RetryClass::kNone},
      {"KMSOptInRequired", StatusCode::kFailedPrecondition, RetryClass::kNone},
      {"InternalFailure", StatusCode::kUnavailable, RetryClass::kSameCall},
      {"ServiceUnavailable", StatusCode::kUnavailable, RetryClass::kSameCall},
      {"ValidationException", StatusCode::kInvalidArgument, RetryClass::kNone},
      // DynamoDB
      {"ConditionalCheckFailedException", StatusCode::kAborted, RetryClass::kRestart},
      {"RequestLimitExceeded", StatusCode::kResourceExhausted, RetryClass::kSameCall},
      {"ThrottlingException", StatusCode::kResourceExhausted, RetryClass::kSameCall},
      {"ItemCollectionSizeLimitExceededException", StatusCode::kResourceExhausted,
       RetryClass::kNone},
      {"TransactionConflictException", StatusCode::kAborted, RetryClass::kRestart},
      {"InternalServerError", StatusCode::kUnavailable, RetryClass::kSameCall},
      {"SerializationException", StatusCode::kInvalidArgument, RetryClass::kNone},
      // auth / common
      {"UnrecognizedClientException", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"InvalidSignatureException", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"SignatureDoesNotMatch", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"IncompleteSignature", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"MissingAuthenticationToken", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"MissingAuthenticationTokenException", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"ExpiredToken", StatusCode::kUnauthenticated, RetryClass::kSameCall},
      {"ExpiredTokenException", StatusCode::kUnauthenticated, RetryClass::kSameCall},
      {"InvalidClientTokenId", StatusCode::kUnauthenticated, RetryClass::kNone},
      {"AccessDenied", StatusCode::kPermissionDenied, RetryClass::kNone},
      {"UnknownOperationException", StatusCode::kUnimplemented, RetryClass::kNone},
      {"Throttling", StatusCode::kResourceExhausted, RetryClass::kSameCall},
      {"RequestExpired", StatusCode::kDeadlineExceeded, RetryClass::kSameCall},
      {"ServiceUnavailableException", StatusCode::kUnavailable, RetryClass::kSameCall},
  };
  for (const Expected& e : expected) {
    const detail::AwsErrorInfo* row = find_aws_error(e.code);
    ASSERT_NE(row, nullptr) << e.code;
    EXPECT_EQ(row->status_code, e.status) << e.code;
    EXPECT_EQ(row->retry, e.retry) << e.code;
    EXPECT_FALSE(row->description.empty()) << e.code;
    EXPECT_FALSE(row->services.empty()) << e.code;
    // And through the parser, as a server would send it.
    Status s = aws_error_status(400, "{\"__type\":\"x#" + std::string(e.code) + "\"}", "", "");
    EXPECT_EQ(s.code(), e.status) << e.code;
    EXPECT_EQ(s.retry(), e.retry) << e.code;
    EXPECT_EQ(s.aws_error_code(), e.code);
  }
  EXPECT_EQ(find_aws_error("NoSuchThing"), nullptr);
  EXPECT_EQ(find_aws_error(""), nullptr);
  EXPECT_EQ(find_aws_error("validationexception"), nullptr);  // codes are case-sensitive
}

TEST(AwsErrors, CodesAreUnique) {
  std::set<std::string_view> seen;
  for (const auto& row : detail::aws_error_table()) {
    EXPECT_TRUE(seen.insert(row.code).second) << row.code;
  }
}

TEST(AwsErrors, TransportFailures) {
  Status cert = transport_error_status(TransportError::kTlsCertificate, "kinesis.example:443",
                                       "SSL certificate problem: self-signed certificate");
  EXPECT_EQ(cert.code(), StatusCode::kUnavailable);
  EXPECT_EQ(cert.retry(), RetryClass::kNone);
  EXPECT_NE(cert.message().find("certificate could not be verified"), std::string_view::npos);
  EXPECT_NE(cert.message().find("kinesis.example:443"), std::string_view::npos);

  Status timeout = transport_error_status(TransportError::kTimeout, "h:1", "");
  EXPECT_EQ(timeout.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timeout.retry(), RetryClass::kSameCall);
  EXPECT_EQ(transport_error_status(TransportError::kConnectionLost, "h:1", "").retry(),
            RetryClass::kSameCall);
  EXPECT_EQ(transport_error_status(TransportError::kMalformedUrl, "", "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(transport_error_status(TransportError::kCancelled, "h:1", "").code(),
            StatusCode::kCancelled);
}

TEST(AwsErrors, MarkdownListsEveryRow) {
  const std::string md = detail::aws_errors_markdown();
  for (const auto& row : detail::aws_error_table()) {
    EXPECT_NE(md.find("| `" + std::string(row.code) + "` |"), std::string::npos) << row.code;
  }
  for (const auto& row : detail::transport_error_table()) {
    EXPECT_NE(md.find("`" + std::string(row.name) + "`"), std::string::npos) << row.name;
  }
  EXPECT_NE(md.find("| 413 | `INVALID_ARGUMENT` | none | request too large |"), std::string::npos);
  EXPECT_NE(md.find("| `ExpiredIteratorException` | Kinesis | `ABORTED` | restart |"),
            std::string::npos);
  // One line per row, plus headings, blank lines and table headers: every row is one line.
  std::size_t table_lines = 0;
  for (std::size_t pos = 0; (pos = md.find("\n| ", pos)) != std::string::npos; ++pos) ++table_lines;
  EXPECT_EQ(table_lines, detail::aws_error_table().size() + detail::http_status_table().size() +
                             detail::transport_error_table().size() + 3 /* header rows */);
}

}  // namespace
}  // namespace shardline
