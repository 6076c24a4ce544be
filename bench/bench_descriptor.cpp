// gradfit_dist's atom_centered descriptor of a data file's frames, for bench/aev_vs_torchani.py:
//   bench_descriptor DATA.h5 OUT.h5 [key=value ...]
// reads x (N × 3a) and the attribute `numbers`, and writes OUT.h5's dataset `aev` (N × a × w, float64) computed
// with model.features atom_centered's parameters (ANI-1x's, or those given as key=value, e.g. radial_cutoff=4.6).
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "io/h5.h"
#include "model/features_atom_centered.h"

namespace {

gradfit::config::AtomCenteredSpec spec_of(int argc, char** argv) {
  gradfit::config::AtomCenteredSpec spec;
  for (int i = 3; i < argc; ++i) {
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_descriptor DATA.h5 OUT.h5 [key=value ...]\n");
    return 2;
  }
  try {
    const auto file = gradfit::io::File::open_read_only(argv[1]);
    const auto numbers = file.read_int_vector_attribute("numbers");
    const auto shape = file.dataset_info("x").shape;
    const auto rows = file.read_rows("x", 0, shape[0]);
    const auto x = torch::tensor(rows, torch::kFloat64).view({shape[0], shape[1]});
    const gradfit::model::AtomCenteredFeatures features(spec_of(argc, argv), numbers);
    const auto aev = features.phi(x).contiguous();
    const int64_t atoms = static_cast<int64_t>(numbers.size());
    auto out = gradfit::io::File::create(argv[2]);
    out.write("aev", {shape[0], atoms, aev.size(1) / atoms}, aev.data_ptr<double>());
    out.close();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_descriptor: %s\n", e.what());
    return 1;
  }
  return 0;
}
