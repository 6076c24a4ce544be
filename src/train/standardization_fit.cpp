#include "train/standardization_fit.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "model/features_atom_centered.h"
#include "model/mlp.h"
#include "train/batches.h"

namespace gradfit::train {
namespace {

constexpr int64_t kBlockRows = int64_t{1} << 13;

// Per local row, 1 for a training row and 0 for a held-out one (float64, on the CPU).
torch::Tensor training_weights(const data::Dataset& data, const config::TrainSpec& spec) {
  auto weights = torch::ones({data.shard.count}, torch::kFloat64);
  const auto held_out = holdout_rows(data.total_rows, spec.val_fraction, spec.seed);
  if (held_out.empty()) return weights;
  auto* w = weights.data_ptr<double>();
  for (int64_t i = 0; i < data.shard.count; ++i) w[i] = held_out[data.shard.begin + i] ? 0.0 : 1.0;
  return weights;
}

// Rows [first, first + rows) of a shard tensor, in float64 on the CPU.
torch::Tensor block_of(const torch::Tensor& t, int64_t first, int64_t rows) {
  return t.narrow(0, first, rows).to(torch::kCPU, torch::kFloat64);
}

// The weighted column sums of `f`(block) over the shard (n values), a block of rows at a time.
template <class F>
std::vector<double> column_sums(const data::Dataset& data, const torch::Tensor& weights, F f) {
  auto sums = torch::zeros({data.dim}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    sums += (f(first, rows) * weights.narrow(0, first, rows).unsqueeze(1)).sum(0);
  }
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + data.dim);
}

// First pass: μ and v0 (from the sums of x, the training row count and the sum of values).
void fit_means(const data::Dataset& data, const torch::Tensor& weights, const parallel::Comm& comm,
               model::Standardization& st, double& count) {
  const auto n = static_cast<size_t>(data.dim);
  std::vector<double> sums = column_sums(data, weights, [&](int64_t f, int64_t r) { return block_of(data.x, f, r); });
  sums.push_back(weights.sum().item<double>());
  sums.push_back(data.has_values() ? (data.values.to(torch::kCPU, torch::kFloat64) * weights).sum().item<double>()
                                   : 0.0);
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  count = sums[n];
  st.mean.assign(sums.begin(), sums.begin() + data.dim);
  for (double& m : st.mean) m = count > 0 ? m / count : 0.0;
  st.value_offset = count > 0 ? sums[n + 1] / count : 0.0;
}

}  // namespace

model::Standardization fit_standardization(const data::Dataset& data, const config::TrainSpec& spec,
                                           const parallel::Comm& comm) {
  const auto weights = training_weights(data, spec);
  model::Standardization st;
  double count = 0;
  fit_means(data, weights, comm, st, count);
  const auto mean = torch::tensor(st.mean, torch::kFloat64);
  std::vector<double> sums =
      column_sums(data, weights, [&](int64_t f, int64_t r) { return (block_of(data.x, f, r) - mean).square(); });
  const auto s_sums =
      column_sums(data, weights, [&](int64_t f, int64_t r) { return block_of(data.grad_samples, f, r).square(); });
  sums.insert(sums.end(), s_sums.begin(), s_sums.end());
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  double target_sq = 0;
  st.scale.resize(st.mean.size());
  for (size_t i = 0; i < st.scale.size(); ++i) {
    const double sigma = count > 0 ? std::sqrt(sums[i] / count) : 0.0;
    const bool constant = !(sigma > 1e-12 * std::abs(st.mean[i]));  // also 0 and NaN
    st.scale[i] = constant ? 1.0 : sigma;
    target_sq += st.scale[i] * st.scale[i] * sums[st.scale.size() + i];
  }
  const double rms = count > 0 ? std::sqrt(target_sq / (count * static_cast<double>(data.dim))) : 0.0;
  st.value_scale = rms > 0 && std::isfinite(rms) ? rms : 1.0;
  return st;
}

model::Standardization fit_feature_standardization(const data::Dataset& data, const config::RunSpec& run,
                                                   const parallel::Comm& comm) {
  const auto weights = training_weights(data, run.train);
  const model::Features features(run.model, data.dim);
  const int64_t m = features.dim();
  const auto phi_of = [&](int64_t first, int64_t rows) { return features(block_of(data.x, first, rows)); };
  // μ_φ and the training rows' count and value sum, then Σ (φ − μ_φ)² and Σ S², in float64.
  auto sums = torch::zeros({m + 2}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    const auto w = weights.narrow(0, first, rows);
    sums.narrow(0, 0, m) += (phi_of(first, rows) * w.unsqueeze(1)).sum(0);
    sums[m] += w.sum();
    if (data.has_values()) sums[m + 1] += (block_of(data.values, first, rows) * w).sum();
  }
  comm.allreduce_sum(sums.data_ptr<double>(), m + 2);
  const double count = sums[m].item<double>();
  const auto mean = count > 0 ? sums.narrow(0, 0, m) / count : torch::zeros({m}, torch::kFloat64);
  auto squares = torch::zeros({m + 1}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    const auto w = weights.narrow(0, first, rows);
    squares.narrow(0, 0, m) += ((phi_of(first, rows) - mean).square() * w.unsqueeze(1)).sum(0);
    squares[m] += (block_of(data.grad_samples, first, rows).square().sum(1) * w).sum();
  }
  comm.allreduce_sum(squares.data_ptr<double>(), m + 1);
  model::Standardization st;
  st.mean.assign(static_cast<size_t>(data.dim), 0.0);  // x stays as it is
  st.scale.assign(static_cast<size_t>(data.dim), 1.0);
  st.value_offset = count > 0 ? sums[m + 1].item<double>() / count : 0.0;
  for (int64_t j = 0; j < m; ++j) {
    const double mu = mean[j].item<double>();
    const double sigma = count > 0 ? std::sqrt(squares[j].item<double>() / count) : 0.0;
    st.feature_mean.push_back(mu);
    st.feature_scale.push_back(sigma > 1e-12 * std::abs(mu) ? sigma : 1.0);  // a constant feature keeps σ = 1
  }
  const double rms = count > 0 ? std::sqrt(squares[m].item<double>() / (count * static_cast<double>(data.dim))) : 0;
  st.value_scale = rms > 0 && std::isfinite(rms) ? rms : 1.0;
  return st;
}

namespace {

// t = transform(t), in place, a block of rows at a time (the float64 intermediates stay one block's size).
template <class F>
void transform_in_blocks(const torch::Tensor& t, F transform) {
  for (int64_t first = 0; first < t.size(0); first += kBlockRows) {
    auto block = t.narrow(0, first, std::min(kBlockRows, t.size(0) - first));
    block.copy_(transform(block));
  }
}

}  // namespace

void standardize_dataset(data::Dataset& data, const model::Standardization& st) {
  torch::NoGradGuard no_grad;
  if (st.active()) {
    transform_in_blocks(data.x, [&](const torch::Tensor& b) { return model::standardize_inputs(st, b); });
    transform_in_blocks(data.grad_samples, [&](const torch::Tensor& b) { return model::standardize_gradients(st, b); });
  }
  if (data.has_values())
    transform_in_blocks(data.values, [&](const torch::Tensor& b) { return model::standardize_values(st, b); });
  data.standardization = st;
}

void normalize_weights(data::Dataset& data, const config::TrainSpec& spec, const parallel::Comm& comm) {
  if (!data.has_weights()) return;
  const auto training = training_weights(data, spec);
  double sums[2] = {(data.weights.to(torch::kCPU, torch::kFloat64) * training).sum().item<double>(),
                    training.sum().item<double>()};
  comm.allreduce_sum(sums, 2);
  if (!(sums[0] > 0))  // every rank has the same sums
    throw CollectiveError(data.description + ": dataset 'weight': the training rows' weights sum to 0");
  const double mean = sums[0] / sums[1];
  data.weights = (data.weights.to(torch::kFloat64) / mean).to(data.weights.scalar_type());
}

void fit_element_energies(const data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm,
                          model::Standardization& st) {
  if (!config::features_need_elements(run.model) || !data.has_values()) return;
  const auto weights = training_weights(data, run.train);
  double sums[2] = {weights.sum().item<double>(),
                    (data.values.to(torch::kCPU, torch::kFloat64) * weights).sum().item<double>()};
  comm.allreduce_sum(sums, 2);
  const double mean = sums[0] > 0 ? sums[1] / sums[0] : 0.0;
  const auto elements = model::distinct_elements(run.model.numbers);
  std::vector<double> counts;  // n_Z, per element
  for (const int64_t z : elements)
    counts.push_back(static_cast<double>(std::count(run.model.numbers.begin(), run.model.numbers.end(), z)));
  double squares = 0;
  for (const double c : counts) squares += c * c;
  for (const double c : counts) st.element_energies.push_back(c * mean / squares);
  st.atoms_energy = model::atoms_energy_of(st.element_energies, elements, run.model.numbers);
}

namespace {

// Σ_f n_f n_fᵀ (S × S) and Σ_f n_f E_f (S) over this shard's training frames, n_f the frame's atoms per element:
// the normal equations of min Σ_f (E_f − n_f · b)², flat (S² + S).
std::vector<double> composition_sums(const data::Dataset& data, const torch::Tensor& training) {
  const auto& frames = *data.frames;
  const size_t species = data.numbers.size();
  std::vector<double> sums(species * species + species, 0.0), counts(species);
  const auto values = data.values.to(torch::kCPU, torch::kFloat64).contiguous();
  for (size_t f = 0, atom = 0; f < frames.atoms.size(); atom += static_cast<size_t>(frames.atoms[f]), ++f) {
    if (training.data_ptr<double>()[f] == 0) continue;
    std::fill(counts.begin(), counts.end(), 0.0);
    for (size_t a = atom; a < atom + static_cast<size_t>(frames.atoms[f]); ++a)
      counts[static_cast<size_t>(std::lower_bound(data.numbers.begin(), data.numbers.end(), frames.numbers[a]) -
                                 data.numbers.begin())] += 1;
    for (size_t i = 0; i < species; ++i) {
      for (size_t j = 0; j < species; ++j) sums[i * species + j] += counts[i] * counts[j];
      sums[species * species + i] += counts[i] * values.data_ptr<double>()[f];
    }
  }
  return sums;
}

// The least-squares solution of least norm of M b = y (M symmetric, positive semi-definite): b = Σ_k v_k (v_k · y) /
// λ_k over the eigenpairs with λ_k > 1e-10 λ_max (smaller ones are the rounding of directions that the frames'
// compositions leave undetermined, whose b is left 0, as numpy.linalg.lstsq leaves them).
std::vector<double> least_norm_solution(const std::vector<double>& normal, size_t species) {
  const auto m = torch::tensor(std::vector<double>(normal.begin(), normal.begin() + species * species), torch::kFloat64)
                     .view({static_cast<int64_t>(species), static_cast<int64_t>(species)});
  const auto y = torch::tensor(std::vector<double>(normal.begin() + species * species, normal.end()), torch::kFloat64);
  const auto [lambda, vectors] = torch::linalg_eigh(m);
  const double largest = lambda.max().item<double>();
  const auto kept = lambda > 1e-10 * largest;
  const auto inverse =
      torch::where(kept, 1.0 / torch::where(kept, lambda, torch::ones_like(lambda)), torch::zeros_like(lambda));
  const auto b = vectors.matmul(inverse * vectors.t().matmul(y)).contiguous();
  return std::vector<double>(b.data_ptr<double>(), b.data_ptr<double>() + species);
}

}  // namespace

void fit_frames_element_energies(data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm,
                                 model::Standardization& st) {
  if (!data.has_values()) return;
  const size_t species = data.numbers.size();
  auto normal = composition_sums(data, training_weights(data, run.train));
  comm.allreduce_sum(normal.data(), static_cast<int64_t>(normal.size()));
  st.element_energies = least_norm_solution(normal, species);
  st.atoms_energy = model::atoms_energy_of(st.element_energies, data.numbers, data.numbers);
  const auto shifts = data::element_energy_sums(*data.frames, st.element_energies, data.numbers);
  torch::NoGradGuard no_grad;
  data.values.sub_(torch::tensor(shifts, torch::kFloat64).to(data.values.options()));
}

void prepare_dataset(data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm) {
  if (data.is_frames()) {  // no standardization or row weights (config/ checks); element energies per frame
    data::check_frame_geometry(data, run.model.descriptor, data.numbers, comm);
    model::Standardization st;
    fit_frames_element_energies(data, run, comm, st);
    data.standardization = st;
    return;
  }
  normalize_weights(data, run.train, comm);
  model::Standardization st;
  if (run.data.standardize)
    st = model::Features(run.model, data.dim).is_identity() ? fit_standardization(data, run.train, comm)
                                                            : fit_feature_standardization(data, run, comm);
  fit_element_energies(data, run, comm, st);
  if (st.active() || !st.element_energies.empty()) standardize_dataset(data, st);
}

namespace {

// The element-wise loss of train.loss on residuals r (float64): r² or huber_δ(r) (model/loss.h).
torch::Tensor element_loss(const torch::Tensor& r, const config::TrainSpec& spec) {
  if (spec.loss != config::Loss::huber) return r.square();
  const double delta = spec.huber_delta;
  const auto a = r.abs();
  return torch::where(a < delta, 0.5 * r.square(), delta * (a - 0.5 * delta));
}

// Where error_sums puts one run's sums over the shard (model units, float64), per component i where it says (i):
// over the training rows Σ r̃_i², Σ S̃_i², Σ ℓ(r̃_i) (ℓ: train.loss) and Σ (Ṽ − ṽ)²; over the held-out rows Σ ℓ(r̃_i)
// and Σ (Ṽ − ṽ)².
struct SumLayout {
  int64_t n;
  int64_t sse() const { return 0; }
  int64_t target() const { return n; }
  int64_t loss() const { return 2 * n; }
  int64_t value() const { return 3 * n; }
  int64_t val_loss() const { return 3 * n + 1; }
  int64_t val_value() const { return 4 * n + 1; }
  int64_t size() const { return 4 * n + 2; }
};

std::vector<double> error_sums(model::Mlp& mlp, const data::Dataset& data, const torch::Tensor& weights,
                               const config::TrainSpec& spec) {
  const SumLayout at{data.dim};
  auto sums = torch::zeros({at.size()}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    const auto x = data.x.narrow(0, first, rows).detach().requires_grad_(true);
    const auto v = mlp->forward(x);
    const auto g = torch::autograd::grad({v}, {x}, /*grad_outputs=*/{torch::ones_like(v)}, /*retain_graph=*/false,
                                         /*create_graph=*/false)[0];
    auto train = weights.narrow(0, first, rows).unsqueeze(1), val = 1.0 - train;
    if (data.has_weights()) {  // each row's normalized weight
      const auto w = block_of(data.weights, first, rows).unsqueeze(1);
      train = train * w, val = val * w;
    }
    const auto r = block_of(g, 0, rows) - block_of(data.grad_samples, first, rows);
    const auto loss = element_loss(r, spec);
    sums.narrow(0, at.sse(), at.n) += (r.square() * train).sum(0);
    sums.narrow(0, at.target(), at.n) += (block_of(data.grad_samples, first, rows).square() * train).sum(0);
    sums.narrow(0, at.loss(), at.n) += (loss * train).sum(0);
    sums.narrow(0, at.val_loss(), at.n) += (loss * val).sum(0);
    if (!data.has_values()) continue;
    const auto* layout = mlp->features().kind().atom_layout();  // the energy error per atom, as the loss's
    const double atoms = layout != nullptr ? static_cast<double>(layout->element_of_atom.size()) : 1.0;
    const auto ve2 =
        ((block_of(v.detach(), 0, rows) - block_of(data.values, first, rows)) / atoms).square().unsqueeze(1);
    sums[at.value()] += (ve2 * train).sum();
    sums[at.val_value()] += (ve2 * val).sum();
  }
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
}

model::Mlp model_of(const config::RunSpec& run, const data::Dataset& data, const NamedTensors& weights) {
  auto mlp = model::make_mlp(run.model, data.dim, /*seed=*/0);
  mlp->set_features(model::features_for(run.model, data.dim, data.standardization));
  torch::NoGradGuard no_grad;
  auto named = mlp->named_parameters();
  for (const auto& [name, tensor] : weights) named[name].copy_(tensor);
  mlp->to(data.x.device());
  for (auto& p : mlp->parameters()) p.requires_grad_(false);  // derivatives by x only
  return mlp;
}

}  // namespace

void final_metrics_in_user_units(std::vector<records::TrainResult>& results, const config::RunSpec& run,
                                 const data::Dataset& data, const parallel::Comm& comm) {
  const auto& st = data.standardization;
  if (!st.active()) return;
  const auto weights = training_weights(data, run.train);
  const auto factors = model::squared_gradient_factors(st, data.dim);
  const auto n = static_cast<size_t>(data.dim);
  const double value_weight = data.has_values() ? run.train.value_weight : 0.0, s2 = st.value_scale * st.value_scale;
  double train_count = weights.sum().item<double>();
  comm.allreduce_sum(&train_count, 1);
  const double val_count = static_cast<double>(data.total_rows) - train_count;
  const SumLayout at{data.dim};
  for (auto& result : results) {
    auto mlp = model_of(run, data, result.parameters);
    std::vector<double> sums = error_sums(mlp, data, weights, run.train);
    comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
    double train_sse = 0, target_sq = 0, train_loss = 0, val_loss = 0;
    for (size_t i = 0; i < n; ++i) {
      train_sse += factors[i] * sums[at.sse() + i];
      target_sq += factors[i] * sums[at.target() + i];
      train_loss += factors[i] * sums[at.loss() + i];
      val_loss += factors[i] * sums[at.val_loss() + i];
    }
    const double dims = static_cast<double>(n);
    auto& final = result.final;
    final.train_loss = train_loss / (train_count * dims) + value_weight * s2 * sums[at.value()] / train_count;
    final.rel_grad_error = target_sq > 0 ? std::sqrt(train_sse / target_sq) : std::sqrt(train_sse);
    if (val_count > 0 && run.train.val_fraction > 0)
      final.val_loss = val_loss / (val_count * dims) + value_weight * s2 * sums[at.val_value()] / val_count;
  }
}

}  // namespace gradfit::train
