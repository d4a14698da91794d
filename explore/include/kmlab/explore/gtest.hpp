// GoogleTest's face of the explorer: assertions on an explore::Result that
// print, on failure, the violation, the command that replays it (with this
// test's --gtest_filter) and the trace of its end. Header-only: kmlab::explore
// itself does not depend on GoogleTest.
//
//   const auto r = kmlab::explore::run(kmlab::explore::config_from_environment(), body);
//   KMLAB_EXPECT_CLEAN(r);   // or KMLAB_ASSERT_CLEAN(r)
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <kmlab/explore.hpp>

namespace kmlab::explore {

// "Suite.Name" of the running test, or empty outside one.
inline std::string gtest_test_name() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    if (info == nullptr) return {};
    return std::string(info->test_suite_name()) + "." + info->name();
}

// On a failure: the summary's first line, then Result::describe() with
// this test's name in the replay command.
inline std::string describe_in_gtest(const Result& r) {
    const std::string summary = r.summary();
    return summary.substr(0, summary.find('\n')) + "\n" + r.describe(gtest_test_name());
}

}  // namespace kmlab::explore

#define KMLAB_EXPECT_CLEAN(result) \
    EXPECT_FALSE((result).violation) << ::kmlab::explore::describe_in_gtest(result)
#define KMLAB_ASSERT_CLEAN(result) \
    ASSERT_FALSE((result).violation) << ::kmlab::explore::describe_in_gtest(result)
