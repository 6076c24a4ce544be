#pragma once
// Fused element-wise kernels of the analytic engine on the CPU (model/analytic.cpp), on raw contiguous arrays.
// Each replaces several LibTorch element-wise passes over a chunk's N×width buffers by one pass, and the float32
// activations compute σ, σ' and σ'' from one exponential of their own (a polynomial, a few ulp from the exact
// value) instead of LibTorch's separate softplus and sigmoid. No LibTorch here: this header and its sources compile
// in seconds, once per instruction set (x86-64 baseline, and AVX2+FMA and AVX-512 where the compiler offers them),
// and the best one the CPU runs is chosen on first use.
//
// Every element goes through the same arithmetic wherever it lies in an array (the last, partial block of 16 is
// padded), so equal inputs give equal outputs bit for bit, whatever the array's length or split.
#include <cstdint>

namespace gradfit::model::kernels {

// The activations with a float32 kernel. GELU, and every activation in float64, keep LibTorch's operations.
enum class Activation { relu, tanh, softplus, silu };

// In place over n elements: h holds z on entry and σ(z) on exit; s1 = σ'(z), and s2 = σ''(z) for tanh and SiLU.
// ReLU and softplus write no s2 (σ'' is 0, or s1 − s1² as z_bar computes it). NaN in z gives NaN in σ (and in σ'
// except for ReLU, whose σ' is 0 there as in LibTorch); softplus is linear beyond z = 20 like LibTorch's.
void activate(Activation activation, float* h, float* s1, float* s2, int64_t n);

// The adjoint of the pre-activations in the analytic engine's reverse sweep, rows × cols, all row-major:
//   z̄ = d̄ ⊙ σ'' ⊙ a + h̄ ⊙ σ'   (the second term only where h_bar is not null)
// with σ'' = s2, or s1 − s1² where s2 is null (softplus: σ' is the sigmoid). Row i of a starts at a + i·a_stride
// (a_stride 0: one row for all, the output weights).
void z_bar(const float* d_bar, const float* a, int64_t a_stride, const float* s1, const float* s2, const float* h_bar,
           float* out, int64_t rows, int64_t cols);
void z_bar(const double* d_bar, const double* a, int64_t a_stride, const double* s1, const double* s2,
           const double* h_bar, double* out, int64_t rows, int64_t cols);

// The instruction set the dispatched kernels use: "avx512", "avx2" or "baseline". The environment variable
// GRADFIT_CPU_KERNELS=baseline forces the baseline's (a second CPU level for the tests; "auto" or unset: the best).
// The first call chooses; it throws gradfit::Error on another value of that variable.
const char* instruction_set();

// Each compiled instruction set's kernels, for the tests to check them all (those the CPU cannot run excluded).
struct Table {
  const char* name;
  void (*activate)(Activation, float*, float*, float*, int64_t);
  void (*z_bar_f32)(const float*, const float*, int64_t, const float*, const float*, const float*, float*, int64_t,
                    int64_t);
  void (*z_bar_f64)(const double*, const double*, int64_t, const double*, const double*, const double*, double*,
                    int64_t, int64_t);
};
constexpr int kMaxTables = 3;
int runnable_tables(const Table** tables);  // fills up to kMaxTables pointers, from the baseline up; returns how many

}  // namespace gradfit::model::kernels
