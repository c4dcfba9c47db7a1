// The strict JSON reader behind safetensors headers.
#include "safetensors/json.h"

#include <gtest/gtest.h>

#include "septa/error.h"

namespace septa::safetensors::json {
namespace {

TEST(Json, ParsesNestedValues) {
  const Value v = parse(R"( {"a": [1, 0, -3, 2.5e3, true, false, null], "b": {"c": "x\"\\\/\n\u00e9\ud83d\ude00"}} )", "t");
  ASSERT_EQ(v.kind, Value::Kind::kObject);
  const Value* a = v.find("a");
  ASSERT_TRUE(a && a->items.size() == 7);
  EXPECT_TRUE(a->items[0].is_uint);
  EXPECT_EQ(a->items[0].uint, 1u);
  EXPECT_TRUE(a->items[1].is_uint);
  EXPECT_FALSE(a->items[2].is_uint);
  EXPECT_FALSE(a->items[3].is_uint);
  EXPECT_EQ(a->items[3].text, "2.5e3");
  EXPECT_TRUE(a->items[4].boolean);
  EXPECT_EQ(a->items[6].kind, Value::Kind::kNull);
  EXPECT_EQ(v.find("b")->find("c")->text, "x\"\\/\n\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(parse("18446744073709551615", "t").uint, 18446744073709551615ull);
  EXPECT_FALSE(parse("18446744073709551616", "t").is_uint);  // overflow: a number, not a uint
}

TEST(Json, QuoteRoundTrips) {
  const std::string text = "a\"b\\c\n\x01\xC3\xA9";
  EXPECT_EQ(parse(quote(text), "t").text, text);
}

void expect_error(const std::string& doc, const std::string& what) {
  try {
    parse(doc, "h.safetensors");
    FAIL() << "accepted: " << doc;
  } catch (const ModelError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("h.safetensors: header byte "), std::string::npos) << message;
    EXPECT_NE(message.find(what), std::string::npos) << doc << " -> " << message;
  }
}

TEST(Json, RejectsMalformedDocuments) {
  expect_error("", "unexpected end");
  expect_error("{", "expected a string key");
  expect_error("{\"a\":1,}", "expected a string key");
  expect_error("{\"a\":1} x", "after the JSON value");
  expect_error("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
  expect_error("[01]", "leading zero");
  expect_error("[1.]", "no digit after");
  expect_error("[1e]", "exponent");
  expect_error("[NaN]", "unexpected character");
  expect_error("[tru]", "invalid literal");
  expect_error("\"a\tb\"", "control character");
  expect_error("\"\\x\"", "invalid escape");
  expect_error("\"\\ud800\"", "surrogate");
  expect_error("\"\\udc00\"", "surrogate");
  expect_error("\"\xC0\x80\"", "UTF-8");        // overlong
  expect_error("\"\xED\xA0\x80\"", "UTF-8");    // encoded surrogate
  expect_error("\"\xE2\x82\"", "UTF-8");        // truncated sequence
  expect_error("\"abc", "unterminated");
  expect_error(std::string(100, '[') + std::string(100, ']'), "nesting deeper");
}

}  // namespace
}  // namespace septa::safetensors::json
