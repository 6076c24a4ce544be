#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <string>

#include "common/error.h"
#include "config/section.h"
#include "test_util.h"

namespace gradfit::config {
namespace {

constexpr const char* kMinimal = "data:\n  target: quadratic\n  P: [[1, 0], [0, 2]]\n";

TEST(Config, SeedExperimentIsTheUsersSetup) {
  const Config c = load_config(std::string(GRADFIT_SOURCE_DIR) + "/experiments/seed_quadratic.yaml");
  ASSERT_EQ(c.runs.size(), 1u);
  EXPECT_FALSE(c.is_sweep);
  const RunSpec& r = c.runs[0];
  EXPECT_EQ(r.name, "seed_quadratic");
  EXPECT_EQ(r.data.target, Target::quadratic);
  EXPECT_EQ(r.data.sampling, Sampling::grid);
  EXPECT_EQ(r.data.points_per_axis, 10);
  EXPECT_EQ(r.data.dim, 2);
  EXPECT_EQ(r.data.P, (std::vector<double>{20.1892, -26.6218, -26.6218, 38.0375}));
  EXPECT_EQ(r.model.widths, (std::vector<int64_t>{10, 10}));
  EXPECT_EQ(r.model.activation, Activation::relu);
  EXPECT_EQ(r.optimizer.name, Optimizer::adam);
  EXPECT_DOUBLE_EQ(r.optimizer.lr, 0.1);
  EXPECT_EQ(r.train.epochs, 999);
  EXPECT_EQ(r.train.batch_size, 0);
  EXPECT_EQ(r.id.size(), 12u);
}

TEST(Config, EveryExperimentParses) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(GRADFIT_SOURCE_DIR) + "/experiments")) {
    if (entry.path().extension() != ".yaml") continue;
    const Config c = load_config(entry.path().string());
    EXPECT_FALSE(c.runs.empty()) << entry.path();
  }
  EXPECT_EQ(load_config(std::string(GRADFIT_SOURCE_DIR) + "/experiments/seed_sweep.yaml").runs.size(), 24u);
  EXPECT_EQ(load_config(std::string(GRADFIT_SOURCE_DIR) + "/experiments/rosenbrock_sweep.yaml").runs.size(), 24u);
}

TEST(Config, DefaultsFillMissingSections) {
  const Config c = parse_config(kMinimal, "dir/run.yaml");
  EXPECT_EQ(c.name, "run");  // the file's stem
  const RunSpec& r = c.runs.at(0);
  EXPECT_EQ(r.name, "run");
  EXPECT_EQ(r.model.widths, (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(r.model.dtype, DType::float32);
  EXPECT_EQ(r.train.epochs, 1000);
  EXPECT_EQ(r.train.log_every, 100);
  EXPECT_EQ(c.ranks_per_run, 0);
  EXPECT_EQ(c.device, Device::auto_select);
  EXPECT_EQ(c.denormals, config::Denormals::flush);
  EXPECT_EQ(c.yaml_text, kMinimal);
  EXPECT_EQ(parse_config(std::string(kMinimal) + "denormals: keep\n", "s.yaml").denormals, config::Denormals::keep);
}

TEST(Config, TypoSuggestsTheNearestKeyWithLineAndColumn) {
  const std::string yaml = std::string(kMinimal) + "train:\n  epochs: 3\n  epocs: 5\n";
  EXPECT_THROW_MATCHING(parse_config(yaml, "sweep.yaml"), ConfigError,
                        R"(^sweep\.yaml:6:3: key 'train\.epocs': unknown key; did you mean 'train\.epochs'\?$)");
}

TEST(Config, UnknownKeyFarFromAnyListsValidKeys) {
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "zzzzzzzz: 1\n", "s.yaml"), ConfigError,
                        R"(s\.yaml:4:1: key 'zzzzzzzz': unknown key \(valid keys here: name, device, denormals, )"
                        R"(ranks_per_run, ensemble_size, output, checkpoint, data, model, optimizer, train, sweep\))");
}

TEST(Config, RelativeDataPathIsResolvedAgainstTheYamlFolder) {
  const Config c = parse_config("data:\n  target: file\n  path: data/grads.h5\n", "/home/u/exp/sweep.yaml");
  EXPECT_EQ(c.runs.at(0).data.path, "/home/u/exp/data/grads.h5");
  const Config a = parse_config("data:\n  target: file\n  path: /abs/g.h5\n", "/home/u/exp/sweep.yaml");
  EXPECT_EQ(a.runs.at(0).data.path, "/abs/g.h5");
}

TEST(Config, TestPathIsResolvedLikeThePathAndNamedInTheIdOnlyWhenSet) {
  const char* kTested = "data:\n  target: file\n  path: g.h5\n  test_path: held/out.h5\n";
  const Config c = parse_config(kTested, "/home/u/exp/sweep.yaml");
  EXPECT_EQ(c.runs.at(0).data.test_path, "/home/u/exp/held/out.h5");
  const Config plain = parse_config("data:\n  target: file\n  path: g.h5\n", "/home/u/exp/sweep.yaml");
  EXPECT_EQ(plain.runs.at(0).data.test_path, "");
  EXPECT_EQ(canonical_text(plain.runs.at(0)).find("test_path"), std::string::npos);  // other runs keep their ids
  EXPECT_NE(canonical_text(c.runs.at(0)).find("data.test_path=/home/u/exp/held/out.h5\n"), std::string::npos);
  EXPECT_NE(c.runs.at(0).id, plain.runs.at(0).id);
  // Any target may have a test file.
  EXPECT_EQ(parse_config(std::string(kMinimal) + "  test_path: /t.h5\n", "s.yaml").runs.at(0).data.test_path, "/t.h5");
}

TEST(Config, SetOverridesTheBaseConfiguration) {
  const Config c = parse_config(kMinimal, "s.yaml", {"optimizer.lr=0.25", "model.widths=[8, 4]", "name=other"});
  EXPECT_DOUBLE_EQ(c.runs.at(0).optimizer.lr, 0.25);
  EXPECT_EQ(c.runs.at(0).model.widths, (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(c.name, "other");
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"optimizer.lrr=0.1"}), ConfigError,
                        R"(^--set optimizer\.lrr=0\.1: unknown key 'optimizer\.lrr'; did you mean 'optimizer\.lr'\?$)");
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"epochs"}), ConfigError,
                        R"(^--set epochs: expected key=value$)");
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"optimizer.lr=-3"}), ConfigError,
                        R"(key 'optimizer\.lr': must be > 0 \(got -3\))");
}

TEST(Config, NameIsASafeFileName) {
  EXPECT_EQ(parse_config(std::string(kMinimal) + "name: Run_2.v-1\n", "s.yaml").name, "Run_2.v-1");
  EXPECT_EQ(parse_config(std::string(kMinimal) + "name: " + std::string(100, 'a') + "\n", "s.yaml").name.size(), 100u);
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "name: " + std::string(5000, 'a') + "\n", "s.yaml"),
                        ConfigError, R"(^s\.yaml:4:7: key 'name': must be 1 to 100 .* \(got 5000 characters\)$)");
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"name=.."}), ConfigError, R"(key 'name': must be 1 to 100)");
  EXPECT_EQ(parse_config(kMinimal, "dir/my run.yaml").name, "my run");  // the default is a file's name already
}

TEST(Config, SetValuesWithEqualKeysAreRejected) {
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"model.widths={a: 1, a: 2}"}), ConfigError,
                        R"(^--set model\.widths=\{a: 1, a: 2\}:1:8: key 'model\.widths\.a': appears twice)");
}

// An alias inside the node it names would make every walk of the tree endless: one line with its place (the
// anchor's; the key is where the walk met the alias), wherever it is (a base key, a sweep's list, a --set value).
TEST(Config, CyclicAliasesAreOneLineErrors) {
  const std::string cycle = "a YAML alias refers to a node that contains it \\(a cycle\\)$";
  EXPECT_THROW_MATCHING(parse_config("key: &a [*a]\n", "s.yaml"), ConfigError,
                        "^s\\.yaml:1:6: key 'key\\[0\\]': " + cycle);
  EXPECT_THROW_MATCHING(parse_config(std::string(kMinimal) + "train: &t {seed: *t}\n", "s.yaml"), ConfigError,
                        "^s\\.yaml:4:8: key 'train\\.seed': " + cycle);
  EXPECT_THROW_MATCHING(
      parse_config(std::string(kMinimal) + "sweep:\n  grid:\n    optimizer.lr: &l [0.1, [*l]]\n", "s.yaml"),
      ConfigError, "^s\\.yaml:6:19: key 'sweep\\.grid\\.optimizer\\.lr\\[1\\]\\[0\\]': " + cycle);
  EXPECT_THROW_MATCHING(parse_config(kMinimal, "s.yaml", {"model.widths=&a [8, *a]"}), ConfigError,
                        "^--set model\\.widths=&a \\[8, \\*a\\]:1:1: key 'model\\.widths\\[1\\]': " + cycle);
  // An alias of a node outside itself is fine, also used many times.
  const Config c = parse_config(
      std::string(kMinimal) + "model: {widths: &w [8, 8]}\nsweep:\n  grid:\n" + "    model.widths: [*w, [4]]\n",
      "s.yaml");
  ASSERT_EQ(c.runs.size(), 2u);
  EXPECT_EQ(c.runs[0].model.widths, (std::vector<int64_t>{8, 8}));
}

// Nesting: past yaml-cpp's own bound the parser's error, below it ours; each one line, no crash.
TEST(Config, DeepNestingIsAOneLineError) {
  const auto nested = [](int depth) { return "key: " + std::string(depth, '[') + std::string(depth, ']') + "\n"; };
  EXPECT_THROW_MATCHING(parse_config(nested(10000), "deep.yaml"), ConfigError,
                        "^deep\\.yaml:1:[0-9]+: invalid YAML: nested deeper than the YAML parser follows \\(this tool "
                        "takes 64 levels\\)$");
  EXPECT_THROW_MATCHING(parse_config(nested(100), "deep.yaml"), ConfigError,
                        "^deep\\.yaml:1:69: key 'key(\\[0\\]){63}': nested deeper than 64 levels$");
  std::string block = "key:\n";  // block style: each level a mapping indented one more
  for (int i = 0; i < 10000; ++i) block += std::string(i + 1, ' ') + "k:\n";
  EXPECT_THROW_MATCHING(parse_config(block, "deep.yaml"), ConfigError,
                        "^deep\\.yaml:[0-9]+:[0-9]+: .*nested deeper than");
  // The deepest key a sweep file needs is far below the bound.
  EXPECT_EQ(parse_config("sweep: {grid: {data.P: [[[1, 0], [0, 2]], [[2]]]}}\ndata: {target: quadratic}\n", "s.yaml")
                .runs.size(),
            2u);
}

// Aliases of aliases: a short file that is a huge tree is refused before any walk takes its time.
TEST(Config, AliasesExpandingPastTheBoundAreOneLineErrors) {
  std::string text = "l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (int i = 1; i <= 6; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    text += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += prev + (k < 9 ? ", " : "]\n");
  }
  EXPECT_THROW_MATCHING(parse_config(text, "big.yaml"), ConfigError,
                        "^big\\.yaml:[0-9]+:[0-9]+: key 'l[0-9](\\[[0-9]\\])*': the document repeats its aliases into "
                        "more than 1000000 nodes$");
}

TEST(Config, IdsAreStableAndDifferWhenAnythingDiffers) {
  const auto a = parse_config(kMinimal, "a.yaml").runs.at(0).id;
  EXPECT_EQ(parse_config(kMinimal, "b.yaml").runs.at(0).id, a);  // the file name does not matter
  EXPECT_NE(parse_config(kMinimal, "a.yaml", {"train.seed=1"}).runs.at(0).id, a);
  EXPECT_NE(parse_config(kMinimal, "a.yaml", {"optimizer.lr=0.002"}).runs.at(0).id, a);
}

// The largest sizes the bounds allow are accepted, and the smallest beyond them refused.
TEST(Config, SizesUpToTheBoundsAreAccepted) {
  const Config c = parse_config(
      "data: {target: gaussian_wells, sampling: uniform, dim: 1000000, samples: 10000000000, wells: 1000000}\n"
      "model: {widths: [1000]}\ntrain: {batch_size: 10000000000, chunk_rows: 10000000000}\n",
      "s.yaml");
  EXPECT_EQ(c.runs.at(0).data.dim, kMaxDim);
  EXPECT_EQ(analytic_sample_count(c.runs.at(0).data), kMaxSamples);
  // 2·1e6 + 1e6 + 1e6·9000 + 9000 + 9001 parameters: 9.003e9.
  EXPECT_EQ(parse_config("data: {target: rosenbrock}\nmodel: {widths: [1000000, 9000]}\n", "s.yaml")
                .runs.at(0)
                .model.widths.front(),
            kMaxWidth);
  EXPECT_THROW_MATCHING(parse_config("data: {target: rosenbrock, dim: 1000001}\n", "s.yaml"), ConfigError,
                        R"(key 'data\.dim': must be at most 1e6 \(got 1000001\)$)");
  const std::string layers = "data: {target: rosenbrock}\nmodel: {widths: [";
  std::string widths = "1";
  for (int i = 1; i < kMaxLayers; ++i) widths += ", 1";
  EXPECT_EQ(parse_config(layers + widths + "]}\n", "s.yaml").runs.at(0).model.widths.size(), 1000u);
  EXPECT_THROW_MATCHING(
      parse_config(layers + widths + ", 1]}\n", "s.yaml"), ConfigError,
      R"(^s\.yaml:2:17: key 'model\.widths': must have at most 1000 hidden layers \(got 1001 layers\)$)");
}

// points_per_axis^n stops at the bound: no overflow and no loop over a huge n.
TEST(Config, GridPointCountStopsAtTheBound) {
  EXPECT_EQ(grid_point_count(10, 2), 100);
  EXPECT_EQ(grid_point_count(10, 10), kMaxSamples);
  EXPECT_EQ(grid_point_count(10, 11), -1);
  EXPECT_EQ(grid_point_count(2, 33), int64_t{1} << 33);
  EXPECT_EQ(grid_point_count(2, 34), -1);
  EXPECT_EQ(grid_point_count(1, kMaxDim), 1);
  EXPECT_EQ(grid_point_count(1, std::numeric_limits<int64_t>::max()), 1);
  EXPECT_EQ(grid_point_count(3, std::numeric_limits<int64_t>::max()), -1);
  EXPECT_EQ(grid_point_count(std::numeric_limits<int64_t>::max(), 2), -1);
}

// A size out of bounds in a sweep list is reported at its own line and column.
TEST(Config, ASweptSizeOutOfBoundsIsReportedWhereItIs) {
  EXPECT_THROW_MATCHING(
      parse_config("data: {target: rosenbrock}\nsweep:\n  grid:\n    model.widths: [[8], [8, 2000000]]\n", "s.yaml"),
      ConfigError, R"(^s\.yaml:4:25: key 'model\.widths': every width must be at most 1e6 \(got 2000000\)$)");
  EXPECT_THROW_MATCHING(
      parse_config("data: {target: rosenbrock, sampling: uniform}\nsweep:\n  grid:\n    data.samples: [10, 1e12]\n",
                   "s.yaml"),
      ConfigError, R"(^s\.yaml:4:24: key 'data\.samples': expected an integer, got '1e12'$)");
}

// The schedule keys: defaults as documented (PyTorch's where it has one), the keys of another schedule ignored and
// left out of the id, so that runs without schedules, decay or clipping keep the ids they had.
TEST(Config, ScheduleKeysDefaultsAndIds) {
  const auto plain = parse_config(kMinimal, "a.yaml").runs.at(0);
  EXPECT_EQ(plain.optimizer.schedule, Schedule::constant);
  EXPECT_EQ(plain.id, "1d84f5f9e601");  // its id before schedules existed
  const auto run = [](const std::vector<std::string>& set) { return parse_config(kMinimal, "a.yaml", set).runs.at(0); };
  const auto exponential = run({"optimizer.schedule=exponential", "optimizer.lr=0.5"});
  EXPECT_DOUBLE_EQ(exponential.optimizer.lr_final, 0.005);  // lr / 100
  const auto plateau = run({"optimizer.schedule=plateau"}).optimizer;
  EXPECT_EQ(plateau.plateau_factor, 0.1);
  EXPECT_EQ(plateau.plateau_patience, 10);
  EXPECT_EQ(plateau.min_lr, 0.0);
  EXPECT_EQ(run({"optimizer.name=adamw"}).optimizer.weight_decay, 0.01);  // torch.optim.AdamW's default
  EXPECT_EQ(plain.optimizer.max_grad_norm, 0.0);
  // Keys of another schedule change nothing; those of the run's own schedule change its id.
  EXPECT_EQ(run({"optimizer.lr_final=0.1", "optimizer.warmup_epochs=3", "optimizer.plateau_patience=2"}).id, plain.id);
  EXPECT_EQ(run({"optimizer.schedule=plateau", "optimizer.lr_final=0.1"}).id, run({"optimizer.schedule=plateau"}).id);
  EXPECT_NE(run({"optimizer.schedule=cosine"}).id, run({"optimizer.schedule=cosine", "optimizer.warmup_epochs=5"}).id);
  EXPECT_NE(run({"optimizer.schedule=cosine"}).id, run({"optimizer.schedule=exponential"}).id);
  EXPECT_NE(run({"optimizer.max_grad_norm=1"}).id, plain.id);
  EXPECT_NE(run({"optimizer.name=adamw"}).id, run({"optimizer.name=adamw", "optimizer.weight_decay=0.1"}).id);
  // L-BFGS's history size: torch.optim.LBFGS's default, part of an lbfgs run's id only.
  EXPECT_EQ(run({"optimizer.name=lbfgs"}).optimizer.history_size, 100);
  EXPECT_EQ(run({"optimizer.history_size=5"}).id, plain.id);
  EXPECT_NE(run({"optimizer.name=lbfgs"}).id, run({"optimizer.name=lbfgs", "optimizer.history_size=5"}).id);
  // Its tolerances: PyTorch's defaults, named in the id only where an lbfgs run changes them.
  const auto lbfgs = run({"optimizer.name=lbfgs"});
  EXPECT_EQ(lbfgs.optimizer.tolerance_grad, 1e-7);
  EXPECT_EQ(lbfgs.optimizer.tolerance_change, 1e-9);
  EXPECT_EQ(run({"optimizer.name=lbfgs", "optimizer.tolerance_grad=1e-7", "optimizer.tolerance_change=1e-9"}).id,
            lbfgs.id);
  EXPECT_NE(run({"optimizer.name=lbfgs", "optimizer.tolerance_grad=0"}).id, lbfgs.id);
  EXPECT_NE(run({"optimizer.name=lbfgs", "optimizer.tolerance_change=0"}).id, lbfgs.id);
  EXPECT_EQ(run({"optimizer.tolerance_change=0"}).id, plain.id);
  // The moving average: off by default (the id unchanged), part of the id when set.
  EXPECT_EQ(plain.train.ema_decay, 0.0);
  EXPECT_EQ(run({"train.ema_decay=0"}).id, plain.id);
  EXPECT_NE(run({"train.ema_decay=0.99"}).id, plain.id);
  EXPECT_NE(run({"train.ema_decay=0.99"}).id, run({"train.ema_decay=0.999"}).id);
}

// Every invalid file is rejected with a message naming the file, line, column and key.
struct InvalidCase {
  const char* yaml;
  const char* pattern;
};

class InvalidConfig : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfig, IsRejectedWithAClearMessage) {
  EXPECT_THROW_MATCHING(parse_config(GetParam().yaml, "bad.yaml"), ConfigError, GetParam().pattern);
}

#define P2 "data: {target: quadratic, P: [[1, 0], [0, 1]]}\n"
INSTANTIATE_TEST_SUITE_P(
    Files, InvalidConfig,
    ::testing::Values(
        InvalidCase{"", R"(^bad\.yaml: the file is empty$)"},
        InvalidCase{"data: [1, 2\n", R"(^bad\.yaml:\d+:\d+: invalid YAML)"},
        InvalidCase{"- 1\n- 2\n", R"(^bad\.yaml:1:1: the file must be a YAML mapping)"},
        InvalidCase{"model:\n  widths: [3]\n", R"(^bad\.yaml:1:1: key 'data': missing required section$)"},
        InvalidCase{"data:\n  target: quadratic\n", R"(^bad\.yaml:2:3: key 'data\.P': missing required key$)"},
        InvalidCase{"data:\n  target: quadratic\n  P: [[1, 2], [3]]\n",
                    R"(^bad\.yaml:3:6: key 'data\.P': must be a square matrix)"},
        InvalidCase{"data:\n  target: parabola\n",
                    R"(^bad\.yaml:2:11: key 'data\.target': 'parabola' is not one of quadratic, rosenbrock, )"},
        InvalidCase{"data: {target: file}\n", R"(key 'data\.path': missing required key$)"},
        InvalidCase{"data: {target: rosenbrock, dim: 1}\n", R"(key 'data\.dim': rosenbrock needs dim >= 2 \(got 1\))"},
        InvalidCase{"data: {target: rosenbrock, low: 2, high: 1}\n",
                    R"(key 'data\.high': must be greater than data\.low \(got 1\))"},
        InvalidCase{P2 "model:\n  widths: []\n",
                    R"(^bad\.yaml:3:11: key 'model\.widths': needs at least one hidden layer)"},
        InvalidCase{P2 "model:\n  widths: [4, 0]\n", R"(key 'model\.widths': every width must be >= 1 \(got 0\))"},
        InvalidCase{P2 "model:\n  widths: 10\n", R"(key 'model\.widths': expected a list of integers, got '10')"},
        InvalidCase{
            P2 "model:\n  activation: sigmoid\n",
            R"(^bad\.yaml:3:15: key 'model\.activation': 'sigmoid' is not one of relu, tanh, softplus, silu, gelu$)"},
        InvalidCase{P2 "model:\n  dtype: float16\n", R"(key 'model\.dtype': 'float16' is not one of float32, float64)"},
        InvalidCase{P2 "optimizer:\n  lr: 0\n", R"(^bad\.yaml:3:7: key 'optimizer\.lr': must be > 0 \(got 0\)$)"},
        InvalidCase{P2 "optimizer:\n  lr: fast\n",
                    R"(^bad\.yaml:3:7: key 'optimizer\.lr': expected a number, got 'fast'$)"},
        InvalidCase{P2 "optimizer:\n  name: bfgs\n",
                    R"(key 'optimizer\.name': 'bfgs' is not one of adam, adamw, sgd, lbfgs; did you mean 'lbfgs'\?$)"},
        // L-BFGS: full batch, the true gradient, a history of at least one pair.
        InvalidCase{P2 "optimizer: {name: lbfgs}\ntrain: {batch_size: 10}\n",
                    R"(^bad\.yaml:3:21: key 'train\.batch_size': must be 0 \(full batch\) for optimizer lbfgs )"
                    R"(\(got 10\)$)"},
        InvalidCase{P2 "optimizer: {name: lbfgs, max_grad_norm: 1}\n",
                    R"(^bad\.yaml:2:41: key 'optimizer\.max_grad_norm': does not apply to optimizer lbfgs )"},
        InvalidCase{P2 "optimizer: {name: lbfgs, history_size: 0}\n",
                    R"(^bad\.yaml:2:40: key 'optimizer\.history_size': must be in \[1, 100000\] \(got 0\)$)"},
        InvalidCase{P2 "optimizer: {name: lbfgs, tolerance_change: -1}\n",
                    R"(^bad\.yaml:2:44: key 'optimizer\.tolerance_change': must be >= 0 \(got -1\)$)"},
        InvalidCase{P2 "optimizer:\n  momentum: 0.9\n", R"(key 'optimizer\.momentum': applies to optimizer sgd only)"},
        InvalidCase{P2 "optimizer: {name: sgd, momentum: 1.5}\n", R"(key 'optimizer\.momentum': must be in \[0, 1\))"},
        // Schedules, weight decay and clipping.
        InvalidCase{P2 "optimizer: {schedule: linear}\n",
                    R"(^bad\.yaml:2:23: key 'optimizer\.schedule': 'linear' is not one of constant, exponential, )"
                    R"(cosine, plateau$)"},
        InvalidCase{P2 "optimizer: {schedule: exponential, lr_final: 0}\n",
                    R"(^bad\.yaml:2:46: key 'optimizer\.lr_final': must be > 0 for schedule exponential \(got 0\)$)"},
        InvalidCase{P2 "optimizer: {schedule: exponential}\ntrain: {epochs: 1}\n",
                    R"(^bad\.yaml:2:23: key 'optimizer\.schedule': exponential needs train\.epochs >= 2)"},
        InvalidCase{P2 "optimizer: {schedule: cosine, lr_final: -1}\n",
                    R"(key 'optimizer\.lr_final': must be >= 0 \(got -1\)$)"},
        InvalidCase{P2 "optimizer: {schedule: cosine, warmup_epochs: 10}\ntrain: {epochs: 10}\n",
                    R"(^bad\.yaml:2:46: key 'optimizer\.warmup_epochs': must be >= 0 and less than train\.epochs )"
                    R"(\(10\) \(got 10\)$)"},
        InvalidCase{P2 "optimizer: {schedule: plateau, plateau_factor: 1}\n",
                    R"(key 'optimizer\.plateau_factor': must be in \(0, 1\) \(got 1\)$)"},
        InvalidCase{P2 "optimizer: {schedule: plateau, plateau_patience: -1}\n",
                    R"(key 'optimizer\.plateau_patience': must be >= 0 \(got -1\)$)"},
        InvalidCase{P2 "optimizer: {schedule: plateau, min_lr: -0.1}\n",
                    R"(key 'optimizer\.min_lr': must be >= 0 \(got -0\.1\)$)"},
        InvalidCase{P2 "optimizer: {weight_decay: 0.1}\n",
                    R"(^bad\.yaml:2:27: key 'optimizer\.weight_decay': applies to optimizer adamw only \(got 0\.1\)$)"},
        InvalidCase{P2 "optimizer: {name: adamw, weight_decay: -1}\n",
                    R"(key 'optimizer\.weight_decay': must be >= 0 \(got -1\)$)"},
        InvalidCase{P2 "optimizer: {max_grad_norm: -1}\n",
                    R"(key 'optimizer\.max_grad_norm': must be >= 0 \(0: no clipping\) \(got -1\)$)"},
        InvalidCase{P2 "optimizer: {lr_finl: 0.1}\n", R"(key 'optimizer\.lr_finl': unknown key; did you mean )"
                                                      R"('optimizer\.lr_final'\?$)"},
        InvalidCase{P2 "train:\n  epochs: 0\n", R"(key 'train\.epochs': must be >= 1 \(got 0\))"},
        InvalidCase{P2 "train: {ema_decay: 1}\n",
                    R"(^bad\.yaml:2:20: key 'train\.ema_decay': must be in \[0, 1\) \(0: no moving average\) )"
                    R"(\(got 1\)$)"},
        InvalidCase{
            P2 "train:\n  batch_size: 101\n",
            R"(^bad\.yaml:3:15: key 'train\.batch_size': is larger than the 100 samples of the data \(got 101\)$)"},
        InvalidCase{P2 "train:\n  batch_size: -1\n", R"(key 'train\.batch_size': must be >= 0)"},
        InvalidCase{P2 "train:\n  val_fraction: 1.0\n", R"(key 'train\.val_fraction': must be in \[0, 1\))"},
        InvalidCase{P2 "train:\n  patience: 5\n", R"(key 'train\.patience': needs train\.val_fraction > 0)"},
        InvalidCase{P2 "device: gpu\n", R"(key 'device': 'gpu' is not one of auto, cpu, cuda)"},
        InvalidCase{P2 "denormals: off\n", R"(key 'denormals': 'off' is not one of flush, keep)"},
        InvalidCase{P2 "ranks_per_run: -2\n", R"(key 'ranks_per_run': must be >= 1)"},
        InvalidCase{P2 "ensemble_size: -1\n", R"(key 'ensemble_size': must be >= 1 \(or 0 to choose automatically\))"},
        InvalidCase{P2 "name: a/b\n", R"(^bad\.yaml:2:7: key 'name': must be 1 to 100 of the characters A-Z a-z )"
                                      R"(0-9 \. _ - and not start with '\.' \(got 'a/b'\)$)"},
        InvalidCase{P2 "name: ..\n", R"(^bad\.yaml:2:7: key 'name': must be 1 to 100 .* \(got '\.\.'\)$)"},
        InvalidCase{P2 "name: .hidden\n", R"(^bad\.yaml:2:7: key 'name': must be 1 to 100 .* \(got '\.hidden'\)$)"},
        InvalidCase{P2 "name: my run\n", R"(^bad\.yaml:2:7: key 'name': must be 1 to 100 .* \(got 'my run'\)$)"},
        // Equal keys in one mapping, at any depth: yaml-cpp would keep the first silently.
        InvalidCase{P2 "train:\n  epochs: 5\n  seed: 1\n  epochs: 9\n",
                    R"(^bad\.yaml:5:3: key 'train\.epochs': appears twice \(lines 3 and 5\)$)"},
        InvalidCase{P2 "name: a\nname: b\n", R"(^bad\.yaml:3:1: key 'name': appears twice \(lines 2 and 3\)$)"},
        InvalidCase{P2 "train: {epochs: 1, epochs: 2}\n",
                    R"(^bad\.yaml:2:20: key 'train\.epochs': appears twice \(line 2, columns 9 and 20\)$)"},
        InvalidCase{"data:\n  target: quadratic\n  P: [[1]]\n  target: file\n",
                    R"(^bad\.yaml:4:3: key 'data\.target': appears twice \(lines 2 and 4\)$)"},
        // A list or mapping where a scalar belongs: one line with the place, the key and what it must be.
        InvalidCase{P2 "train: {epochs: [1, 2]}\n",
                    R"(^bad\.yaml:2:17: key 'train\.epochs': expected an integer, got 'a list'$)"},
        InvalidCase{P2 "optimizer: {lr: {a: 1}}\n",
                    R"(^bad\.yaml:2:17: key 'optimizer\.lr': expected a number, got 'a mapping'$)"},
        InvalidCase{P2 "model: {widths: [[1]]}\n",
                    R"(^bad\.yaml:2:17: key 'model\.widths': expected a list of integers, got 'a list'$)"},
        InvalidCase{P2 "model: {activation: [relu]}\n",
                    R"(^bad\.yaml:2:21: key 'model\.activation': expected a string, got 'a list'$)"},
        InvalidCase{P2 "train: {[1]: 2}\n",
                    R"(^bad\.yaml:2:9: key 'train': a key must be a name, not a list or mapping$)"},
        InvalidCase{P2 "train:\n  optimizer: adam\n", R"(key 'train\.optimizer': unknown key)"},
        // Absurd sizes: one line naming the key and the bound, before anything is allocated or looped over.
        InvalidCase{"data: {target: gaussian_wells, sampling: uniform, samples: 1000000000000}\n",
                    R"(^bad\.yaml:1:60: key 'data\.samples': must be at most 1e10 \(got 1000000000000\)$)"},
        InvalidCase{"data: {target: gaussian_wells, wells: 1000000000000}\n",
                    R"(^bad\.yaml:1:39: key 'data\.wells': must be at most 1e6 \(got 1000000000000\)$)"},
        InvalidCase{"data: {target: gaussian_wells, dim: 1000000000000}\n",
                    R"(^bad\.yaml:1:37: key 'data\.dim': must be at most 1e6 \(got 1000000000000\)$)"},
        InvalidCase{"data: {target: rosenbrock, dim: 9223372036854775807}\n",
                    R"(key 'data\.dim': must be at most 1e6 \(got 9223372036854775807\)$)"},
        InvalidCase{"data: {target: rosenbrock, dim: 1000000, sampling: grid, points_per_axis: 2}\n",
                    R"(key 'data\.points_per_axis': gives more than 1e10 grid points in 1000000-D \(got 2\)$)"},
        InvalidCase{"data: {target: rosenbrock, dim: 3, points_per_axis: 2155}\n",
                    R"(key 'data\.points_per_axis': gives more than 1e10 grid points in 3-D \(got 2155\)$)"},
        InvalidCase{"data: {target: rosenbrock, dim: 2, points_per_axis: 9223372036854775807}\n",
                    R"(key 'data\.points_per_axis': gives more than 1e10 grid points in 2-D)"},
        InvalidCase{P2 "model: {widths: [1000000000]}\n",
                    R"(^bad\.yaml:2:17: key 'model\.widths': every width must be at most 1e6 \(got 1000000000\)$)"},
        InvalidCase{P2 "model: {widths: [1000000, 1000000]}\n",
                    R"(^bad\.yaml:2:17: key 'model\.widths': gives more than 1e10 parameters on 2 inputs )"
                    R"(\(got \[1000000, 1000000\]\)$)"},
        InvalidCase{"data: {target: file, path: g.h5}\nmodel: {widths: [100000, 100000, 100000]}\n",
                    R"(key 'model\.widths': gives more than 1e10 parameters on 1 input \(got \[100000, 100000, )"},
        InvalidCase{"data: {target: file, path: g.h5}\ntrain: {batch_size: 100000000000}\n",
                    R"(^bad\.yaml:2:21: key 'train\.batch_size': must be at most 1e10 \(got 100000000000\)$)"},
        InvalidCase{P2 "train: {chunk_rows: 100000000000}\n",
                    R"(key 'train\.chunk_rows': must be at most 1e10 \(got 100000000000\)$)"}));

// A misspelt value of every enumerated key: the valid values, and the nearest one suggested, as for unknown keys.
INSTANTIATE_TEST_SUITE_P(
    MisspeltValues, InvalidConfig,
    ::testing::Values(
        InvalidCase{"data: {target: rosenbrok}\n",
                    R"(^bad\.yaml:1:16: key 'data\.target': 'rosenbrok' is not one of quadratic, rosenbrock, )"
                    R"(gaussian_wells, file; did you mean 'rosenbrock'\?$)"},
        InvalidCase{
            "data: {target: rosenbrock, sampling: uniforn}\n",
            R"(key 'data\.sampling': 'uniforn' is not one of grid, uniform, normal; did you mean 'uniform'\?$)"},
        InvalidCase{P2 "model: {activation: softpuls}\n",
                    R"(key 'model\.activation': 'softpuls' is not one of .*; did you mean 'softplus'\?$)"},
        InvalidCase{P2 "model: {dtype: flaot64}\n",
                    R"(key 'model\.dtype': 'flaot64' is not one of float32, float64; did you mean 'float64'\?$)"},
        InvalidCase{P2 "model: {features: inverse_distance}\n",
                    R"(^bad\.yaml:2:19: key 'model\.features': 'inverse_distance' is not one of identity, )"
                    R"(inverse_distances, periodic, atom_centered; did you mean 'inverse_distances'\?$)"},
        InvalidCase{P2 "optimizer: {name: lbgfs}\n",
                    R"(key 'optimizer\.name': 'lbgfs' is not one of .*; did you mean 'lbfgs'\?$)"},
        InvalidCase{P2 "optimizer: {schedule: cosin}\n",
                    R"(key 'optimizer\.schedule': 'cosin' is not one of .*; did you mean 'cosine'\?$)"},
        InvalidCase{P2 "train: {loss: hubber}\n",
                    R"(key 'train\.loss': 'hubber' is not one of mse, huber; did you mean 'huber'\?$)"},
        InvalidCase{P2 "train: {engine: analitic}\n",
                    R"(key 'train\.engine': 'analitic' is not one of analytic, autograd; did you mean 'analytic'\?$)"},
        InvalidCase{P2 "device: cudaa\n",
                    R"(key 'device': 'cudaa' is not one of auto, cpu, cuda; did you mean 'cuda'\?$)"},
        InvalidCase{P2 "denormals: flsuh\n",
                    R"(key 'denormals': 'flsuh' is not one of flush, keep; did you mean 'flush'\?$)"},
        InvalidCase{P2 "sweep: {grid: {optimizer.lr: [0.1, 0.2]}, prune: {method: ashaa}}\n",
                    R"(key 'sweep\.prune\.method': 'ashaa' is not one of none, asha, median; did you mean 'asha'\?$)"},
        InvalidCase{P2 "train: {val_fraction: 0.2}\nsweep: {grid: {optimizer.lr: [0.1, 0.2]}, "
                       "prune: {method: asha, metric: val_los}}\n",
                    R"(key 'sweep\.prune\.metric': 'val_los' is not one of .*; did you mean 'val_loss'\?$)"},
        // Far from every valid value: the list alone.
        InvalidCase{P2 "model: {activation: sigmoid}\n",
                    R"(key 'model\.activation': 'sigmoid' is not one of relu, tanh, softplus, silu, gelu$)"}));
#undef P2

// docs/config.md, the YAML reference, has a table row "| `dotted.key` | ..." for every key the parser accepts, and
// no such row for a key it does not: the page and the parser cannot drift apart.
TEST(Config, TheYamlReferenceListsExactlyTheKeysTheParserAccepts) {
  std::set<std::string> accepted;
  for (const auto& key : settable_keys(/*include_top_level=*/true)) accepted.insert(key);
  for (const auto& key : section_keys("sweep")) accepted.insert("sweep." + key);
  for (const auto& key : top_level_keys())  // a section is documented by its keys, a scalar by itself
    if (accepted.count(key) == 0 && accepted.lower_bound(key + ".") == accepted.lower_bound(key + "/"))
      ADD_FAILURE() << "top-level key '" << key << "' is neither a settable key nor a section with keys";
  const std::string page = std::string(GRADFIT_SOURCE_DIR) + "/docs/config.md";
  std::ifstream in(page);
  ASSERT_TRUE(in) << "cannot read " << page;
  const std::regex row(R"(^\| `([^`]+)` \|)");
  std::set<std::string> documented;
  int line_number = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    std::smatch match;
    if (!std::regex_search(line, match, row)) continue;
    documented.insert(match[1]);
    EXPECT_EQ(accepted.count(match[1]), 1u)
        << page << ":" << line_number << ": '" << match[1] << "' is not a key the parser accepts";
  }
  for (const auto& key : accepted) EXPECT_EQ(documented.count(key), 1u) << "key '" << key << "' is not in " << page;
  EXPECT_GE(documented.size(), 60u);  // the rows were found at all
}

}  // namespace
}  // namespace gradfit::config
