// model.features atom_centered: the ANI descriptor and the per-element networks summed over the atoms. Training
// through them is held to PyTorch's (tests/train/atom_centered_reference.py) by cli.atom_centered_matches_pytorch;
// here, what the class promises on its own, in float64.
#include "model/features_atom_centered.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/atom_centered_molecule.h"
#include "model/features.h"
#include "model/mlp.h"

namespace gradfit::model {
namespace {

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

using small_molecule::kNumbers;

config::ModelSpec spec_of(const std::vector<int64_t>& numbers) {
  return small_molecule::small_descriptor_spec(numbers, config::Activation::tanh);
}

torch::Tensor frames(int64_t rows) {
  return small_molecule::molecule_frames(rows);
}

// x with every atom turned about an axis and moved by one vector, and atoms 2, 3, 4 (the H atoms) taken in the
// order 3, 4, 2.
torch::Tensor moved(const torch::Tensor& x, const torch::Tensor& rotation) {
  const auto turned = x.view({x.size(0), 5, 3}).matmul(rotation.t()) + torch::tensor({1.5, -2.0, 0.3}, torch::kFloat64);
  return turned.index_select(1, torch::tensor({0, 1, 3, 4, 2})).reshape({x.size(0), 15});
}

TEST(AtomCentered, LayoutNamesAndWidthsFollowTheElements) {
  const auto spec = spec_of(kNumbers);
  const Features features(spec, 15);
  const AtomLayout* layout = features.kind().atom_layout();
  ASSERT_NE(layout, nullptr);
  EXPECT_EQ(layout->elements, (std::vector<int64_t>{1, 6, 8}));
  EXPECT_EQ(layout->element_of_atom, (std::vector<int64_t>{1, 2, 0, 0, 0}));
  EXPECT_EQ(layout->width, 3 * 4 + 6 * 2 * 3);  // radial per element, angular per pair of elements
  EXPECT_EQ(features.dim(), 5 * layout->width);
  torch::manual_seed(0);
  auto model = make_mlp(spec, 15, /*seed=*/0);
  EXPECT_EQ(model->networks(), 3u);
  std::vector<std::string> names;
  int64_t count = 0;
  for (const auto& p : model->named_parameters()) names.push_back(p.key()), count += p.value().numel();
  ASSERT_EQ(names.size(), 18u);
  EXPECT_EQ(names.front(), "H.0.weight");
  EXPECT_EQ(names[6], "C.0.weight");
  EXPECT_EQ(names.back(), "O.2.bias");
  EXPECT_EQ(count, parameter_count(spec, 15));
  EXPECT_EQ(architecture(spec, 15), "atom_centered(15)-H,C,O:48-6-5-1");
}

// One radial and one angular entry against the formula written out for a 3-atom molecule (H, H, O).
TEST(AtomCentered, EntriesEqualTheFormula) {
  auto spec = spec_of({1, 1, 8});
  const Features features(spec, 9);
  const auto x = torch::tensor({{0.0, 0.0, 0.0, 0.9, 0.3, 0.0, -0.2, 1.1, 0.4}}, torch::kFloat64);
  const auto g = features(x).view({3, -1});  // per atom: radial H (4), radial O (4), angular HH, HO, OO (6 each)
  const auto& d = spec.descriptor;
  const auto fc = [](double r, double rc) { return r < rc ? 0.5 * std::cos(M_PI * r / rc) + 0.5 : 0.0; };
  const double r01 = std::sqrt(0.81 + 0.09), r02 = std::sqrt(0.04 + 1.21 + 0.16);
  // Atom 0's radial term of its H neighbour (atom 1) at the second shift.
  const double shift = d.radial_start + 1 * (d.radial_cutoff - d.radial_start) / 4;
  const double radial = 0.25 * std::exp(-d.radial_eta * (r01 - shift) * (r01 - shift)) * fc(r01, d.radial_cutoff);
  EXPECT_NEAR(g[0][1].item<double>(), radial, 1e-15);
  // Atom 0's angular term of the pair (H 1, O 2): pair index 1 (HO), R_a index 1, θ_s index 2.
  const double dot = 0.9 * -0.2 + 0.3 * 1.1 + 0.0 * 0.4;
  const double theta = std::acos(0.95 * dot / (r01 * r02));
  const double ra = d.angular_start + 1 * (d.angular_cutoff - d.angular_start) / 2;
  const double theta_s = (2 + 0.5) * M_PI / 3;
  const double mean = (r01 + r02) / 2;
  const double angular = 2 * std::pow((1 + std::cos(theta - theta_s)) / 2, d.zeta) *
                         std::exp(-d.angular_eta * (mean - ra) * (mean - ra)) * fc(r01, d.angular_cutoff) *
                         fc(r02, d.angular_cutoff);
  EXPECT_NEAR(g[0][8 + 6 + 1 * 3 + 2].item<double>(), angular, 1e-15);
  EXPECT_GT(angular, 1e-4);  // a term that matters
}

// Energies do not change, and forces turn and permute with the atoms, when the molecule turns, moves, and atoms of
// one element trade places: to 1e-12.
TEST(AtomCentered, ModelIsInvariantToRotationTranslationAndSameElementPermutation) {
  torch::manual_seed(4);
  const auto x = frames(7);
  const double c = std::cos(0.8), s = std::sin(0.8);
  const auto rotation = torch::mm(torch::tensor({{c, -s, 0.0}, {s, c, 0.0}, {0.0, 0.0, 1.0}}, torch::kFloat64),
                                  torch::tensor({{1.0, 0.0, 0.0}, {0.0, c, -s}, {0.0, s, c}}, torch::kFloat64));
  auto model = make_mlp(spec_of(kNumbers), 15, /*seed=*/3);
  const auto energy_and_gradient = [&](const torch::Tensor& points) {
    const auto leaf = points.clone().requires_grad_(true);
    const auto v = model->forward(leaf);
    const auto g = torch::autograd::grad({v.sum()}, {leaf})[0];
    return std::pair{v.detach(), g};
  };
  const auto [v, g] = energy_and_gradient(x);
  const auto [v_moved, g_moved] = energy_and_gradient(moved(x, rotation));
  EXPECT_LT(relative_difference(v_moved, v), 1e-12);
  const auto expected = moved(g, rotation) - moved(torch::zeros_like(g), rotation);  // turned and permuted, not moved
  EXPECT_LT(relative_difference(g_moved, expected), 1e-12);
}

// J r by autograd through φ: the derivative by u of (Jᵀ u) · r, Jᵀ u being linear in u.
torch::Tensor jacobian_times_by_autograd(const Features& features, const torch::Tensor& x, const torch::Tensor& r) {
  const auto leaf = x.clone().requires_grad_(true);
  const auto phi = features(leaf);
  const auto u = torch::zeros_like(phi).requires_grad_(true);
  const auto jt_u = torch::autograd::grad({phi}, {leaf}, {u}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  return torch::autograd::grad({jt_u}, {u}, {r})[0];
}

// J from the descriptor's structure, by the CPU's kernels and by LibTorch's operations (a GPU's path): Jᵀ g equals
// autograd's vector-Jacobian product through φ, and J r autograd's Jacobian-vector product, for one model's vectors
// and an ensemble's (the same 1e-14 as the other kinds); φ at the rows equals φ's differentiable operations, bit
// for bit by the same operations, to 1e-15 by the kernels (another order of the same float64 operations).
class AtomCenteredPaths : public ::testing::TestWithParam<bool> {};

TEST_P(AtomCenteredPaths, JacobianProductsMatchAutograd) {
  const bool tensor_operations = GetParam();
  torch::manual_seed(5);
  const auto x = frames(4);
  auto kind = std::make_shared<AtomCenteredFeatures>(spec_of(kNumbers).descriptor, kNumbers);
  if (tensor_operations) kind->use_tensor_operations();
  const Features features(kind);
  const auto at = features.at(x);
  const auto leaf = x.clone().requires_grad_(true);
  const auto phi = features(leaf);
  if (tensor_operations) {
    EXPECT_TRUE(torch::equal(phi.detach(), at.phi));
  } else {
    EXPECT_LT(relative_difference(at.phi, phi.detach()), 1e-15);
  }
  const auto g = torch::randn({2, 4, features.dim()}, torch::kFloat64);
  const auto r = torch::randn({2, 4, 15}, torch::kFloat64);
  for (int64_t m = 0; m < 2; ++m) {
    const auto expected = torch::autograd::grad({phi}, {leaf}, {g[m]}, /*retain_graph=*/true)[0];
    EXPECT_LT(relative_difference(features.transpose_times(at, g).select(0, m), expected), 1e-14) << "model " << m;
    EXPECT_LT(relative_difference(features.transpose_times(at, g[m]), expected), 1e-14) << "model " << m;
    const auto j_r = jacobian_times_by_autograd(features, x, r[m]);
    EXPECT_LT(relative_difference(features.times(at, r).select(0, m), j_r), 1e-14) << "model " << m;
    EXPECT_LT(relative_difference(features.times(at, r[m]), j_r), 1e-14) << "model " << m;
  }
  const double lhs = (features.times(at, r) * g).sum().item<double>();
  const double rhs = (r * features.transpose_times(at, g)).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-13 * std::abs(rhs));
}

INSTANTIATE_TEST_SUITE_P(KernelsAndTensorOperations, AtomCenteredPaths, ::testing::Bool(),
                         [](const auto& info) { return std::string(info.param ? "TensorOperations" : "Kernels"); });

// An atom beyond both cutoffs of every other atom leaves their descriptors as they are.
TEST(AtomCentered, AtomsBeyondTheCutoffsDoNotCount) {
  torch::manual_seed(6);
  const Features features(spec_of(kNumbers), 15);
  auto x = frames(3);
  x.narrow(1, 12, 3).add_(10.0);  // atom 4 (an H) far away
  const auto before = features(x).view({3, 5, -1});
  x.narrow(1, 12, 3).add_(torch::tensor({0.5, -0.3, 0.2}, torch::kFloat64));
  const auto after = features(x).view({3, 5, -1});
  EXPECT_TRUE(torch::equal(after.narrow(1, 0, 4), before.narrow(1, 0, 4)));
  EXPECT_TRUE(torch::equal(after.select(1, 4), torch::zeros_like(after.select(1, 4))));
}

TEST(AtomCentered, CoincidentAtomsAreFound) {
  torch::manual_seed(7);
  auto x = frames(5);
  const Features features(spec_of(kNumbers), 15);
  EXPECT_EQ(features.first_problem(x).row, -1);
  x[3].narrow(0, 12, 3).copy_(x[3].narrow(0, 3, 3));  // atom 4 onto atom 1
  const auto hit = features.first_problem(x);
  EXPECT_EQ(hit.row, 3);
  EXPECT_EQ(hit.what, "atoms 1 and 4 are at the same place (model.features atom_centered needs distinct atoms)");
}

}  // namespace
}  // namespace gradfit::model
