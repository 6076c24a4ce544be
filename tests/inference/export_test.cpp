// A saved run read back (io/saved_run.h), exported as TorchScript (inference/export.h) and loaded with
// torch::jit::load: its forward and gradient equal the model's own V and dV/dx (autograd), per activation and dtype;
// an atom_centered run's energy, dE/dx and virial equal the frames code's (model/analytic_frames.h) on molecules and
// in periodic cells.
#include "inference/export.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include "common/error.h"
#include "io/h5.h"
#include "io/results.h"
#include "io/saved_run.h"
#include "model/analytic.h"
#include "model/analytic_frames.h"
#include "model/features_atom_centered.h"
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

// An atom_centered run of elements H, C, O (random weights, element energies -0.5, -38, -75) and its export.
struct AtomsExport {
  io::SavedRun run;
  torch::jit::Module module;
};

AtomsExport atoms_export(const testing::TempDir& dir) {
  config::ModelSpec spec = model_spec({6, 5}, Activation::softplus, config::DType::float64);
  spec.features = config::FeatureKind::atom_centered;
  spec.numbers = {6, 8, 1};
  auto& d = spec.descriptor;
  d.radial_cutoff = 3.0, d.angular_cutoff = 2.4, d.radial_eta = 4, d.angular_eta = 3, d.zeta = 4;
  d.radial_divisions = 4, d.angular_divisions = 2, d.angle_sections = 3;
  const int64_t dim = 3 * static_cast<int64_t>(spec.numbers.size());
  auto mlp = model::make_mlp(spec, dim, /*seed=*/3);
  auto run = saved_run_of(mlp, spec, dim);
  run.standardization.element_energies = {-0.5, -38.0, -75.0};  // H, C, O
  const auto path = dir.file("atoms.pt");
  export_model(run, path);
  return {run, torch::jit::load(path)};
}

// One frame: atomic numbers, positions (atoms × 3, Å), cell.
struct Frame {
  std::vector<int64_t> numbers;
  std::vector<double> positions;
  model::neighbours::Cell cell;
};

// The frames code's E (with the element energies), dE/dx (atoms × 3) and W (3 × 3) of each frame, as eval computes
// them (inference/evaluate.cpp: predict_frames).
model::FramesAnalyticLoss::Predictions frames_code(const io::SavedRun& run, const std::vector<Frame>& frames) {
  auto mlp = io::make_model(run);
  std::vector<torch::Tensor> params;
  for (const auto& p : mlp->parameters()) params.push_back(p.detach().unsqueeze(0));
  const auto elements = model::distinct_elements(run.model.numbers);
  model::FramesAnalyticLoss loss(run.model.activation, params, model::network_shape(run.model, run.input_dim),
                                 run.model.descriptor, elements, /*chunk_atoms=*/1000, /*largest_frame=*/100);
  std::vector<model::FrameView> views;
  std::vector<std::vector<double>> unused;
  for (const auto& f : frames) {
    const auto atoms = static_cast<int64_t>(f.numbers.size());
    unused.emplace_back(3 * f.numbers.size(), 0.0);
    views.push_back({atoms, f.positions.data(), f.numbers.data(), unused.back().data(), &f.cell, 0.0});
  }
  auto out = loss.predict(views);
  for (size_t k = 0; k < frames.size(); ++k)
    out.values[static_cast<int64_t>(k)] +=
        model::atoms_energy_of(run.standardization.element_energies, elements, frames[k].numbers);
  out.virials = out.virials.reshape({-1, 3, 3});
  return out;
}

torch::Tensor positions_of(const Frame& f) {
  return torch::tensor(f.positions, torch::kFloat64).reshape({1, -1});
}

torch::Tensor cell_of(const Frame& f) {
  std::vector<double> rows;
  for (const auto& row : f.cell.vectors) rows.insert(rows.end(), row.begin(), row.end());
  return torch::tensor(rows, torch::kFloat64).reshape({3, 3});
}

torch::Tensor pbc_of(const Frame& f) {
  return torch::tensor(std::vector<int64_t>{f.cell.periodic[0], f.cell.periodic[1], f.cell.periodic[2]});
}

// Frame f with its last atom moved by the lattice vector n·H (the same structure, an atom outside the cell).
Frame moved(Frame f, const std::array<double, 3>& n) {
  for (size_t k = 0; k < 3; ++k)
    for (size_t c = 0; c < 3; ++c) f.positions[f.positions.size() - 3 + c] += n[k] * f.cell.vectors[k][c];
  return f;
}

// A molecule, a cubic cell, a triclinic cell shorter along a than the cutoff (each atom sees its own images), a slab
// with a zero c and a wire, their atoms at least 0.7 Å apart; in the periodic frames the last atom is moved by whole
// lattice vectors, so that it lies cells away from the others.
std::vector<Frame> test_frames() {
  using Rows = std::array<std::array<double, 3>, 3>;
  const auto cell = [](Rows rows, std::array<bool, 3> periodic) { return model::neighbours::Cell{rows, periodic}; };
  return {
      {{6, 8, 1, 1, 1},
       {0, 0, 0, 1.4, 0, 0, -0.6, 0.9, 0.1, -0.5, -0.9, 0.3, 2.9, 0.8, -0.4},
       cell(Rows{}, {false, false, false})},
      moved({{6, 8, 1, 1},
             {0.3, 0.2, 0.1, 1.5, 0.4, 0.2, 4.0, 3.9, 0.3, 2.2, 2.0, 2.4},
             cell(Rows{{{4.2, 0, 0}, {0, 4.2, 0}, {0, 0, 4.2}}}, {true, true, true})},
            {2, 0, -1}),
      moved({{6, 8, 1, 1},
             {0.1, 0.2, 0.3, 1.2, 2.6, 1.9, 0.9, 1.4, 3.4, -1.0, 3.1, 2.2},
             cell(Rows{{{2.6, 0, 0}, {0.7, 4.2, 0}, {-0.5, 0.8, 4.5}}}, {true, true, true})},
            {0, -2, 1}),
      moved({{6, 8, 1},
             {0.2, 0.1, 0.0, 1.3, 1.5, 0.4, 0.6, 2.9, -0.5},
             cell(Rows{{{2.3, 0, 0}, {0.5, 3.9, 0}, {0, 0, 0}}}, {true, true, false})},
            {-1, 2, 0}),
      moved({{6, 1, 1},
             {0.0, 0.0, 0.0, 1.1, 0.1, 0.4, -0.2, 1.0, 1.3},
             cell(Rows{{{0, 0, 0}, {0, 0, 0}, {0.3, 0.2, 2.5}}}, {false, false, true})},
            {0, 0, -3}),
  };
}

// max |a − b| / max |b|.
double relative_to_largest(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

// The exported module's E, dE/dx and W (energy_gradient_virial) on each frame equal the frames code's in float64, to
// 1e-12 relative to their largest magnitude: the same terms summed in other orders. forward and gradient give the
// same E and dE/dx, and a molecule's calls without a cell the same as with pbc all false, to 1e-14 (not bit for
// bit: TorchScript's first, profiling, run of a method may round otherwise than its later runs).
TEST(ExportAtoms, EqualsTheFramesCodeOnMoleculesAndCells) {
  testing::TempDir dir;
  auto [run, module] = atoms_export(dir);
  const auto frames = test_frames();
  const auto expected = frames_code(run, frames);
  for (size_t k = 0, at = 0; k < frames.size(); at += frames[k].numbers.size(), ++k) {
    const auto& f = frames[k];
    const auto x = positions_of(f);
    const auto z = torch::tensor(f.numbers);
    const auto a = static_cast<int64_t>(f.numbers.size());
    const auto out = module.get_method("energy_gradient_virial")({x, z, cell_of(f), pbc_of(f)}).toTuple();
    const auto e = out->elements()[0].toTensor(), g = out->elements()[1].toTensor(), w = out->elements()[2].toTensor();
    const auto e_ref = expected.values.slice(0, k, k + 1);
    const auto g_ref = expected.grads.slice(0, at, at + a).reshape({1, -1});
    const auto w_ref = expected.virials.slice(0, k, k + 1);
    SCOPED_TRACE("frame " + std::to_string(k));
    ASSERT_EQ(g.sizes(), x.sizes());
    ASSERT_EQ(w.sizes(), (std::vector<int64_t>{1, 3, 3}));
    EXPECT_LE(relative_to_largest(e, e_ref), 1e-12);
    EXPECT_LE(relative_to_largest(g, g_ref), 1e-12);
    EXPECT_LE(relative_to_largest(w, w_ref), 1e-12);
    EXPECT_GT(w_ref.abs().max().item<double>(), 1e-6);  // not a trivial zero
    const auto same = [](const torch::Tensor& a, const torch::Tensor& b) { return relative_to_largest(a, b); };
    EXPECT_LE(same(module.forward({x, z, cell_of(f), pbc_of(f)}).toTensor(), e), 1e-14);
    EXPECT_LE(same(module.get_method("gradient")({x, z, cell_of(f), pbc_of(f)}).toTensor(), g), 1e-14);
    if (!f.cell.any_periodic()) {
      EXPECT_LE(same(module.forward({x, z}).toTensor(), e), 1e-14);
      EXPECT_LE(same(module.get_method("gradient")({x, z}).toTensor(), g), 1e-14);
    }
  }
}

// Frames of one set of atoms called at once, each with a cell of its own (B × 3 × 3), equal the frames called one
// at a time; a cell of 3 × 3 applies to every frame, and pbc left out is periodic along a, b and c.
TEST(ExportAtoms, TakesFramesWithCellsOfTheirOwn) {
  testing::TempDir dir;
  auto [run, module] = atoms_export(dir);
  const Frame f = test_frames()[2];
  torch::manual_seed(4);
  const int64_t frames = 4;
  const auto x =
      positions_of(f) + 0.05 * torch::randn({frames, 3 * static_cast<int64_t>(f.numbers.size())}, torch::kFloat64);
  const auto cells = cell_of(f).unsqueeze(0) + 0.1 * torch::randn({frames, 3, 3}, torch::kFloat64);
  const auto z = torch::tensor(f.numbers);
  const auto all = module.get_method("energy_gradient_virial")({x, z, cells, pbc_of(f)}).toTuple()->elements();
  for (int64_t b = 0; b < frames; ++b) {
    const auto one =
        module.get_method("energy_gradient_virial")({x.slice(0, b, b + 1), z, cells[b], pbc_of(f)}).toTuple();
    for (size_t i = 0; i < 3; ++i)
      EXPECT_LE(relative_to_largest(all[i].toTensor().slice(0, b, b + 1), one->elements()[i].toTensor()), 1e-14)
          << "frame " << b << ", output " << i;
  }
  const auto shared = module.forward({x, z, cells[1]}).toTensor();
  const auto each = module.forward({x, z, cells[1].expand({frames, 3, 3}), torch::ones({3})}).toTensor();
  EXPECT_LE(relative_to_largest(shared, each), 1e-14);
}

// What the module cannot take is an error whose message says what: an atom of an element without a network (named),
// periodic lattice vectors that span no volume, pbc without a cell, a cell of another shape.
TEST(ExportAtoms, RefusesWhatItCannotTake) {
  testing::TempDir dir;
  auto [run, module] = atoms_export(dir);
  const Frame f = test_frames()[1];
  const auto x = positions_of(f);
  const auto z = torch::tensor(f.numbers);
  const auto forward = [&](const std::vector<c10::IValue>& inputs) { module.forward(inputs); };
  EXPECT_THROW_MATCHING(forward({x, torch::tensor(std::vector<int64_t>{6, 7, 1, 1}), cell_of(f)}), std::exception,
                        "atom 1 has atomic number 7, an element this model has no network for \\(its elements: H, C, "
                        "O\\)");
  auto flat = cell_of(f);
  flat[2] = 2 * flat[0];
  EXPECT_THROW_MATCHING(forward({x, z, flat}), std::exception,
                        "frame 0: the cell's periodic lattice vectors span no volume");
  forward({x, z, flat, torch::tensor(std::vector<int64_t>{1, 1, 0})});  // c is not periodic: any vector will do
  EXPECT_THROW_MATCHING(forward({x, z, c10::IValue(), pbc_of(f)}), std::exception,
                        "pbc has a periodic direction, but there is no cell");
  EXPECT_THROW_MATCHING(forward({x, z, torch::zeros({2, 3})}), std::exception, "cell of shape \\[2, 3\\]: 3 x 3");
  EXPECT_THROW_MATCHING(forward({x.slice(1, 0, 9), z}), std::exception, "x of shape \\[1, 9\\]: B x 3a coordinates");
}

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
