#include "model/kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace gradfit::model::kernels {
namespace {

std::vector<const Table*> tables() {
  const Table* found[kMaxTables];
  const int count = runnable_tables(found);
  return {found, found + count};
}

// Pre-activations over the whole range, with the awkward points: 0, ±tiny, the softplus threshold 20, tanh's
// switch at ±0.625, beyond exp's range, ±∞ and NaN.
std::vector<float> sample_z() {
  std::vector<float> z;
  for (int i = 0; i <= 4000; ++i) z.push_back(-100.0f + 0.05f * static_cast<float>(i));
  for (const float v : {0.0f, -0.0f, 1e-7f, -1e-7f, 1e-30f, 0.625f, -0.625f, 0.6249999f, 19.999998f, 20.0f, 20.000002f,
                        -20.0f, -87.0f, -88.0f, -103.0f, -1e6f, 1e6f}) {
    z.push_back(v);
  }
  return z;
}

struct Expected {
  torch::Tensor h, s1, s2;  // float64
};

// LibTorch's own functions in float64: the values the float32 kernels approximate.
Expected reference(Activation activation, const torch::Tensor& z) {
  switch (activation) {
    case Activation::relu: return {torch::relu(z), (z > 0).to(torch::kFloat64), torch::zeros_like(z)};
    case Activation::softplus: {
      const auto s = torch::sigmoid(z);
      return {torch::softplus(z, 1, 20), s, s * (1 - s)};
    }
    case Activation::silu: {
      const auto s = torch::sigmoid(z), t = s * (1 - s);
      return {z * s, s + z * t, t * (2 + z * (1 - 2 * s))};
    }
    case Activation::tanh: {  // 1 − t² as 1/cosh²: exact in float64 also where t rounds to ±1
      const auto t = torch::tanh(z), d = 1 / torch::cosh(z).pow(2);
      return {t, d, -2 * t * d};
    }
  }
  return {};
}

const char* name_of(Activation activation) {
  switch (activation) {
    case Activation::relu: return "relu";
    case Activation::tanh: return "tanh";
    case Activation::softplus: return "softplus";
    case Activation::silu: return "silu";
  }
  return "?";
}

// The worst of |a − b| / max(|b|, floor) and where it is (its index).
std::pair<double, int64_t> worst_error_at(const torch::Tensor& got, const torch::Tensor& want, double floor) {
  const auto finite = torch::isfinite(want);
  const auto scale = torch::clamp_min(want.abs(), floor);
  const auto error = ((got.to(torch::kFloat64) - want).abs() / scale).masked_fill(~finite, 0);
  const auto at = error.argmax().item<int64_t>();
  return {error[at].item<double>(), at};
}

// Each activation kernel, every compiled instruction set, against LibTorch in float64: within 4 float32 ulps,
// NaN where z is NaN, the limits at ±∞.
TEST(Kernels, ActivationsMatchLibTorchInFloat64) {
  const auto zs = sample_z();
  const auto z32 = torch::tensor(zs);
  const auto z64 = z32.to(torch::kFloat64);
  const double ulp = std::numeric_limits<float>::epsilon();
  for (const Table* table : tables()) {
    for (const auto activation : {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu}) {
      auto h = z32.clone(), s1 = torch::empty_like(z32), s2 = torch::zeros_like(z32);
      table->activate(activation, h.data_ptr<float>(), s1.data_ptr<float>(), s2.data_ptr<float>(), h.numel());
      const auto want = reference(activation, z64);
      const bool has_s2 = activation == Activation::tanh || activation == Activation::silu;
      // Errors against max(|value|, floor) (values under 1e-20 may underflow to 0): σ' of SiLU and σ'' of SiLU and tanh
      // cross zero, and their error is measured against the scale of their terms there.
      const double floor_s1 = activation == Activation::silu ? 0.1 : 1e-20;
      const auto [eh, at_h] = worst_error_at(h, want.h, 1e-20);
      const auto [es1, at_s1] = worst_error_at(s1, want.s1, floor_s1);
      const auto [es2, at_s2] = has_s2 ? worst_error_at(s2, want.s2, 0.1) : std::pair<double, int64_t>{0, 0};
      std::printf("[ %s %s ] worst error in float32 ulps: sigma %.2f (z=%g), sigma' %.2f (z=%g)", table->name,
                  name_of(activation), eh / ulp, zs[at_h], es1 / ulp, zs[at_s1]);
      if (has_s2) std::printf(", sigma'' %.2f (z=%g)", es2 / ulp, zs[at_s2]);
      std::printf("\n");
      EXPECT_LE(eh, 4 * ulp) << table->name << " " << name_of(activation);
      EXPECT_LE(es1, 4 * ulp) << table->name << " " << name_of(activation);
      EXPECT_LE(es2, 4 * ulp) << table->name << " " << name_of(activation);
      if (activation == Activation::relu) {
        EXPECT_TRUE(torch::equal(h, torch::relu(z32))) << table->name;
        EXPECT_TRUE(torch::equal(s1, (z32 > 0).to(torch::kFloat32))) << table->name;
      }
    }

    // Special values: NaN propagates into σ (and σ' but for ReLU); ±∞ give the limits.
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (const auto activation : {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu}) {
      float h[3] = {nan, inf, -inf}, s1[3], s2[3];
      table->activate(activation, h, s1, s2, 3);
      EXPECT_TRUE(std::isnan(h[0])) << table->name << " " << name_of(activation);
      if (activation != Activation::relu) {
        EXPECT_TRUE(std::isnan(s1[0])) << table->name << " " << name_of(activation);
      }
      if (activation == Activation::tanh) {
        EXPECT_EQ(h[1], 1.0f);
        EXPECT_EQ(h[2], -1.0f);
        EXPECT_EQ(s1[1], 0.0f);
      } else if (activation == Activation::softplus) {
        EXPECT_EQ(h[1], inf);
        EXPECT_LT(h[2], 1e-30f);
        EXPECT_EQ(s1[1], 1.0f);
        EXPECT_LT(s1[2], 1e-30f);
      } else if (activation == Activation::relu) {
        EXPECT_EQ(h[1], inf);
        EXPECT_EQ(h[2], 0.0f);
      }
    }
  }
}

// Every element goes through the same arithmetic wherever it lies: an array computed whole, one element at a time
// (the padded partial block) and in uneven pieces gives the same bits. The analytic engine relies on it for runs
// of an ensemble to equal the runs alone, and for results not to depend on how threads split the work.
TEST(Kernels, AnElementsResultDoesNotDependOnItsPlace) {
  auto z = torch::randn({1003}, torch::kFloat32) * 6;
  for (const Table* table : tables()) {
    for (const auto activation : {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu}) {
      auto whole_h = z.clone(), whole_s1 = torch::zeros_like(z), whole_s2 = torch::zeros_like(z);
      table->activate(activation, whole_h.data_ptr<float>(), whole_s1.data_ptr<float>(), whole_s2.data_ptr<float>(),
                      z.numel());
      auto h = z.clone(), s1 = torch::zeros_like(z), s2 = torch::zeros_like(z);
      int64_t first = 0, piece = 1;
      while (first < z.numel()) {  // pieces of 1, 2, 3, ... elements
        const int64_t n = std::min(piece++, z.numel() - first);
        table->activate(activation, h.data_ptr<float>() + first, s1.data_ptr<float>() + first,
                        s2.data_ptr<float>() + first, n);
        first += n;
      }
      EXPECT_TRUE(torch::equal(h, whole_h)) << table->name << " " << name_of(activation);
      EXPECT_TRUE(torch::equal(s1, whole_s1)) << table->name << " " << name_of(activation);
      EXPECT_TRUE(torch::equal(s2, whole_s2)) << table->name << " " << name_of(activation);
    }
  }
}

// z̄ = d̄ ⊙ σ'' ⊙ a + h̄ ⊙ σ' against the same formula in LibTorch, for float32 and float64, σ'' stored or computed
// from the sigmoid, with and without h̄, a per row or one row for all.
auto z_bar_of(const Table& table, float) {
  return table.z_bar_f32;
}
auto z_bar_of(const Table& table, double) {
  return table.z_bar_f64;
}

template <typename T>
void check_z_bar(const Table& table, torch::ScalarType dtype, double tolerance) {
  const int64_t rows = 13, cols = 37;
  torch::manual_seed(5);
  const auto opts = torch::TensorOptions().dtype(dtype);
  const auto d_bar = torch::randn({rows, cols}, opts), s1 = torch::rand({rows, cols}, opts);
  const auto s2 = torch::randn({rows, cols}, opts), h_bar = torch::randn({rows, cols}, opts);
  const auto a_full = torch::randn({rows, cols}, opts), a_row = torch::randn({1, cols}, opts);
  for (const bool stored : {true, false}) {
    for (const bool with_h_bar : {true, false}) {
      for (const bool broadcast : {false, true}) {
        const auto& a = broadcast ? a_row : a_full;
        const auto curvature = stored ? s2 : s1 - s1 * s1;
        auto want = d_bar * curvature * a;
        if (with_h_bar) want = want + h_bar * s1;
        auto out = torch::empty({rows, cols}, opts);
        const auto z_bar = z_bar_of(table, T{});
        z_bar(d_bar.data_ptr<T>(), a.data_ptr<T>(), broadcast ? 0 : cols, s1.data_ptr<T>(),
              stored ? s2.data_ptr<T>() : nullptr, with_h_bar ? h_bar.data_ptr<T>() : nullptr, out.data_ptr<T>(), rows,
              cols);
        const double error = ((out - want).abs().max() / want.abs().max()).item<double>();
        EXPECT_LT(error, tolerance) << table.name << " stored=" << stored << " h_bar=" << with_h_bar
                                    << " broadcast=" << broadcast;
      }
    }
  }
}

TEST(Kernels, ZBarMatchesLibTorch) {
  for (const Table* table : tables()) {
    check_z_bar<float>(*table, torch::kFloat32, 1e-6);
    check_z_bar<double>(*table, torch::kFloat64, 1e-15);
  }
}

TEST(Kernels, DispatchPicksARunnableInstructionSet) {
  const auto runnable = tables();
  ASSERT_GE(runnable.size(), 1u);
  const char* forced = std::getenv("GRADFIT_CPU_KERNELS");
  if (forced && std::string(forced) == "baseline")
    EXPECT_STREQ(instruction_set(), "baseline");  // the tests' second CPU level
  else
    EXPECT_STREQ(runnable.back()->name, instruction_set());  // the best one compiled that the CPU runs
  std::printf("kernels: %s\n", instruction_set());
}

}  // namespace
}  // namespace gradfit::model::kernels
