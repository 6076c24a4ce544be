#pragma once
// data.standardize (docs/config.md, "Standardization"): the transform (model::Standardization,
// model/standardization.h) fitted to a run's training rows and applied to its data before training, with the rest
// of a run's data preparation (prepare_dataset), and the run's final metrics brought back to the user's units.
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "model/standardization.h"
#include "parallel/comm.h"
#include "records/records.h"

namespace gradfit::train {

// μ_i and σ_i (population standard deviation) of each component of x over the training rows of all ranks (those
// train.val_fraction holds out excluded, as train/batches.h picks them), s = the RMS of S_i σ_i over them (so S̃
// has unit RMS) and v0 = the mean value (0 without values). A constant component (σ_i ≤ 1e-12 |μ_i|, or 0) gets
// σ_i = 1; s = 1 when every S is 0. Sums in float64, per rank and then over the ranks (one allreduce per pass, two
// passes), so every rank count gives the same numbers up to rounding. Collective over `comm`.
model::Standardization fit_standardization(const data::Dataset& data, const config::TrainSpec& spec,
                                           const parallel::Comm& comm);

// The same with model.features (docs/config.md, "Features"): x is left as it is (μ = 0, σ = 1), and μ_φ, σ_φ of
// the run's features φ(x) over the training rows go into feature_mean and feature_scale; s = the RMS of S (so
// S̃ = S / s has unit RMS), v0 as above. Collective over `comm`.
model::Standardization fit_feature_standardization(const data::Dataset& data, const config::RunSpec& run,
                                                   const parallel::Comm& comm);

// With model.features atom_centered and values in the data: each element's energy b_Z by least squares over the
// training rows of all ranks, min Σ_f (E_f − Σ_Z n_Z b_Z)² with n_Z the element's atoms in a frame. The data's frames
// all hold the same atoms, so only Σ_Z n_Z b_Z is determined; the answer is the least-squares solution of least norm
// (numpy.linalg.lstsq's), b_Z = n_Z Ē / Σ_Z' n_Z'² with Ē the mean training energy. Sets st.element_energies and
// st.atoms_energy (E_a = Σ_i b_{Z_i}); nothing otherwise. One allreduce; collective over `comm`.
void fit_element_energies(const data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm,
                          model::Standardization& st);

// The same on the frames layout (data.is_frames()), whose frames hold any atoms: min Σ_f (E_f − n_f · b)² over the
// training frames of all ranks, n_f frame f's atoms per element, solved as least squares of least norm over the
// normal equations (compositions that do not determine every b_Z leave the undetermined part 0, as
// numpy.linalg.lstsq). Subtracts each frame's Σ_i b_{Z_i} from data.values; sets st.element_energies and
// st.atoms_energy (of one atom of each element, as the model's numbers). Nothing without values. One allreduce;
// collective over `comm`.
void fit_frames_element_energies(data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm,
                                 model::Standardization& st);

// Transforms data's x, grad_samples and values in place (their dtype and device kept) and records `st` in it.
void standardize_dataset(data::Dataset& data, const model::Standardization& st);

// Divides data.weights (a file's `weight` dataset) by their mean over the training rows of all ranks (float64 sums,
// one allreduce), so that a batch's loss Σ w̄ ℓ / (|batch| n) is the weighted mean over the batch on average, and
// exactly for the full batch (Σ w ℓ / (n Σ w)). Nothing without weights. Throws a CollectiveError naming the file
// when the training rows' weights sum to 0. Collective over `comm`.
void normalize_weights(data::Dataset& data, const config::TrainSpec& spec, const parallel::Comm& comm);

// What a run's data go through before training, once per job: normalize_weights, then with data.standardize
// fit_standardization (or fit_feature_standardization), fit_element_energies, and standardize_dataset; for the
// frames layout fit_frames_element_energies alone.
// Collective over `comm`.
void prepare_dataset(data::Dataset& data, const config::RunSpec& run, const parallel::Comm& comm);

// Replaces the final metrics of each of `results` (runs of one job, trained on `data`, standardized) by the same
// metrics in the user's units: one more pass of each run's saved weights over the shard (autograd, a block of
// rows at a time), its squared gradient errors (and for train.loss huber its huber loss, which then reads
// huber with δ s/σ_i per component in the user's units, since huber_cδ(c r) = c² huber_δ(r)) scaled per component
// by (s / σ_i)², and its value errors by s².
// Nothing to do when `data` is not standardized. Collective over `comm`.
void final_metrics_in_user_units(std::vector<records::TrainResult>& results, const config::RunSpec& run,
                                 const data::Dataset& data, const parallel::Comm& comm);

}  // namespace gradfit::train
