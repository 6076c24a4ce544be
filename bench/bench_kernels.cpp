// The fused float32 activation kernels of every instruction set compiled in and runnable here, in ns per element,
// over ranges of the pre-activation z (large |z| is where a product below the normal range would cost a microcode
// assist). Built by `cmake --build build --target bench_kernels`; run build/bench_kernels.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "model/kernels.h"

using namespace gradfit::model::kernels;

namespace {

double ns_per_element(const Table& table, Activation activation, const std::vector<float>& z) {
  std::vector<float> h, s1(z.size()), s2(z.size());
  double best = 1e9;
  for (int rep = 0; rep < 300; ++rep) {  // the best of 300: the machine's noise only adds
    h = z;
    const auto start = std::chrono::steady_clock::now();
    table.activate(activation, h.data(), s1.data(), s2.data(), static_cast<int64_t>(h.size()));
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best / static_cast<double>(z.size()) * 1e9;
}

}  // namespace

int main() {
  const Table* tables[kMaxTables];
  const int count = runnable_tables(tables);
  const float ranges[][2] = {{-20, 20}, {-60, -40}, {40, 80}};
  const std::pair<Activation, const char*> activations[] = {{Activation::relu, "relu"},
                                                            {Activation::tanh, "tanh"},
                                                            {Activation::softplus, "softplus"},
                                                            {Activation::silu, "silu"}};
  std::printf("%-9s %-9s %14s %14s %14s   (ns per element, 6400 elements: a 100 x 64 layer)\n", "kernels", "activation",
              "z in [-20,20]", "[-60,-40]", "[40,80]");
  for (int t = 0; t < count; ++t) {
    for (const auto& [activation, name] : activations) {
      std::printf("%-9s %-9s", tables[t]->name, name);
      for (const auto& range : ranges) {
        std::vector<float> z(6400);
        for (size_t i = 0; i < z.size(); ++i)
          z[i] = range[0] + (range[1] - range[0]) * static_cast<float>(i) / static_cast<float>(z.size());
        std::printf(" %14.2f", ns_per_element(*tables[t], activation, z));
      }
      std::printf("\n");
    }
  }
}
