// Error codes, the error value, and the serving_error exception.
#include "batch_serving/error.hpp"

#include <gtest/gtest.h>

#include <exception>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace batch_serving {
// Lets GoogleTest print codes by name in failure messages.
inline void PrintTo(errc code, std::ostream* os) { *os << to_string(code); }
}  // namespace batch_serving

namespace bs = batch_serving;

namespace {

// Every code the library defines, with the name to_string must give it.
const std::vector<std::pair<bs::errc, std::string_view>>& all_codes() {
  static const std::vector<std::pair<bs::errc, std::string_view>> codes = {
      {bs::errc::no_serving, "no_serving"},
      {bs::errc::execution_failed, "execution_failed"},
      {bs::errc::invalid_argument, "invalid_argument"},
      {bs::errc::shutting_down, "shutting_down"},
      {bs::errc::overloaded, "overloaded"},
      {bs::errc::timeout, "timeout"},
      {bs::errc::cancelled, "cancelled"},
      {bs::errc::unavailable, "unavailable"},
  };
  return codes;
}

}  // namespace

// ---- errc ------------------------------------------------------------------

TEST(ErrorCodeTest, ToStringNamesEveryCodeAsWrittenInTheEnum) {
  for (const auto& [code, name] : all_codes()) {
    EXPECT_EQ(bs::to_string(code), name) << "errc value " << static_cast<int>(code);
  }
}

TEST(ErrorCodeTest, ToStringIsFoundByArgumentDependentLookup) {
  EXPECT_EQ(to_string(bs::errc::execution_failed), "execution_failed");
}

TEST(ErrorCodeTest, ToStringGivesDistinctNamesToDistinctCodes) {
  const auto& codes = all_codes();
  for (std::size_t i = 0; i < codes.size(); ++i) {
    for (std::size_t j = i + 1; j < codes.size(); ++j) {
      EXPECT_NE(bs::to_string(codes[i].first), bs::to_string(codes[j].first));
    }
  }
}

TEST(ErrorCodeTest, ToStringOfAValueOutsideTheEnumIsUnknownRatherThanUndefined) {
  EXPECT_EQ(bs::to_string(static_cast<bs::errc>(0)), "unknown");
  EXPECT_EQ(bs::to_string(static_cast<bs::errc>(999)), "unknown");
}

TEST(ErrorCodeTest, NoServingIsTheFirstCodeAndIsNonZero) {
  // Codes start at 1 so that a zero-initialised errc is never a valid answer.
  EXPECT_EQ(static_cast<int>(bs::errc::no_serving), 1);
}

// ---- error -------------------------------------------------------------------

TEST(ErrorTest, KeepsItsCodeAndMessage) {
  const bs::error e(bs::errc::shutting_down, "server 'x' is shutting down");
  EXPECT_EQ(e.code(), bs::errc::shutting_down);
  EXPECT_EQ(e.message(), "server 'x' is shutting down");
}

TEST(ErrorTest, ToStringIsCodeColonSpaceMessage) {
  const bs::error e(bs::errc::execution_failed, "batch function threw: boom");
  EXPECT_EQ(e.to_string(), "execution_failed: batch function threw: boom");
}

TEST(ErrorTest, ToStringUsesTheCodeNameForEveryCode) {
  for (const auto& [code, name] : all_codes()) {
    const bs::error e(code, "msg");
    EXPECT_EQ(e.to_string(), std::string(name) + ": msg");
  }
}

TEST(ErrorTest, ToStringWithAnEmptyMessageStillHasTheSeparator) {
  const bs::error e(bs::errc::timeout, "");
  EXPECT_EQ(e.to_string(), "timeout: ");
}

TEST(ErrorTest, ToStringKeepsAMessageWithEmbeddedColonsAndNewlinesVerbatim) {
  const bs::error e(bs::errc::invalid_argument, "a: b\nc");
  EXPECT_EQ(e.to_string(), "invalid_argument: a: b\nc");
}

TEST(ErrorTest, ErrorsWithTheSameCodeAndMessageAreEqual) {
  EXPECT_EQ(bs::error(bs::errc::overloaded, "full"), bs::error(bs::errc::overloaded, "full"));
}

TEST(ErrorTest, ErrorsDifferingInCodeOrMessageAreNotEqual) {
  EXPECT_NE(bs::error(bs::errc::overloaded, "full"), bs::error(bs::errc::timeout, "full"));
  EXPECT_NE(bs::error(bs::errc::overloaded, "full"), bs::error(bs::errc::overloaded, "Full"));
}

TEST(ErrorTest, IsACopyableAndMovableValue) {
  static_assert(std::is_copy_constructible_v<bs::error>);
  static_assert(std::is_nothrow_move_constructible_v<bs::error>);
  const bs::error original(bs::errc::cancelled, "caller gave up");
  bs::error copy = original;
  EXPECT_EQ(copy, original);
  bs::error moved = std::move(copy);
  EXPECT_EQ(moved, original);
}

// ---- serving_error ---------------------------------------------------------

TEST(ServingErrorTest, WhatIsTheErrorsToString) {
  const bs::serving_error ex(bs::errc::invalid_argument,
                             "server_options.batch_size must be at least 1");
  EXPECT_STREQ(ex.what(), "invalid_argument: server_options.batch_size must be at least 1");
}

TEST(ServingErrorTest, CodeAndErrorCarryTheConstructorsArguments) {
  const bs::serving_error ex(bs::errc::no_serving, "no server named 'x' is running");
  EXPECT_EQ(ex.code(), bs::errc::no_serving);
  EXPECT_EQ(ex.error().code(), bs::errc::no_serving);
  EXPECT_EQ(ex.error().message(), "no server named 'x' is running");
}

TEST(ServingErrorTest, ConstructedFromAnErrorKeepsThatError) {
  const bs::error e(bs::errc::execution_failed, "batch function threw: boom");
  const bs::serving_error ex(e);
  EXPECT_EQ(ex.error(), e);
  EXPECT_EQ(ex.code(), bs::errc::execution_failed);
  EXPECT_EQ(std::string(ex.what()), e.to_string());
}

TEST(ServingErrorTest, IsCatchableAsRuntimeErrorAndAsStdException) {
  static_assert(std::is_base_of_v<std::runtime_error, bs::serving_error>);
  try {
    throw bs::serving_error(bs::errc::shutting_down, "bye");
  } catch (const std::exception& ex) {
    EXPECT_STREQ(ex.what(), "shutting_down: bye");
    const auto* typed = dynamic_cast<const bs::serving_error*>(&ex);
    ASSERT_NE(typed, nullptr);
    EXPECT_EQ(typed->code(), bs::errc::shutting_down);
    return;
  }
  ADD_FAILURE() << "serving_error was not caught as std::exception";
}

TEST(ServingErrorTest, CopiesKeepCodeMessageAndWhat) {
  const bs::serving_error original(bs::errc::overloaded, "queue full");
  const bs::serving_error copy = original;  // NOLINT: testing the copy
  EXPECT_EQ(copy.error(), original.error());
  EXPECT_STREQ(copy.what(), original.what());
}
