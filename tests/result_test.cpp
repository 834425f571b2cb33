// result<T>: a value or an error, which throws only when asked for a value
// that is not there.
#include "batch_serving/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "batch_serving/error.hpp"

namespace batch_serving {
// Lets GoogleTest print codes by name in failure messages.
inline void PrintTo(errc code, std::ostream* os) { *os << to_string(code); }
}  // namespace batch_serving

namespace bs = batch_serving;

namespace {

bs::result<int> ok_int(int v) { return v; }
bs::result<int> failed_int() {
  return bs::error(bs::errc::execution_failed, "batch function threw: boom");
}

struct point {
  int x;
  int y;
};

}  // namespace

// ---- the ok state ------------------------------------------------------------

TEST(ResultTest, AValueIsOkAndTrue) {
  const bs::result<int> r = ok_int(7);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
}

TEST(ResultTest, ValueAndDereferenceGiveTheValue) {
  const bs::result<int> r = ok_int(7);
  EXPECT_EQ(r.value(), 7);
  EXPECT_EQ(*r, 7);
}

TEST(ResultTest, ValueOrIgnoresTheFallbackWhenOk) {
  const bs::result<int> r = ok_int(7);
  EXPECT_EQ(r.value_or(-1), 7);
}

TEST(ResultTest, ValueOnAnLvalueReturnsAReferenceThatCanBeModified) {
  bs::result<std::vector<int>> r(std::vector<int>{1, 2});
  r.value().push_back(3);
  (*r).push_back(4);
  r->push_back(5);
  EXPECT_EQ(r.value(), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(ResultTest, ArrowReachesTheValuesMembers) {
  bs::result<point> r(point{3, 4});
  EXPECT_EQ(r->x, 3);
  const bs::result<point>& cr = r;
  EXPECT_EQ(cr->y, 4);
}

TEST(ResultTest, ConstResultGivesConstAccess) {
  const bs::result<std::string> r(std::string("hello"));
  static_assert(std::is_same_v<decltype(r.value()), const std::string&>);
  static_assert(std::is_same_v<decltype(*r), const std::string&>);
  EXPECT_EQ(r.value(), "hello");
  EXPECT_EQ(*r, "hello");
}

TEST(ResultTest, IsImplicitlyConstructibleFromAValueAndFromAnError) {
  static_assert(std::is_convertible_v<int, bs::result<int>>);
  static_assert(std::is_convertible_v<bs::error, bs::result<int>>);
  static_assert(std::is_convertible_v<std::string, bs::result<std::string>>);
  static_assert(std::is_convertible_v<bs::error, bs::result<std::string>>);
}

TEST(ResultTest, OperatorBoolIsExplicit) {
  static_assert(std::is_constructible_v<bool, bs::result<int>>);
  static_assert(!std::is_convertible_v<bs::result<int>, bool>);
}

TEST(ResultTest, ValueTypeNamesTheValue) {
  static_assert(std::is_same_v<bs::result<std::string>::value_type, std::string>);
}

TEST(ResultTest, ARvalueResultMovesItsValueOut) {
  bs::result<std::vector<int>> r(std::vector<int>(1000, 1));
  static_assert(std::is_same_v<decltype(std::move(r).value()), std::vector<int>&&>);
  std::vector<int> taken = std::move(r).value();
  EXPECT_EQ(taken.size(), 1000u);
}

TEST(ResultTest, CopiesAreIndependent) {
  bs::result<std::string> a(std::string("a"));
  bs::result<std::string> b = a;
  b.value() += "b";
  EXPECT_EQ(a.value(), "a");
  EXPECT_EQ(b.value(), "ab");
}

// ---- the error state -----------------------------------------------------------

TEST(ResultTest, AnErrorIsNotOkAndFalse) {
  const bs::result<int> r = failed_int();
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_TRUE(!r);
}

TEST(ResultTest, ErrorGivesTheCodeAndMessage) {
  const bs::result<int> r = failed_int();
  EXPECT_EQ(r.error().code(), bs::errc::execution_failed);
  EXPECT_EQ(r.error().message(), "batch function threw: boom");
  EXPECT_EQ(r.error().to_string(), "execution_failed: batch function threw: boom");
}

TEST(ResultTest, ValueOrGivesTheFallbackOnError) {
  const bs::result<int> r = failed_int();
  EXPECT_EQ(r.value_or(-1), -1);
}

TEST(ResultTest, ValueOrConvertsTheFallbackToTheValueType) {
  const bs::result<std::string> r = bs::error(bs::errc::timeout, "late");
  EXPECT_EQ(r.value_or("fallback"), "fallback");
  const bs::result<double> d = bs::error(bs::errc::timeout, "late");
  EXPECT_EQ(d.value_or(2), 2.0);
}

TEST(ResultTest, ValueThrowsServingErrorCarryingTheError) {
  bs::result<int> r = failed_int();
  try {
    (void)r.value();
    FAIL() << "value() on an error result did not throw";
  } catch (const bs::serving_error& ex) {
    EXPECT_EQ(ex.code(), bs::errc::execution_failed);
    EXPECT_EQ(ex.error().message(), "batch function threw: boom");
    EXPECT_EQ(ex.error(), r.error());
    EXPECT_STREQ(ex.what(), "execution_failed: batch function threw: boom");
  }
}

TEST(ResultTest, ConstValueThrowsServingErrorCarryingTheError) {
  const bs::result<std::string> r = bs::error(bs::errc::no_serving, "no server named 'x'");
  try {
    (void)r.value();
    FAIL() << "value() on a const error result did not throw";
  } catch (const bs::serving_error& ex) {
    EXPECT_EQ(ex.error(), bs::error(bs::errc::no_serving, "no server named 'x'"));
  }
}

TEST(ResultTest, RvalueValueThrowsServingErrorCarryingTheError) {
  bs::result<std::unique_ptr<int>> r = bs::error(bs::errc::shutting_down, "bye");
  try {
    std::unique_ptr<int> p = std::move(r).value();
    FAIL() << "value() && on an error result did not throw";
  } catch (const bs::serving_error& ex) {
    EXPECT_EQ(ex.code(), bs::errc::shutting_down);
    EXPECT_EQ(ex.error().message(), "bye");
  }
}

TEST(ResultTest, ValueThrowsForEveryErrorCode) {
  for (bs::errc code :
       {bs::errc::no_serving, bs::errc::execution_failed, bs::errc::invalid_argument,
        bs::errc::shutting_down, bs::errc::overloaded, bs::errc::timeout, bs::errc::cancelled}) {
    bs::result<int> r = bs::error(code, "m");
    try {
      (void)r.value();
      ADD_FAILURE() << "no throw for " << bs::to_string(code);
    } catch (const bs::serving_error& ex) {
      EXPECT_EQ(ex.code(), code);
    }
  }
}

TEST(ResultTest, TheErrorSurvivesAThrowingValueCall) {
  bs::result<int> r = failed_int();
  EXPECT_THROW((void)r.value(), bs::serving_error);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "batch function threw: boom");
}

TEST(ResultTest, AnErrorResultCanBeCopiedAndMoved) {
  const bs::result<std::string> a = bs::error(bs::errc::overloaded, "full");
  bs::result<std::string> b = a;
  bs::result<std::string> c = std::move(b);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.error(), a.error());
}

// ---- move-only payloads --------------------------------------------------------

TEST(ResultTest, MoveOnlyPayloadsWorkWithRvalueValue) {
  bs::result<std::unique_ptr<int>> r(std::make_unique<int>(42));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, 42);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);
}

TEST(ResultTest, MoveOnlyResultsCanBeMovedButNotCopied) {
  static_assert(!std::is_copy_constructible_v<bs::result<std::unique_ptr<int>>>);
  static_assert(std::is_move_constructible_v<bs::result<std::unique_ptr<int>>>);
  bs::result<std::unique_ptr<int>> a(std::make_unique<int>(5));
  bs::result<std::unique_ptr<int>> b = std::move(a);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b.value(), 5);
}

TEST(ResultTest, MoveOnlyPayloadsCanBeReadThroughAnLvalueWithoutTakingThem) {
  bs::result<std::unique_ptr<int>> r(std::make_unique<int>(9));
  EXPECT_EQ(*r.value(), 9);
  EXPECT_EQ(*r.value(), 9);  // still there: lvalue value() does not move
  EXPECT_EQ(**r, 9);
}

TEST(ResultTest, AVectorOfMoveOnlyPayloadsCanBeTakenWhole) {
  std::vector<std::unique_ptr<int>> v;
  v.push_back(std::make_unique<int>(1));
  v.push_back(std::make_unique<int>(2));
  bs::result<std::vector<std::unique_ptr<int>>> r(std::move(v));
  auto taken = std::move(r).value();
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(*taken[0], 1);
  EXPECT_EQ(*taken[1], 2);
}
