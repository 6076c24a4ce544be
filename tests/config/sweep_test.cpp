#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "config/config.h"
#include "test_util.h"

namespace gradfit::config {
namespace {

constexpr const char* kBase =
    "name: demo\n"
    "data: {target: quadratic, P: [[1, 0], [0, 1]]}\n"
    "model: {widths: [8], activation: relu}\n"
    "optimizer: {lr: 0.1}\n"
    "train: {epochs: 10, seed: 5}\n";

std::vector<std::string> names(const Config& c) {
  std::vector<std::string> out;
  for (const auto& r : c.runs) out.push_back(r.name);
  return out;
}

TEST(Sweep, GridIsTheCartesianProductLastKeyFastest) {
  const Config c = parse_config(std::string(kBase) +
                                    "sweep:\n"
                                    "  grid:\n"
                                    "    model.activation: [relu, softplus]\n"
                                    "    model.widths: [[10, 10], [64]]\n"
                                    "    optimizer.lr: [0.1, 0.01, 0.001]\n",
                                "s.yaml");
  ASSERT_EQ(c.runs.size(), 12u);
  EXPECT_TRUE(c.is_sweep);
  EXPECT_EQ(c.runs[0].name, "activation=relu,widths=10x10,lr=0.1");
  EXPECT_EQ(c.runs[1].name, "activation=relu,widths=10x10,lr=0.01");
  EXPECT_EQ(c.runs[3].name, "activation=relu,widths=64,lr=0.1");
  EXPECT_EQ(c.runs[11].name, "activation=softplus,widths=64,lr=0.001");
  EXPECT_EQ(c.runs[11].model.activation, Activation::softplus);
  EXPECT_EQ(c.runs[11].model.widths, (std::vector<int64_t>{64}));
  EXPECT_DOUBLE_EQ(c.runs[11].optimizer.lr, 0.001);
  EXPECT_EQ(c.runs[11].train.epochs, 10);  // the base fills in the rest
  ASSERT_EQ(c.runs[4].params.size(), 3u);
  EXPECT_EQ(c.runs[4].params[2], (std::pair<std::string, std::string>{"optimizer.lr", "0.01"}));
}

TEST(Sweep, ZipPairsAndRepeatsVaryTheSeed) {
  const Config c = parse_config(std::string(kBase) +
                                    "sweep:\n"
                                    "  grid: {model.activation: [tanh, gelu]}\n"
                                    "  zip: {optimizer.lr: [0.1, 0.01], train.epochs: [5, 50]}\n"
                                    "  repeats: 3\n",
                                "s.yaml");
  ASSERT_EQ(c.runs.size(), 2u * 2u * 3u);
  EXPECT_EQ(c.runs[0].name, "activation=tanh,lr=0.1,epochs=5,repeat=0");
  EXPECT_EQ(c.runs[4].name, "activation=tanh,lr=0.01,epochs=50,repeat=1");
  EXPECT_EQ(c.runs[4].train.epochs, 50);
  EXPECT_EQ(c.runs[3].train.seed, 5u);  // base seed + repeat
  EXPECT_EQ(c.runs[4].train.seed, 6u);
  EXPECT_EQ(c.runs[5].train.seed, 7u);
}

TEST(Sweep, RandomDrawsAreReproducibleAndInRange) {
  const std::string yaml = std::string(kBase) +
                           "sweep:\n"
                           "  random:\n"
                           "    optimizer.lr: {loguniform: [1e-4, 1e-1]}\n"
                           "    train.batch_size: {int: [4, 16]}\n"
                           "    model.activation: {choice: [relu, tanh, softplus]}\n"
                           "    optimizer.momentum: {uniform: [0, 0]}\n"
                           "  samples: 40\n"
                           "  seed: 3\n";
  EXPECT_THROW_MATCHING(parse_config(yaml, "s.yaml"), ConfigError,
                        R"(key 'sweep\.random\.optimizer\.momentum': uniform needs low < high)");
  std::string ok = yaml;
  ok.replace(ok.find("    optimizer.momentum: {uniform: [0, 0]}\n"), 42, "    data.low: {uniform: [-4, -3]}\n");
  const Config a = parse_config(ok, "s.yaml");
  const Config b = parse_config(ok, "s.yaml");
  ASSERT_EQ(a.runs.size(), 40u);
  std::set<Activation> activations;
  for (size_t i = 0; i < a.runs.size(); ++i) {
    const auto& r = a.runs[i];
    EXPECT_EQ(r.id, b.runs[i].id);
    EXPECT_GE(r.optimizer.lr, 1e-4);
    EXPECT_LE(r.optimizer.lr, 1e-1);
    EXPECT_GE(r.train.batch_size, 4);
    EXPECT_LE(r.train.batch_size, 16);
    EXPECT_GE(r.data.low, -4.0);
    EXPECT_LT(r.data.low, -3.0);
    activations.insert(r.model.activation);
  }
  EXPECT_EQ(activations.size(), 3u);
  ok.replace(ok.find("seed: 3"), 7, "seed: 4");
  EXPECT_NE(parse_config(ok, "s.yaml").runs[0].id, a.runs[0].id);
}

TEST(Sweep, IdsAreStableAcrossReexpansionAndUnique) {
  const std::string yaml = std::string(kBase) + "sweep:\n  grid: {optimizer.lr: [0.1, 0.2, 0.3]}\n  repeats: 2\n";
  const Config a = parse_config(yaml, "s.yaml");
  std::set<std::string> ids;
  for (const auto& r : a.runs) ids.insert(r.id);
  EXPECT_EQ(ids.size(), 6u);
  // The same run keeps its id when the sweep around it grows.
  const Config bigger = parse_config(
      std::string(kBase) + "sweep:\n  grid: {optimizer.lr: [0.05, 0.1, 0.2, 0.3]}\n  repeats: 2\n", "s.yaml");
  EXPECT_EQ(bigger.runs[2].id, a.runs[0].id);
  EXPECT_EQ(bigger.runs[2].name, a.runs[0].name);
}

TEST(Sweep, SameShortKeyInTwoSectionsUsesTheDottedKey) {
  const Config c =
      parse_config(std::string(kBase) + "sweep:\n  grid: {train.seed: [1, 2], data.seed: [3]}\n", "s.yaml");
  EXPECT_EQ(names(c), (std::vector<std::string>{"train.seed=1,data.seed=3", "train.seed=2,data.seed=3"}));
}

TEST(Sweep, MoreThanTheRunLimitIsRejectedBeforeAnyRunIsMade) {
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kBase) + "sweep:\n  grid: {optimizer.lr: [0.1, 0.2]}\n  repeats: 50001\n", "big.yaml"),
      ConfigError, R"(^big\.yaml:7:9: key 'sweep\.grid': expands to more than 100000 runs \(got 100002\)$)");
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kBase) + "sweep:\n  repeats: 9223372036854775807\n", "big.yaml"), ConfigError,
      R"(^big\.yaml:7:3: key 'sweep\.grid': expands to more than 100000 runs \(got 9223372036854775807\)$)");
  // Counts beyond int64 must not wrap around to a small number that passes the limit (the sweep would then run
  // for ever): 2 grid points times 2^63 - 1 repeats, and 2 x 2 grid points times 2^62 repeats (2^64, 0 wrapped).
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kBase) + "sweep:\n  grid: {optimizer.lr: [0.1, 0.2]}\n  repeats: 9223372036854775807\n",
                   "big.yaml"),
      ConfigError,
      R"(^big\.yaml:7:9: key 'sweep\.grid': expands to more than 100000 runs \(got more than 9223372036854775807\)$)");
  EXPECT_THROW_MATCHING(
      parse_config(
          std::string(kBase) +
              "sweep:\n  grid: {optimizer.lr: [0.1, 0.2], train.epochs: [1, 2]}\n  repeats: 4611686018427387904\n",
          "big.yaml"),
      ConfigError,
      R"(^big\.yaml:7:9: key 'sweep\.grid': expands to more than 100000 runs \(got more than 9223372036854775807\)$)");
  // The same with random samples: 2^32 samples x 2^32 repeats.
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kBase) +
                       "sweep:\n  random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n  samples: 4294967296\n"
                       "  repeats: 4294967296\n",
                   "big.yaml"),
      ConfigError, R"(key 'sweep\.grid': expands to more than 100000 runs \(got more than 9223372036854775807\)$)");
}

TEST(Sweep, BaseErrorsInASweepFileAreAtTheirOwnLine) {
  const std::string head =
      "name: demo\n"
      "data: {target: quadratic, P: [[1, 0], [0, 1]]}\n"
      "sweep:\n"
      "  grid: {optimizer.lr: [0.1, 0.2]}\n"
      "train:\n"
      "  epochs: 3\n";
  EXPECT_THROW_MATCHING(parse_config(head + "  epocs: 5\n", "t.yaml"), ConfigError,
                        R"(^t\.yaml:7:3: key 'train\.epocs': unknown key; did you mean 'train\.epochs'\?$)");
  EXPECT_THROW_MATCHING(parse_config(head + "  batch_size: -1\n", "t.yaml"), ConfigError,
                        R"(^t\.yaml:7:15: key 'train\.batch_size': must be >= 0)");
  EXPECT_THROW_MATCHING(parse_config(head + "optimizer: {name: sgd, momentum: 2}\n", "t.yaml"), ConfigError,
                        R"(^t\.yaml:7:34: key 'optimizer\.momentum': must be in \[0, 1\) \(got 2\)$)");
}

TEST(Sweep, SetOnASweptKeyIsAnError) {
  const std::string yaml = std::string(kBase) + "sweep:\n  grid: {model.widths: [[4], [8]]}\n";
  EXPECT_THROW_MATCHING(parse_config(yaml, "s.yaml", {"model.widths=[16,16]"}), ConfigError,
                        R"(^--set model\.widths=\[16,16\]: sweep\.grid sets model\.widths for every run; )"
                        R"(change the sweep instead$)");
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kBase) + "sweep:\n  random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n  samples: 2\n",
                   "s.yaml", {"optimizer.lr=0.5"}),
      ConfigError, R"(^--set optimizer\.lr=0\.5: sweep\.random sets optimizer\.lr)");
  const Config c = parse_config(yaml, "s.yaml", {"train.epochs=7"});  // keys the sweep leaves alone still work
  ASSERT_EQ(c.runs.size(), 2u);
  EXPECT_EQ(c.runs[0].train.epochs, 7);
  EXPECT_EQ(c.runs[1].model.widths, (std::vector<int64_t>{8}));
}

TEST(Sweep, ASweptSectionMissingFromTheBaseIsCreated) {
  const Config c = parse_config(
      "data: {target: quadratic, P: [[1]]}\nsweep:\n  grid: {model.widths: [[4], [8]], train.epochs: [2]}\n", "s.yaml");
  ASSERT_EQ(c.runs.size(), 2u);
  EXPECT_EQ(c.runs[1].model.widths, (std::vector<int64_t>{8}));
  EXPECT_EQ(c.runs[1].train.epochs, 2);
  const Config z = parse_config("sweep:\n  zip: {data.target: [rosenbrock]}\n", "z.yaml");
  EXPECT_EQ(z.runs.at(0).data.target, Target::rosenbrock);
}

class InvalidSweep : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(InvalidSweep, IsRejectedWithAClearMessage) {
  EXPECT_THROW_MATCHING(parse_config(std::string(kBase) + GetParam().first, "bad.yaml"), ConfigError,
                        GetParam().second);
}

INSTANTIATE_TEST_SUITE_P(
    Files, InvalidSweep,
    ::testing::Values(
        std::make_pair("sweep:\n  gird: {optimizer.lr: [1]}\n",
                       R"(^bad\.yaml:7:3: key 'sweep\.gird': unknown key; did you mean 'sweep\.grid'\?$)"),
        std::make_pair(
            "sweep:\n  grid: {optimizer.lrr: [0.1]}\n",
            R"(^bad\.yaml:7:10: key 'sweep\.grid\.optimizer\.lrr': unknown key; did you mean 'optimizer\.lr'\?$)"),
        std::make_pair("sweep:\n  grid: {name: [a, b]}\n", R"(key 'sweep\.grid\.name': is not a key a sweep can vary)"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: 0.1}\n",
                       R"(^bad\.yaml:7:24: key 'sweep\.grid\.optimizer\.lr': must be a non-empty list of values$)"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: []}\n",
                       R"(key 'sweep\.grid\.optimizer\.lr': must be a non-empty list)"),
        std::make_pair("sweep:\n  grid: [optimizer.lr]\n", R"(key 'sweep\.grid': must map dotted keys to lists)"),
        std::make_pair("sweep:\n  grid:\n    optimizer.lr: [0.1, -0.5]\n",
                       R"(^bad\.yaml:8:25: key 'optimizer\.lr': must be > 0 \(got -0\.5\)$)"),
        std::make_pair("sweep:\n  grid:\n    model.activation: [relu, sigmoid]\n",
                       R"(^bad\.yaml:8:30: key 'model\.activation': 'sigmoid' is not one of)"),
        std::make_pair("sweep:\n  grid:\n    model.widths: [[10], []]\n",
                       R"(^bad\.yaml:8:26: key 'model\.widths': needs at least one hidden layer)"),
        std::make_pair("sweep:\n  grid:\n    train.batch_size: [10, 200]\n",
                       R"(key 'train\.batch_size': is larger than the 100 samples of the data \(got 200\))"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: [0.1]}\n  zip: {optimizer.lr: [0.2]}\n",
                       R"(^bad\.yaml:8:9: key 'sweep\.zip\.optimizer\.lr': is swept more than once$)"),
        std::make_pair("sweep:\n  zip: {optimizer.lr: [0.1, 0.2], train.epochs: [1, 2, 3]}\n",
                       R"(key 'sweep\.zip\.train\.epochs': has 3 values but sweep\.zip\.optimizer\.lr has 2)"),
        std::make_pair("sweep:\n  random: {optimizer.lr: {logunifrom: [1, 2]}}\n  samples: 3\n",
                       R"(unknown distribution 'logunifrom'; did you mean 'loguniform'\?)"),
        std::make_pair("sweep:\n  random: {optimizer.lr: {loguniform: [0, 1]}}\n  samples: 3\n",
                       R"(key 'sweep\.random\.optimizer\.lr': loguniform needs low > 0)"),
        std::make_pair("sweep:\n  random: {optimizer.lr: {uniform: [1]}}\n  samples: 3\n",
                       R"(uniform needs a list \[low, high\] of two numbers)"),
        std::make_pair("sweep:\n  random: {train.epochs: {int: [1.5, 3]}}\n  samples: 3\n",
                       R"(int needs integer bounds)"),
        std::make_pair("sweep:\n  random: {model.activation: {choice: []}}\n  samples: 3\n",
                       R"(choice needs a non-empty list)"),
        std::make_pair("sweep:\n  random: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
                       R"(key 'sweep\.samples': must be >= 1 with sweep\.random \(got 0\))"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: [0.1]}\n  samples: 4\n",
                       R"(key 'sweep\.samples': applies to sweep\.random only)"),
        std::make_pair("sweep:\n  repeats: 0\n", R"(key 'sweep\.repeats': must be >= 1 \(got 0\))"),
        std::make_pair("sweep:\n  grid:\n    optimizer.lr: [0.1]\n    optimizer.lr: [0.2]\n",
                       R"(^bad\.yaml:9:5: key 'sweep\.grid\.optimizer\.lr': appears twice \(lines 8 and 9\)$)"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: [0.1]}\n  repeats: 2\n  repeats: 3\n",
                       R"(^bad\.yaml:9:3: key 'sweep\.repeats': appears twice \(lines 8 and 9\)$)"),
        std::make_pair("sweep:\n  grid: {model.widths: [[4], {a: 1}]}\n",
                       R"(^bad\.yaml:7:30: key 'model\.widths': expected a list of integers, got 'a mapping'$)"),
        std::make_pair("sweep:\n  grid: {[model.widths]: [1]}\n",
                       R"(^bad\.yaml:7:10: key 'sweep\.grid': a key must be a dotted name, not a list or mapping$)"),
        std::make_pair("sweep: {}\n", R"(key 'sweep': needs at least one of grid, zip, random or repeats)"),
        std::make_pair("sweep:\n  grid: {optimizer.lr: [0.1, 0.1]}\n",
                       R"(key 'sweep': runs 'lr=0\.1' and 'lr=0\.1' are identical \(a value listed twice\?\))")));

}  // namespace
}  // namespace gradfit::config
