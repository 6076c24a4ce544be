#pragma once
// The YAML run description: what data, which model, how to train. Parsing validates everything up front and
// reports errors as "FILE:LINE:COL: key 'a.b': problem", suggesting the nearest valid key for a typo.
#include <cstdint>
#include <string>
#include <vector>

namespace gradfit::config {

enum class Activation { relu, tanh, softplus, silu, gelu };
enum class DType { float32, float64 };
enum class Optimizer { adam, sgd };
enum class Target { quadratic, rosenbrock, gaussian_wells, file };
enum class Sampling { grid, uniform, normal };
enum class Device { auto_select, cpu, cuda };

struct DataSpec {
  Target target = Target::quadratic;
  std::string path;  // Target::file: HDF5 file with x (N×n), grad (N×n), optional value (N)
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
};

struct ModelSpec {
  std::vector<int64_t> widths{32, 32};
  Activation activation = Activation::softplus;
  DType dtype = DType::float32;
};

struct TrainSpec {
  Optimizer optimizer = Optimizer::adam;
  double lr = 1e-3;
  double momentum = 0.0;  // sgd only
  int64_t epochs = 1000;
  int64_t batch_size = 0;     // 0: full batch
  double value_weight = 0.0;  // weight of the MSE on V itself; needs a dataset with values
  uint64_t seed = 0;          // weight initialisation and mini-batch order
  int64_t log_every = 0;      // print every k epochs; 0: about ten lines per run
};

// One training run, fully specified.
struct RunSpec {
  std::string name;
  DataSpec data;
  ModelSpec model;
  TrainSpec train;
};

struct Config {
  std::string path;                     // the YAML file as given
  std::string yaml_text;                // its full text, recorded in the results
  Device device = Device::auto_select;  // auto: a GPU per rank where LibTorch sees GPUs, else the CPU
  RunSpec run;
};

// Reads and validates a YAML file. Throws ConfigError. A relative data.path is resolved against the YAML's folder.
Config load_config(const std::string& path);
// Same, from text; `path` is used in messages and to resolve data.path.
Config parse_config(const std::string& yaml_text, const std::string& path);

const char* to_string(Activation a);
const char* to_string(DType d);
const char* to_string(Optimizer o);
const char* to_string(Target t);
const char* to_string(Sampling s);
const char* to_string(Device d);

}  // namespace gradfit::config
