// The neighbour list's cost per frame against its size (model/neighbours.h): FCC copper (a = 3.61 Å) in cubic
// supercells of n×n×n unit cells (4n³ atoms), each atom moved by up to 0.1 Å, periodic, cutoff 5.2 Å (ANI's radial
// cutoff); prints per size the pairs, the median time of the cell list, and of brute force where it is small:
//   bench_neighbours [largest n, default 10]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "model/neighbours.h"

namespace {

using gradfit::model::neighbours::Cell;

std::vector<double> fcc(int64_t n, double a, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> jitter(-0.1, 0.1);
  const double basis[4][3] = {{0, 0, 0}, {0.5, 0.5, 0}, {0.5, 0, 0.5}, {0, 0.5, 0.5}};
  std::vector<double> x;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < n; ++k)
        for (const auto& b : basis) {
          x.push_back((static_cast<double>(i) + b[0]) * a + jitter(rng));
          x.push_back((static_cast<double>(j) + b[1]) * a + jitter(rng));
          x.push_back((static_cast<double>(k) + b[2]) * a + jitter(rng));
        }
  return x;
}

template <class F>
double median_ms(F f, int repeats) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t largest = argc > 1 ? std::stoll(argv[1]) : 10;
  constexpr double kLattice = 3.61, kCutoff = 5.2;
  std::mt19937_64 rng(7);
  std::printf("%8s %10s %14s %14s %18s\n", "atoms", "pairs", "cell list ms", "us per atom", "brute force ms");
  for (int64_t n = 2; n <= largest; ++n) {
    const auto x = fcc(n, kLattice, rng);
    const auto atoms = static_cast<int64_t>(x.size() / 3);
    Cell cell;
    const double side = static_cast<double>(n) * kLattice;
    cell.vectors = {{{side, 0, 0}, {0, side, 0}, {0, 0, side}}};
    cell.periodic = {true, true, true};
    size_t pairs = 0;
    const double ms =
        median_ms([&] { pairs = gradfit::model::neighbours::within(x.data(), atoms, cell, kCutoff).size(); }, 5);
    std::string brute = "-";
    if (atoms <= 500)
      brute = std::to_string(
          median_ms([&] { gradfit::model::neighbours::within_brute_force(x.data(), atoms, cell, kCutoff); }, 3));
    std::printf("%8lld %10zu %14.3f %14.3f %18s\n", static_cast<long long>(atoms), pairs, ms,
                1000.0 * ms / static_cast<double>(atoms), brute.c_str());
  }
  return 0;
}
