#pragma once
// The YAML sweep file: a base run (data, model, optimizer, train) and an optional `sweep:` section that expands it
// into many runs. Parsing validates everything before anything runs and reports errors as
// "FILE:LINE:COL: key 'a.b': problem", suggesting the nearest valid key for a typo.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace gradfit::config {

enum class Activation { relu, tanh, softplus, silu, gelu };
enum class DType { float32, float64 };
// lbfgs: torch.optim.LBFGS with a strong-Wolfe line search, one iteration per epoch, full batch (train/lbfgs.h).
enum class Optimizer { adam, adamw, sgd, lbfgs };
// How the learning rate moves, stepped once per epoch; each equals a torch.optim.lr_scheduler (train/schedule.h).
enum class Schedule { constant, exponential, cosine, plateau };
enum class Target { quadratic, rosenbrock, gaussian_wells, file };
enum class Sampling { grid, uniform, normal };
enum class Device { auto_select, cpu, cuda };
// Subnormal floats on the CPU: flushed to zero (FTZ and DAZ, as torch.set_flush_denormal(True)), or kept (IEEE
// gradual underflow, PyTorch's default).
enum class Denormals { flush, keep };
enum class Engine { analytic, autograd };
// The loss on dV/dx − S: mean squared error (nn.MSELoss), or nn.HuberLoss(delta) (both with mean reduction).
enum class Loss { mse, huber };
// The inputs φ(x) of the MLP, V(x) = MLP(φ(x)) (model/features.h): x itself; the inverse distances 1/|r_i − r_j|,
// i < j, of the atoms whose Cartesian coordinates x holds; (cos, sin)(2π x_i / L_i) of periodic components;
// atom_centered: each atom's ANI descriptor of its neighbours, the model a sum of per-element networks.
enum class FeatureKind { identity, inverse_distances, periodic, atom_centered };

// model.features atom_centered: the ANI descriptor (TorchANI's AEV, AEVComputer.cover_linearly's parameters; the
// defaults are ANI-1x's). Radial terms ¼ exp(−η_R (R_ij − R_s)²) f_c(R_ij) per neighbour element, R_s on
// radial_divisions points from radial_start up to (not including) radial_cutoff; angular terms
// 2 ((1 + cos(θ_ijk − θ_s)) / 2)^ζ exp(−η_A ((R_ij + R_ik)/2 − R_a)²) f_c(R_ij) f_c(R_ik) per neighbour element pair,
// R_a likewise from angular_start, θ_s = (k + ½) π / angle_sections; f_c(R) = ½ cos(π R / R_c) + ½ within R_c.
struct AtomCenteredSpec {
  double radial_cutoff = 5.2, angular_cutoff = 3.5;
  double radial_eta = 16, angular_eta = 8, zeta = 32;
  double radial_start = 0.9, angular_start = 0.9;
  int64_t radial_divisions = 16, angular_divisions = 4, angle_sections = 8;

  // Every key with its value, in the order of docs/config.md: f(name, double&) for the lengths and exponents,
  // f(name, int64_t&) for the counts.
  template <class Spec, class F>
  static void visit(Spec& s, F&& f) {
    f("radial_cutoff", s.radial_cutoff);
    f("angular_cutoff", s.angular_cutoff);
    f("radial_eta", s.radial_eta);
    f("angular_eta", s.angular_eta);
    f("zeta", s.zeta);
    f("radial_start", s.radial_start);
    f("angular_start", s.angular_start);
    f("radial_divisions", s.radial_divisions);
    f("angular_divisions", s.angular_divisions);
    f("angle_sections", s.angle_sections);
  }
};

struct DataSpec {
  Target target = Target::quadratic;
  std::string path;  // Target::file: HDF5 file with x (N×n), grad (N×n), optional value (N)
  // Held-out test data (any target): an HDF5 file like `path`, every finished run evaluated on it with its saved
  // weights (test metrics in its results). Empty: none.
  std::string test_path;
  Sampling sampling = Sampling::grid;
  int64_t dim = 2;                // n; for quadratic it is taken from P
  int64_t points_per_axis = 10;   // grid: N = points_per_axis^n
  int64_t samples = 1000;         // uniform / normal: N
  double low = -3.0, high = 3.0;  // grid / uniform box, and where gaussian wells are centred
  double stddev = 1.0;            // normal: x ~ N(0, stddev^2)
  std::vector<double> P;          // quadratic: n×n row-major, V = xᵀPx
  int64_t wells = 4;              // gaussian_wells: number of wells
  double well_width = 1.0;        // gaussian_wells: standard deviation of each well
  uint64_t seed = 0;              // sampling and well placement
  // Train on standardized data (model/standardization.h): x → (x − μ)/σ per component, S and V scaled to match,
  // from the training rows; predictions stay in the user's units.
  bool standardize = false;
};

struct ModelSpec {
  std::vector<int64_t> widths{32, 32};
  Activation activation = Activation::softplus;
  DType dtype = DType::float32;
  FeatureKind features = FeatureKind::identity;
  std::vector<double> periods;  // periodic: L_i per component of x, 0 where it is not periodic
  AtomCenteredSpec descriptor;  // atom_centered: the descriptor's parameters (model.radial_cutoff, ...)
  // atom_centered: the atomic numbers of the atoms x holds, from the data file's attribute `numbers` (attached to
  // the runs once the files are read, app_checks.h; from the run's attributes for eval and export). Not a key.
  std::vector<int64_t> numbers;
  // atom_centered: the elements the model has a network for (ascending atomic number), where `numbers` are another
  // structure's atoms than the training data's (eval, export: io/saved_run.h's for_atoms); empty: those of
  // `numbers`. Not a key.
  std::vector<int64_t> elements;
  // atom_centered: the hidden widths of some elements' networks, by atomic number (key model.element_widths, a
  // mapping of element symbols to widths, {H: [32, 32], O: [64]}); the other elements' networks take `widths`.
  std::map<int64_t, std::vector<int64_t>> element_widths;
};

// The hidden widths of element `number`'s network: its model.element_widths entry, else model.widths.
const std::vector<int64_t>& network_widths(const ModelSpec& spec, int64_t number);

struct OptimizerSpec {
  Optimizer name = Optimizer::adam;
  double lr = 1e-3;
  double momentum = 0.0;       // sgd only
  double weight_decay = 0.0;   // adamw only (decoupled, as torch.optim.AdamW; its default there: 0.01)
  double max_grad_norm = 0.0;  // clip each run's global gradient norm to this after the allreduce; 0: no clipping
  Schedule schedule = Schedule::constant;
  double lr_final = 0.0;        // exponential: the last epoch's rate; cosine: eta_min. Default lr / 100
  int64_t warmup_epochs = 0;    // cosine: epochs of linear warmup from lr / 10
  double plateau_factor = 0.1;  // plateau: ReduceLROnPlateau's factor, patience and min_lr (PyTorch's defaults)
  int64_t plateau_patience = 10;
  double min_lr = 0.0;
  int64_t history_size = 100;  // lbfgs: the (s, y) pairs kept (torch.optim.LBFGS's default)
  // lbfgs: no step where the largest gradient component is at most tolerance_grad, or where the directional
  // derivative is above -tolerance_change (torch.optim.LBFGS's keys and defaults)
  double tolerance_grad = 1e-7, tolerance_change = 1e-9;
};

struct TrainSpec {
  int64_t epochs = 1000;
  int64_t batch_size = 0;     // 0: full batch
  double value_weight = 0.0;  // weight of the MSE on V itself; needs a dataset with values
  Loss loss = Loss::mse;      // of the gradient term
  double huber_delta = 1.0;   // Loss::huber: where the loss turns from quadratic to linear
  uint64_t seed = 0;          // weight initialisation, mini-batch order, validation split
  int64_t log_every = 0;      // print every k epochs; 0: about ten lines per run
  double val_fraction = 0.0;  // share of the samples held out for validation (0: none)
  int64_t patience = 0;       // stop after this many epochs without a better validation loss (0: never)
  // How the loss gradient is computed; neither changes the result beyond rounding, so the defaults stay out of
  // the run's id. analytic: the MLP's double backward written out (model/analytic.h); autograd: LibTorch's.
  Engine engine = Engine::analytic;
  int64_t chunk_rows = 0;  // rows per chunk of a batch (0: chosen from the model's widths and the device)
  // Warm start: the initial weights from an earlier run of the same architecture (a results.h5, a runs/<id>.h5,
  // or PATH#run-name; relative to the YAML file's folder). Empty: from `seed`.
  std::string init_from;
  // > 0: an exponential moving average of the weights, ema = decay·ema + (1 − decay)·w after every optimizer step
  // from the initial weights; validation, early stopping, the saved model and its final metrics use it.
  double ema_decay = 0.0;
};

// sweep.prune: the sweep's coordinator stops runs that are clearly behind the others at fixed epochs (rungs).
// asha: successive halving, rungs at min_epochs·η^k, the best 1/η of a rung's runs continue; median: a check every
// min_epochs epochs, a run worse than the median of the others stops. Deterministic unless `async`: a rung is
// decided once every run that trains to it has reported (sweep/pruning.h).
enum class PruneMethod { none, asha, median };
// What runs are compared by at a rung: the best validation loss so far, or the training loss or relative gradient
// error of the rung's epoch.
enum class PruneMetric { val_loss, train_loss, rel_grad_error };

struct PruneSpec {
  PruneMethod method = PruneMethod::none;
  PruneMetric metric = PruneMetric::val_loss;  // default: val_loss when every run validates, else rel_grad_error
  int64_t min_epochs = 0;                      // the first rung (default: asha epochs/η³, median epochs/10)
  int64_t reduction_factor = 3;                // asha's η
  bool async = false;                          // decide as reports arrive (faster, depends on timing)
  int64_t epochs = 0;                          // train.epochs, the same for every run

  bool active() const { return method != PruneMethod::none; }
  // The rungs' epochs, increasing, each below `epochs`.
  std::vector<int64_t> rungs() const;
};

// One training run, fully specified.
struct RunSpec {
  std::string id;    // stable: a hash of everything below, so a re-expanded sweep names runs identically
  std::string name;  // readable: the swept values ("activation=relu,lr=0.1,repeat=0"), or the file's name
  std::vector<std::pair<std::string, std::string>> params;  // the swept keys and their values, in sweep order
  DataSpec data;
  ModelSpec model;
  OptimizerSpec optimizer;
  TrainSpec train;
};

struct Config {
  std::string path;                        // the YAML file as given
  std::string yaml_text;                   // its full text, recorded in the results
  std::string name;                        // the sweep's name (default: the file's stem)
  Device device = Device::auto_select;     // auto: a GPU per rank where LibTorch sees GPUs, else the CPU
  Denormals denormals = Denormals::flush;  // on the CPU, for the whole process
  int ranks_per_run = 0;                   // ranks that train one run together; 0: all ranks
  int ensemble_size = 0;                   // most runs trained together as one ensemble; 0: chosen by size; 1: none
  std::string output_dir;                  // default for --out; empty: results/<name>
  int64_t checkpoint_every = 0;            // checkpoint every this many epochs (0: not by epochs)
  double checkpoint_seconds = 60;          // and every this many seconds (0: not by time)
  bool is_sweep = false;                   // the file has a sweep: section
  PruneSpec prune;                         // sweep.prune
  std::vector<RunSpec> runs;               // in expansion order
};

// Upper bounds on sizes, checked as the file is read (a ConfigError naming the key), so that an absurd value ends the
// job in one line before anything is allocated or looped over. They lie far beyond what one node's memory holds;
// whether a run fits is checked later from its actual sizes (train/memory.h). Within them every size product the
// tool forms (N × n, parameters, grid points) fits in int64.
inline constexpr int64_t kMaxDim = 1'000'000;              // data.dim, also the n of data.P
inline constexpr int64_t kMaxWidth = 1'000'000;            // each of model.widths
inline constexpr int64_t kMaxLayers = 1'000;               // entries of model.widths
inline constexpr int64_t kMaxParameters = 10'000'000'000;  // of one model, counted with n = 1 for a data file
inline constexpr int64_t kMaxWells = 1'000'000;            // data.wells
// data.samples, the grid's points_per_axis^n, train.batch_size and train.chunk_rows.
inline constexpr int64_t kMaxSamples = 10'000'000'000;

// points_per_axis^dim, or -1 when it is over kMaxSamples (the product stops there: no overflow, no long loop).
int64_t grid_point_count(int64_t points_per_axis, int64_t dim);

// Reads and validates a sweep file and expands it. `overrides` are "dotted.key=value" settings (the command line's
// --set) applied to the base configuration first. Throws ConfigError. A relative data.path is resolved against
// the YAML file's folder.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same, from text; `path` is used in messages and to resolve data.path.
Config parse_config(const std::string& yaml_text, const std::string& path,
                    const std::vector<std::string>& overrides = {});

// N for a built-in target (grid: points_per_axis^n; uniform/normal: samples); -1 for a file.
int64_t analytic_sample_count(const DataSpec& spec);

// "" when the features of `model` take points of n = dim; else what is wrong, as a message about the key
// model.features (inverse_distances: n = 3a, a >= 2) or model.periods (periodic: one entry per component).
std::string features_dim_error(const ModelSpec& model, int64_t dim);
// The key that error is about: "periods" (periodic) or "features".
const char* features_dim_key(const ModelSpec& model);
// Whether the model's features need the atoms' elements (a data file's attribute `numbers`): atom_centered.
bool features_need_elements(const ModelSpec& model);

// Every setting of a run as "key=value" lines in a fixed order: what the stable id hashes.
std::string canonical_text(const RunSpec& run);
// Its data.* lines alone.
std::string canonical_data_text(const DataSpec& data);

const char* to_string(Activation a);
const char* to_string(DType d);
const char* to_string(Optimizer o);
const char* to_string(Schedule s);
const char* to_string(Target t);
const char* to_string(Sampling s);
const char* to_string(Device d);
const char* to_string(Denormals d);
const char* to_string(Engine e);
const char* to_string(Loss l);
const char* to_string(FeatureKind f);
const char* to_string(PruneMethod m);
const char* to_string(PruneMetric m);
// The value a name gives (as written by to_string); false where no value has that name.
bool from_string(const std::string& name, Activation& a);
bool from_string(const std::string& name, DType& d);
bool from_string(const std::string& name, FeatureKind& f);
bool from_string(const std::string& name, Denormals& d);

}  // namespace gradfit::config
