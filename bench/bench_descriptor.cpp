// gradfit_dist's atom_centered descriptor of a data file's frames, for bench/aev_vs_torchani.py:
//   bench_descriptor DATA.h5 OUT.h5 [key=value ...]
// reads x (N × 3a) and the attribute `numbers`, and writes OUT.h5's dataset `aev` (N × a × w, float64) computed
// with model.features atom_centered's parameters (ANI-1x's, or those given as key=value, e.g. radial_cutoff=4.6).
// Where DATA.h5 also has `cell` (N × 9: each frame's lattice vectors, row after row) and the attribute `pbc` (3
// flags), each frame's descriptor with the periodic images of its cell (model/frame_descriptor.h).
//   bench_descriptor --time DATA.h5 CHUNK [key=value ...]
// times, in float32 on chunks of CHUNK frames, what the analytic engine asks of the descriptor per chunk: φ and
// J's factors (at), Jᵀ g and J r; prints the median over the file's chunks of each, in ms per chunk.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "io/h5.h"
#include "model/features_atom_centered.h"
#include "model/frame_descriptor.h"

namespace {

gradfit::config::AtomCenteredSpec spec_of(int argc, char** argv, int first) {
  gradfit::config::AtomCenteredSpec spec;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    bool known = false;
    gradfit::config::AtomCenteredSpec::visit(spec, [&](const char* key, auto& value) {
      if (eq == std::string::npos || arg.substr(0, eq) != key) return;
      known = true;
      value = static_cast<std::decay_t<decltype(value)>>(std::stod(arg.substr(eq + 1)));
    });
    if (!known) throw std::runtime_error("unknown argument '" + arg + "'");
  }
  return spec;
}

torch::Tensor read_x(const gradfit::io::File& file) {
  const auto shape = file.dataset_info("x").shape;
  const auto rows = file.read_rows("x", 0, shape[0]);
  return torch::tensor(rows, torch::kFloat64).view({shape[0], shape[1]});
}

// Each frame's descriptor with its cell's periodic images (frames × a·w, float64).
std::vector<double> periodic_descriptors(const gradfit::io::File& file, const gradfit::config::AtomCenteredSpec& spec,
                                         const std::vector<int64_t>& numbers, const torch::Tensor& x) {
  const auto cells = file.read_rows("cell", 0, x.size(0));
  const auto pbc = file.read_int_vector_attribute("pbc");
  std::vector<double> out;
  for (int64_t f = 0; f < x.size(0); ++f) {
    gradfit::model::neighbours::Cell cell;
    for (size_t k = 0; k < 3; ++k) {
      cell.periodic[k] = pbc.at(k) != 0;
      for (size_t c = 0; c < 3; ++c) cell.vectors[k][c] = cells[static_cast<size_t>(9 * f) + 3 * k + c];
    }
    const auto frame = x[f].contiguous();
    const auto phi = gradfit::model::descriptor::frame_descriptor(spec, gradfit::model::distinct_elements(numbers),
                                                                  numbers, frame.data_ptr<double>(), cell);
    out.insert(out.end(), phi.begin(), phi.end());
  }
  return out;
}

double median_ms(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  return 1000 * seconds[seconds.size() / 2];
}

int time_products(int argc, char** argv) {
  const auto file = gradfit::io::File::open_read_only(argv[2]);
  const gradfit::model::AtomCenteredFeatures features(spec_of(argc, argv, 4),
                                                      file.read_int_vector_attribute("numbers"));
  const auto x = read_x(file).to(torch::kFloat32);
  const int64_t chunk = std::stoll(argv[3]);
  torch::NoGradGuard no_grad;
  std::vector<double> at, transpose, times;
  const auto clock = [] { return std::chrono::steady_clock::now(); };
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  for (int64_t first = 0; first + chunk <= x.size(0); first += chunk) {
    const auto rows = x.narrow(0, first, chunk);
    const auto t0 = clock();
    const auto factors = features.at(rows);
    const auto t1 = clock();
    const auto g = features.transpose_times(factors, torch::ones_like(factors.phi));
    const auto t2 = clock();
    const auto r = features.times(factors, g);
    const auto t3 = clock();
    at.push_back(seconds(t0, t1)), transpose.push_back(seconds(t1, t2)), times.push_back(seconds(t2, t3));
  }
  std::printf(
      "%lld frames of %lld atoms, %lld per chunk, float32, %d threads: at %.2f ms, Jᵀ g %.2f ms, J r %.2f ms "
      "per chunk (median of %zu)\n",
      static_cast<long long>(x.size(0)), static_cast<long long>(x.size(1) / 3), static_cast<long long>(chunk),
      at::get_num_threads(), median_ms(at), median_ms(transpose), median_ms(times), at.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool timing = argc > 1 && std::string(argv[1]) == "--time";
  if (argc < (timing ? 4 : 3)) {
    std::fprintf(stderr,
                 "usage: bench_descriptor DATA.h5 OUT.h5 [key=value ...]\n"
                 "       bench_descriptor --time DATA.h5 CHUNK [key=value ...]\n");
    return 2;
  }
  try {
    if (timing) return time_products(argc, argv);
    const auto file = gradfit::io::File::open_read_only(argv[1]);
    const auto numbers = file.read_int_vector_attribute("numbers");
    const auto x = read_x(file);
    const auto spec = spec_of(argc, argv, 3);
    const int64_t atoms = static_cast<int64_t>(numbers.size());
    auto out = gradfit::io::File::create(argv[2]);
    if (file.has("cell")) {
      const auto aev = periodic_descriptors(file, spec, numbers, x);
      out.write("aev", {x.size(0), atoms, static_cast<int64_t>(aev.size()) / (x.size(0) * atoms)}, aev.data());
    } else {
      const gradfit::model::AtomCenteredFeatures features(spec, numbers);
      const auto aev = features.at(x).phi.contiguous();  // on the CPU: the kernels training uses
      out.write("aev", {x.size(0), atoms, aev.size(1) / atoms}, aev.data_ptr<double>());
    }
    out.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_descriptor: %s\n", e.what());
    return 1;
  }
  return 0;
}
