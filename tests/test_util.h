#pragma once
// Small helpers shared by the tests.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>

namespace gradfit::testing {

// A fresh, empty directory for one test, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("gradfit_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Expects `statement` to throw `Exception` whose message contains a match of the regular expression `pattern`.
#define EXPECT_THROW_MATCHING(statement, Exception, pattern)                                           \
  do {                                                                                                 \
    try {                                                                                              \
      statement;                                                                                       \
      ADD_FAILURE() << "expected " #Exception " matching \"" << (pattern) << "\"; nothing was thrown"; \
    } catch (const Exception& e) {                                                                     \
      EXPECT_TRUE(std::regex_search(std::string(e.what()), std::regex(pattern)))                       \
          << "message \"" << e.what() << "\" does not match \"" << (pattern) << "\"";                  \
    }                                                                                                  \
  } while (0)

}  // namespace gradfit::testing
