// Chooses, once, the kernels of the best instruction set that was compiled in and that this CPU runs (AVX-512, then
// AVX2, then the baseline), or the baseline where GRADFIT_CPU_KERNELS=baseline asks for it.
#include "model/kernels.h"

#include <cstdlib>
#include <string>

#include "common/error.h"

namespace gradfit::model::kernels {
namespace baseline {
extern const Table table;
}
#ifdef GRADFIT_KERNELS_AVX2
namespace avx2 {
extern const Table table;
}
#endif
#ifdef GRADFIT_KERNELS_AVX512
namespace avx512 {
extern const Table table;
}
#endif

namespace {
bool cpu_runs_avx2() {
#if defined(GRADFIT_KERNELS_AVX2) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_runs_avx512() {
#if defined(GRADFIT_KERNELS_AVX512) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return cpu_runs_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
#else
  return false;
#endif
}

// GRADFIT_CPU_KERNELS: unset, empty or "auto": the best; "baseline": the x86-64 baseline's.
bool baseline_forced() {
  const char* text = std::getenv("GRADFIT_CPU_KERNELS");
  const std::string value = text ? text : "";
  if (value.empty() || value == "auto") return false;
  if (value == "baseline") return true;
  throw Error("GRADFIT_CPU_KERNELS='" + value + "': expected auto or baseline");
}

const Table& best() {
  static const Table& chosen = []() -> const Table& {
    const bool forced = baseline_forced();  // read, and checked, whatever was compiled in
#ifdef GRADFIT_KERNELS_AVX512
    if (!forced && cpu_runs_avx512()) return avx512::table;
#endif
#ifdef GRADFIT_KERNELS_AVX2
    if (!forced && cpu_runs_avx2()) return avx2::table;
#endif
    static_cast<void>(forced);
    return baseline::table;
  }();
  return chosen;
}
}  // namespace

void activate(Activation activation, float* h, float* s1, float* s2, int64_t n) {
  best().activate(activation, h, s1, s2, n);
}
void z_bar(const float* d_bar, const float* a, int64_t a_stride, const float* s1, const float* s2, const float* h_bar,
           float* out, int64_t rows, int64_t cols) {
  best().z_bar_f32(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
}
void z_bar(const double* d_bar, const double* a, int64_t a_stride, const double* s1, const double* s2,
           const double* h_bar, double* out, int64_t rows, int64_t cols) {
  best().z_bar_f64(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
}
const char* instruction_set() {
  return best().name;
}
int runnable_tables(const Table** tables) {
  int count = 0;
  tables[count++] = &baseline::table;
#ifdef GRADFIT_KERNELS_AVX2
  if (cpu_runs_avx2()) tables[count++] = &avx2::table;
#endif
#ifdef GRADFIT_KERNELS_AVX512
  if (cpu_runs_avx512()) tables[count++] = &avx512::table;
#endif
  return count;
}

}  // namespace gradfit::model::kernels
