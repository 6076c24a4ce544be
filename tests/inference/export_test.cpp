// A saved run read back (io/saved_run.h), exported as TorchScript (inference/export.h) and loaded with
// torch::jit::load: its forward and gradient equal the model's own V and dV/dx (autograd), per activation and dtype.
#include "inference/export.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include "common/error.h"
#include "io/h5.h"
#include "io/results.h"
#include "io/saved_run.h"
#include "test_util.h"

namespace gradfit::inference {
namespace {

using config::Activation;

config::ModelSpec model_spec(const std::vector<int64_t>& widths, Activation activation, config::DType dtype,
                             config::FeatureKind features = config::FeatureKind::identity) {
  config::ModelSpec spec;
  spec.widths = widths;
  spec.activation = activation;
  spec.dtype = dtype;
  spec.features = features;
  if (features == config::FeatureKind::periodic) spec.periods = {2 * M_PI, 0, 1.5, 0, 0, 4};
  return spec;
}

io::SavedRun saved_run_of(model::Mlp& mlp, const config::ModelSpec& spec, int64_t dim) {
  io::SavedRun run;
  run.name = "test_run";
  run.id = "abc";
  run.model = spec;
  run.input_dim = dim;
  for (const auto& item : mlp->named_parameters()) run.parameters.emplace_back(item.key(), item.value().detach());
  return run;
}

// V and dV/dx of the model at x, by autograd.
std::pair<torch::Tensor, torch::Tensor> reference(model::Mlp& mlp, const torch::Tensor& x) {
  const auto xg = x.clone().requires_grad_(true);
  const auto v = mlp->forward(xg);
  const auto g = torch::autograd::grad({v}, {xg}, {torch::ones_like(v)})[0];
  return {v.detach(), g};
}

double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

void check_export(Activation activation, config::DType dtype, double tolerance,
                  config::FeatureKind features = config::FeatureKind::identity) {
  testing::TempDir dir;
  const config::ModelSpec spec = model_spec({16, 12, 8}, activation, dtype, features);
  const int64_t dim = features == config::FeatureKind::identity ? 3 : 6;  // 2 atoms, or 6 components
  auto mlp = model::make_mlp(spec, dim, /*seed=*/5);
  const auto path = dir.file("model.pt");
  export_model(saved_run_of(mlp, spec, dim), path);
  auto module = torch::jit::load(path);
  torch::manual_seed(1);
  // Wide enough that softplus meets its threshold (z > 20) and relu both sides.
  const auto x = (30 * torch::randn({257, dim}, torch::kFloat64)).to(model::torch_dtype(dtype));
  const auto [v, g] = reference(mlp, x);
  const torch::NoGradGuard no_grad;  // the exported gradient needs no autograd
  const auto v_ts = module.forward({x}).toTensor();
  const auto g_ts = module.get_method("gradient")({x}).toTensor();
  const char* name = config::to_string(activation);
  ASSERT_EQ(v_ts.sizes(), v.sizes()) << name;
  ASSERT_EQ(g_ts.sizes(), g.sizes()) << name;
  EXPECT_EQ(v_ts.scalar_type(), v.scalar_type()) << name;
  EXPECT_LE(rel_diff(v_ts, v), tolerance) << name;
  EXPECT_LE(rel_diff(g_ts, g), tolerance) << name;
  EXPECT_EQ(module.attr("activation").toStringRef(), name);
  if (features != config::FeatureKind::identity) {
    EXPECT_EQ(module.attr("features").toStringRef(), config::to_string(features));
  }
}

TEST(Export, MatchesTheModelInFloat64) {
  for (auto a : {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu, Activation::gelu})
    check_export(a, config::DType::float64, 1e-12);
}

// Through the features: forward applies φ, and gradient Jᵀ, without autograd.
TEST(Export, MatchesTheModelWithFeatures) {
  for (auto features : {config::FeatureKind::inverse_distances, config::FeatureKind::periodic}) {
    check_export(Activation::softplus, config::DType::float64, 1e-12, features);
    check_export(Activation::tanh, config::DType::float32, 1e-5, features);
  }
}

TEST(Export, MatchesTheModelInFloat32) {
  for (auto a : {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu, Activation::gelu})
    check_export(a, config::DType::float32, 1e-5);
}

// Each feature kind's TorchScript (model/features.h: script() and script_buffers(), the kind's own methods with the
// scaling of data.standardize around them) computes the C++'s φ and Jᵀ g, and the exported potential's gradient the
// C++ model's dV/dx (autograd through φ's differentiable form), in float64 to 1e-14: both sides run the same
// operations on the same numbers but for the MLP's backward sweep (autograd's against export's written-out one),
// whose few roundings per element stay near 1e-16 relative on these well-scaled rows.
class FeatureScript : public ::testing::TestWithParam<std::tuple<config::FeatureKind, bool>> {};

TEST_P(FeatureScript, EqualsTheCppInFloat64) {
  const auto [kind, scaled] = GetParam();
  const config::ModelSpec spec = model_spec({9, 7}, Activation::silu, config::DType::float64, kind);
  const int64_t dim = kind == config::FeatureKind::inverse_distances ? 12 : 6;  // 4 atoms, or 6 components
  torch::manual_seed(2);
  auto x = torch::randn({33, dim}, torch::kFloat64);
  if (kind == config::FeatureKind::inverse_distances)  // atoms well apart
    x = (x + torch::arange(dim, torch::kFloat64).remainder(3) * 2) * 0.7;
  model::Features features(spec, dim);
  std::vector<double> mean, scale;
  for (int64_t i = 0; scaled && i < features.dim(); ++i) mean.push_back(0.1 * i - 0.2), scale.push_back(0.5 + 0.25 * i);
  features.set_scaling(mean, scale);

  torch::jit::Module script("__torch__.gradfit.FeaturesOnly");
  for (const auto& [name, buffer] : features.script_buffers(torch::kFloat64)) script.register_buffer(name, buffer);
  script.define(features.script());
  const torch::NoGradGuard no_grad;
  const auto at = features.at(x);
  EXPECT_LE(rel_diff(script.run_method("features", x).toTensor(), at.phi), 1e-14);
  const auto g = torch::randn({x.size(0), features.dim()}, torch::kFloat64);
  EXPECT_LE(rel_diff(script.run_method("features_transpose", x, g).toTensor(), features.transpose_times(at, g)), 1e-14);

  auto mlp = model::make_mlp(spec, dim, /*seed=*/6);
  mlp->set_features(features);
  auto run = saved_run_of(mlp, spec, dim);
  run.standardization.feature_mean = mean;
  run.standardization.feature_scale = scale;
  auto potential = scripted_potential(run);
  const auto [v, dv_dx] = [&] {
    const torch::AutoGradMode grad(true);
    return reference(mlp, x);
  }();
  EXPECT_LE(rel_diff(potential.forward({x}).toTensor(), v), 1e-14);
  EXPECT_LE(rel_diff(potential.get_method("gradient")({x}).toTensor(), dv_dx), 1e-14);
  EXPECT_EQ(potential.attr("features").toStringRef(), config::to_string(kind));
}

// The identity is never scaled (data.standardize scales x itself).
INSTANTIATE_TEST_SUITE_P(EveryKind, FeatureScript,
                         ::testing::Values(std::tuple{config::FeatureKind::identity, false},
                                           std::tuple{config::FeatureKind::inverse_distances, false},
                                           std::tuple{config::FeatureKind::inverse_distances, true},
                                           std::tuple{config::FeatureKind::periodic, false},
                                           std::tuple{config::FeatureKind::periodic, true}),
                         [](const auto& info) {
                           return std::string(config::to_string(std::get<0>(info.param))) +
                                  (std::get<1>(info.param) ? "_scaled" : "");
                         });

// A results file of runs written the way io/results.cpp writes them (the attributes read_saved_run needs).
void write_run(const io::Location& runs, const std::string& name, const std::string& id, const std::string& status,
               double error, model::Mlp& mlp, const config::ModelSpec& spec, int64_t dim) {
  const auto group = runs.create_group(name);
  group.write_attribute("id", id);
  group.write_attribute("status", status);
  group.write_attribute("final_rel_grad_error", error);
  group.write_attribute("widths", spec.widths);
  group.write_attribute("activation", std::string(config::to_string(spec.activation)));
  group.write_attribute("dtype", std::string(config::to_string(spec.dtype)));
  group.write_attribute("dim", dim);
  NamedTensors parameters;
  for (const auto& item : mlp->named_parameters()) parameters.emplace_back(item.key(), item.value().detach());
  io::write_parameters(group.create_group("model"), parameters);
}

TEST(SavedRun, ChoosesARunByNameIdOrBest) {
  testing::TempDir dir;
  const config::ModelSpec spec = model_spec({4}, Activation::tanh, config::DType::float64);
  auto a = model::make_mlp(spec, 2, 1), b = model::make_mlp(spec, 2, 2), c = model::make_mlp(spec, 2, 3);
  const auto path = dir.file("results.h5");
  {
    const auto file = io::File::create(path);
    const auto runs = file.create_group("runs");
    write_run(runs, "lr=0.1", "id_a", "done", 0.3, a, spec, 2);
    write_run(runs, "lr=0.2", "id_b", "early_stopped", 0.1, b, spec, 2);
    write_run(runs, "lr=0.3", "id_c", "diverged", 0.01, c, spec, 2);  // never best: diverged
  }
  EXPECT_EQ(io::read_saved_run(path, "lr=0.1").id, "id_a");
  EXPECT_EQ(io::read_saved_run(path, "id_c").name, "lr=0.3");
  EXPECT_EQ(io::read_saved_run(path, "best").name, "lr=0.2");
  EXPECT_EQ(io::read_saved_run(path + "#lr=0.3", "").id, "id_c");
  const auto run = io::read_saved_run(path, "id_b");
  auto rebuilt = io::make_model(run);
  const auto x = torch::randn({5, 2}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), b->forward(x)));
  EXPECT_THROW_MATCHING(io::read_saved_run(path, "nope"), IoError, "no run named or with id 'nope'.*lr=0.1, lr=0.2");
  EXPECT_THROW_MATCHING(io::read_saved_run(path, ""), IoError, "holds 3 runs; say which.*--run");
  EXPECT_THROW_MATCHING(io::read_saved_run(dir.file("absent.h5"), ""), IoError, "absent.h5: no such file");
}

TEST(SavedRun, RefusesWeightsThatDoNotFitTheArchitecture) {
  testing::TempDir dir;
  const config::ModelSpec spec = model_spec({4}, Activation::tanh, config::DType::float64);
  auto wrong = model::make_mlp(model_spec({5}, Activation::tanh, config::DType::float64), 2, 1);
  const auto path = dir.file("results.h5");
  {
    const auto file = io::File::create(path);
    write_run(file.create_group("runs"), "r", "id", "done", 0.1, wrong, spec, 2);
  }
  EXPECT_THROW_MATCHING(io::read_saved_run(path, ""), IoError,
                        "run 'r': dataset 'model/layers.0.weight' does not have the shape of the architecture 2-4-1");
}

}  // namespace
}  // namespace gradfit::inference
