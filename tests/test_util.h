#pragma once
// Small helpers shared by the tests.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "config/config.h"

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

// |a - b| / |b|, with b = 0 taken as tiny.
inline double relative_difference(double a, double b) {
  return std::abs(a - b) / std::max(std::abs(b), 1e-300);
}

// Central differences (step h) of loss() with respect to every element of `params`, in order, perturbing the
// weights in place outside autograd.
inline std::vector<double> central_differences(const std::vector<torch::Tensor>& params,
                                               const std::function<double()>& loss, double h = 1e-6) {
  std::vector<double> numeric;
  for (const auto& param : params) {
    auto flat = param.data().view(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double saved = flat[i].item<double>();
      flat[i] = saved + h;
      const double up = loss();
      flat[i] = saved - h;
      const double down = loss();
      flat[i] = saved;
      numeric.push_back((up - down) / (2 * h));
    }
  }
  return numeric;
}

// A float64 run on a nonlinear 3-D target (gaussian wells) with a smooth 3-16-16-1 net, 20 epochs: every weight
// has a real gradient, so no rounding noise sits where Adam, which normalises each gradient, would blow it up.
inline config::RunSpec float64_wells_run(int64_t samples, int64_t batch_size) {
  config::RunSpec run;
  run.data.target = config::Target::gaussian_wells;
  run.data.dim = 3;
  run.data.sampling = config::Sampling::uniform;
  run.data.samples = samples;
  run.data.well_width = 2.0;
  run.data.seed = 4;
  run.model.widths = {16, 16};
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.lr = 3e-3;
  run.train.epochs = 20;
  run.train.batch_size = batch_size;
  run.train.seed = 5;
  return run;
}

}  // namespace gradfit::testing
