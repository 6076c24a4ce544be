#include "config/config.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::config {
namespace {

constexpr const char* kMinimal = "data:\n  target: quadratic\n  P: [[1, 0], [0, 2]]\n";

TEST(Config, SeedExperimentIsTheUsersSetup) {
  const Config c = load_config(std::string(GRADFIT_SOURCE_DIR) + "/experiments/seed_quadratic.yaml");
  const RunSpec& r = c.run;
  EXPECT_EQ(r.name, "seed_quadratic");
  EXPECT_EQ(r.data.target, Target::quadratic);
  EXPECT_EQ(r.data.sampling, Sampling::grid);
  EXPECT_EQ(r.data.points_per_axis, 10);
  EXPECT_EQ(r.data.dim, 2);
  EXPECT_EQ(r.data.P, (std::vector<double>{20.1892, -26.6218, -26.6218, 38.0375}));
  EXPECT_EQ(r.model.widths, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(r.model.activation, Activation::relu);
  EXPECT_EQ(r.train.optimizer, Optimizer::adam);
  EXPECT_DOUBLE_EQ(r.train.lr, 0.1);
  EXPECT_EQ(r.train.epochs, 999);
  EXPECT_EQ(r.train.batch_size, 0);
}

TEST(Config, DefaultsFillMissingSections) {
  const Config c = parse_config(kMinimal, "dir/run.yaml");
  EXPECT_EQ(c.run.name, "run");  // the file's stem
  EXPECT_EQ(c.run.model.widths, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(c.run.model.dtype, DType::float32);
  EXPECT_EQ(c.run.train.epochs, 1000);
  EXPECT_EQ(c.run.train.log_every, 100);
  EXPECT_EQ(c.yaml_text, kMinimal);
}

TEST(Config, TypoSuggestsTheNearestKeyWithLineAndColumn) {
  const std::string yaml = std::string(kMinimal) + "train:\n  lr: 0.1\n  epocs: 5\n";
  EXPECT_THROW_MATCHING(parse_config(yaml, "sweep.yaml"), ConfigError,
                        R"(^sweep\.yaml:6:3: key 'train\.epocs': unknown key; did you mean 'train\.epochs'\?$)");
}

TEST(Config, UnknownKeyFarFromAnyListsValidKeys) {
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kMinimal) + "zzzzzzzz: 1\n", "s.yaml"), ConfigError,
      R"(s\.yaml:4:1: key 'zzzzzzzz': unknown key \(valid keys here: name, device, data, model, train\))");
}

TEST(Config, WrongTypeNamesKeyAndValue) {
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "train:\n  lr: fast\n", "s.yaml"), ConfigError,
                        R"(s\.yaml:5:7: key 'train\.lr': expected a number, got 'fast')");
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "model:\n  widths: 10\n", "s.yaml"), ConfigError,
                        R"(key 'model\.widths': expected a list of integers, got '10')");
}

TEST(Config, BadEnumListsChoices) {
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "model:\n  activation: sigmoid\n", "s.yaml"), ConfigError,
                        R"(key 'model\.activation': 'sigmoid' is not one of relu, tanh, softplus, silu, gelu)");
}

TEST(Config, OutOfRangeValues) {
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "train:\n  lr: -1\n", "s.yaml"), ConfigError,
                        R"(key 'train\.lr': must be > 0 \(got -1\))");
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "train:\n  epochs: 0\n", "s.yaml"), ConfigError,
                        R"(key 'train\.epochs': must be >= 1)");
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "model:\n  widths: [4, 0]\n", "s.yaml"), ConfigError,
                        R"(key 'model\.widths': every width must be >= 1 \(got 0\))");
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "train:\n  momentum: 0.9\n", "s.yaml"), ConfigError,
                        R"(key 'train\.momentum': applies to optimizer sgd only)");
}

TEST(Config, QuadraticNeedsASquareP) {
  EXPECT_THROW_MATCHING(parse_config("data:\n  target: quadratic\n  P: [[1, 2], [3]]\n", "s.yaml"), ConfigError,
                        R"(key 'data\.P': must be a square matrix)");
  EXPECT_THROW_MATCHING(parse_config("data:\n  target: quadratic\n", "s.yaml"), ConfigError,
                        R"(s\.yaml:2:3: key 'data\.P': missing required key)");
}

TEST(Config, MissingDataSectionAndEmptyFile) {
  EXPECT_THROW_MATCHING(parse_config("model:\n  widths: [3]\n", "s.yaml"), ConfigError,
                        R"(key 'data': missing required section)");
  EXPECT_THROW_MATCHING(parse_config("", "s.yaml"), ConfigError, R"(s\.yaml: the file is empty)");
  EXPECT_THROW_MATCHING(parse_config("data: [1, 2\n", "s.yaml"), ConfigError, R"(s\.yaml:\d+:\d+: invalid YAML)");
  EXPECT_THROW_MATCHING(load_config("/nonexistent/s.yaml"), ConfigError, R"(/nonexistent/s\.yaml: cannot open)");
}

TEST(Config, RelativeDataPathIsResolvedAgainstTheYamlFolder) {
  const Config c = parse_config("data:\n  target: file\n  path: data/grads.h5\n", "/home/u/exp/sweep.yaml");
  EXPECT_EQ(c.run.data.path, "/home/u/exp/data/grads.h5");
  const Config a = parse_config("data:\n  target: file\n  path: /abs/g.h5\n", "/home/u/exp/sweep.yaml");
  EXPECT_EQ(a.run.data.path, "/abs/g.h5");
}

}  // namespace
}  // namespace gradfit::config
