#include "model/mlp.h"

#include <gtest/gtest.h>

namespace gradfit::model {
namespace {

// parameter_count, from the widths alone, against the numel of the parameters of the model make_mlp builds.
TEST(Mlp, ParameterCountMatchesTheModelsParameters) {
  const std::vector<std::pair<std::vector<int64_t>, int64_t>> cases{{{}, 1},  {{10, 10}, 2},     {{32, 32}, 2},
                                                                    {{7}, 5}, {{64, 64, 64}, 8}, {{3, 1, 4}, 1}};
  for (const auto& [widths, input_dim] : cases) {
    config::ModelSpec spec;
    spec.widths = widths;
    int64_t numel = 0;
    for (const auto& p : make_mlp(spec, input_dim, /*seed=*/1)->parameters()) numel += p.numel();
    EXPECT_EQ(parameter_count(spec, input_dim), numel) << architecture(spec, input_dim);
  }
  config::ModelSpec spec;
  spec.widths = {10, 10};
  EXPECT_EQ(parameter_count(spec, 2), 2 * 10 + 10 + 10 * 10 + 10 + 10 + 1);  // 151
}

}  // namespace
}  // namespace gradfit::model
