// The kernels of model/kernels.h, compiled once per instruction set: src/CMakeLists.txt builds this file with
// GRADFIT_KERNELS_ISA set to `baseline` (the compiler's default flags) and, on x86-64, to `avx2` (-mavx2 -mfma) and
// `avx512` (AVX-512 F/DQ/VL/BW with 512-bit vectors).
// The loops are written for the compiler to vectorise: fixed blocks of 16 elements, selects instead of branches,
// bit patterns through memcpy, no calls. Built without -ffast-math: divisions and NaN behave as IEEE says.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "model/kernels.h"

#ifndef GRADFIT_KERNELS_ISA
#error "GRADFIT_KERNELS_ISA must name the instruction set"
#endif
#define GRADFIT_CAT2(a, b) a##b
#define GRADFIT_CAT(a, b) GRADFIT_CAT2(a, b)
#define GRADFIT_STR2(a) #a
#define GRADFIT_STR(a) GRADFIT_STR2(a)

namespace gradfit::model::kernels {
namespace GRADFIT_KERNELS_ISA {
namespace {

constexpr int64_t kBlock = 16;

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// exp(t) for t ≤ 0: t = k ln2 + r with |r| ≤ ln2/2, e^r by Cephes' expf polynomial (~1 ulp), 2^k from its bits.
// Below −87, where exp(t) < 1.7e−38 is about to leave the normal range, it returns 0; NaN stays NaN.
inline float exp_nonpositive(float t) {
  const bool underflow = t < -87.0f;
  t = underflow ? -87.0f : t;
  constexpr float kShifter = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer held in the low bits
  const float m = t * 1.44269504088896341f + kShifter;
  const float k = m - kShifter;
  const uint32_t two_k = (bits_of(m) - bits_of(kShifter) + 127u) << 23;  // k ∈ [−126, 0]: a normal 2^k
  const float r = (t - k * 0.693359375f) - k * -2.12194440e-4f;          // ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = (p * (r * r) + r + 1.0f) * float_of(two_k);
  return underflow ? 0.0f : e;
}

// log(1 + e) for e ∈ [0, 1] as 2 atanh(s), s = e / (2 + e) ∈ [0, 1/3]: the odd series to s¹⁵ (the rest is below
// s¹⁶/17 ≤ 1.4e−9 relative). No cancellation anywhere; a few ulp.
// x where x ≥ threshold, else +0, by masking x's bits: a select the compiler cannot turn back into computing with x
// and selecting afterwards (which -fno-trapping-math allows it to do with `x < threshold ? 0 : x`).
template <typename T>
inline T zero_below(T x, T threshold) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  Bits b;
  std::memcpy(&b, &x, sizeof b);
  b &= x < threshold ? Bits{0} : ~Bits{0};
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Below s = 1e-18 the series is 1 to float32's precision, and s² is taken as 0 rather than computed: a product
// that falls under the normal range (s below 1e-18, z below about -41 or above 41) costs the CPU a microcode assist
// of ~100 cycles, which made softplus 5-14x slower on such pre-activations. The result is the same bit for bit.
inline float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float s_kept = zero_below(s, 1e-18f);
  const float s2 = s_kept * s_kept;
  float p = 1.0f / 15;
  p = p * s2 + 1.0f / 13;
  p = p * s2 + 1.0f / 11;
  p = p * s2 + 1.0f / 9;
  p = p * s2 + 1.0f / 7;
  p = p * s2 + 1.0f / 5;
  p = p * s2 + 1.0f / 3;
  p = p * s2 + 1.0f;
  return 2.0f * s * p;
}

// The sigmoid from e = exp(−|z|) and q = 1/(1+e): q for z ≥ 0, e q below (no overflow on either side).
inline float sigmoid_of(float z, float e, float q) {
  return z >= 0.0f ? q : e * q;
}

// tanh and 1 − tanh²: Cephes' tanhf, an odd polynomial below |z| = 0.625, and above (1 − e)/(1 + e) and
// 4e/(1 + e)² with e = exp(−2|z|) (no cancellation in 1 − t² where t is near ±1).
inline void tanh_of(float z, float& t, float& d) {
  const float az = std::fabs(z);
  const float x2 = z * z;
  float p = -5.70498872745e-3f;
  p = p * x2 + 2.06390887954e-2f;
  p = p * x2 - 5.37397155531e-2f;
  p = p * x2 + 1.33314422036e-1f;
  p = p * x2 - 3.33332819422e-1f;
  const float small = p * x2 * z + z;
  const float e = exp_nonpositive(-2.0f * az);
  const float q = 1.0f / (1.0f + e);
  const float large = (1.0f - e) * q;
  const bool is_small = az < 0.625f;  // NaN: not small, and large is NaN
  t = is_small ? small : (z < 0.0f ? -large : large);
  d = is_small ? 1.0f - small * small : 4.0f * e * q * q;
}

// One class per activation with a kernel (model/activation.h names it): σ, σ' and, where kCurvature, σ'' of z.
struct Relu {
  static constexpr bool kCurvature = false;
  static inline void apply(float z, float& h, float& s1, float&) {
    h = z < 0.0f ? 0.0f : z;  // NaN stays NaN, as LibTorch's relu
    s1 = z > 0.0f ? 1.0f : 0.0f;
  }
};

struct Softplus {
  static constexpr bool kCurvature = false;
  static inline void apply(float z, float& h, float& s1, float&) {
    const float e = exp_nonpositive(-std::fabs(z));
    const float softplus = (z < 0.0f ? 0.0f : z) + log1p_unit(e);
    h = z > 20.0f ? z : softplus;  // LibTorch's threshold (beta 1, threshold 20)
    s1 = sigmoid_of(z, e, 1.0f / (1.0f + e));
  }
};

// σ = z s, σ' = s + z t, σ'' = t (2 + z (1 − 2s)), s the sigmoid, t = s (1 − s) = e q², and
// 1 − 2s = ∓(1 − e) q for z ≥ 0 and z < 0 (both without cancellation).
struct Silu {
  static constexpr bool kCurvature = true;
  static inline void apply(float z, float& h, float& s1, float& s2) {
    const float e = exp_nonpositive(-std::fabs(z));
    const float q = 1.0f / (1.0f + e);
    const float s = sigmoid_of(z, e, q);
    const float t = e * q * q;
    const float one_minus_2s = z >= 0.0f ? (e - 1.0f) * q : (1.0f - e) * q;
    h = z * s;
    s1 = s + z * t;
    s2 = t * (2.0f + z * one_minus_2s);
  }
};

struct Tanh {
  static constexpr bool kCurvature = true;
  static inline void apply(float z, float& h, float& s1, float& s2) {
    float t, d;
    tanh_of(z, t, d);
    h = t;
    s1 = d;
    s2 = -2.0f * t * d;
  }
};

template <typename Kernel>
inline void activate_block(float* h, float* s1, float* s2) {
  for (int64_t j = 0; j < kBlock; ++j) {
    if constexpr (Kernel::kCurvature) {
      Kernel::apply(h[j], h[j], s1[j], s2[j]);
    } else {
      float unused;  // σ'' is not kept (s2 may be null)
      Kernel::apply(h[j], h[j], s1[j], unused);
    }
  }
}

template <typename Kernel>
void activate_all(float* h, float* s1, float* s2, int64_t n) {
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) activate_block<Kernel>(h + i, s1 + i, Kernel::kCurvature ? s2 + i : nullptr);
  if (i == n) return;
  // The partial last block goes through the same code, padded.
  float ph[kBlock] = {}, ps1[kBlock], ps2[kBlock];
  const int64_t rest = n - i;
  std::memcpy(ph, h + i, sizeof(float) * rest);
  activate_block<Kernel>(ph, ps1, ps2);
  std::memcpy(h + i, ph, sizeof(float) * rest);
  std::memcpy(s1 + i, ps1, sizeof(float) * rest);
  if (Kernel::kCurvature) std::memcpy(s2 + i, ps2, sizeof(float) * rest);
}

// The kernels' factory.
void activate_impl(Activation activation, float* h, float* s1, float* s2, int64_t n) {
  switch (activation) {
    case Activation::relu: return activate_all<Relu>(h, s1, s2, n);
    case Activation::tanh: return activate_all<Tanh>(h, s1, s2, n);
    case Activation::softplus: return activate_all<Softplus>(h, s1, s2, n);
    case Activation::silu: return activate_all<Silu>(h, s1, s2, n);
  }
}

// One row: the same operations, in the same order, as the LibTorch passes they replace (d̄ σ'', then ⊙ a, then
// + h̄ σ'), so that the float64 results stay within rounding of autograd's.
// σ'' = s1 − s1² (softplus) leaves out s1² where it is below s1's last bit anyway (s1 under 1e-18 in float32,
// 1e-150 in float64), so as not to make a number under the normal range (see log1p_unit): the same bits.
template <typename T>
inline T tiny_square_dropped(T s) {
  const T kept = zero_below(s, T(sizeof(T) == 4 ? 1e-18 : 1e-150));
  return kept * kept;
}

template <typename T, bool kStoredCurvature, bool kHBar>
inline void z_bar_row(const T* d_bar, const T* a, const T* s1, const T* s2, const T* h_bar, T* out, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    const T curvature = kStoredCurvature ? s2[j] : s1[j] - tiny_square_dropped(s1[j]);
    T v = d_bar[j] * curvature * a[j];
    if constexpr (kHBar) v += h_bar[j] * s1[j];
    out[j] = v;
  }
}

template <typename T, bool kStoredCurvature, bool kHBar>
void z_bar_rows(const T* d_bar, const T* a, int64_t a_stride, const T* s1, const T* s2, const T* h_bar, T* out,
                int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t o = i * cols;
    z_bar_row<T, kStoredCurvature, kHBar>(d_bar + o, a + i * a_stride, s1 + o, kStoredCurvature ? s2 + o : nullptr,
                                          kHBar ? h_bar + o : nullptr, out + o, cols);
  }
}

template <typename T>
void z_bar_impl(const T* d_bar, const T* a, int64_t a_stride, const T* s1, const T* s2, const T* h_bar, T* out,
                int64_t rows, int64_t cols) {
  if (s2 && h_bar) return z_bar_rows<T, true, true>(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
  if (s2) return z_bar_rows<T, true, false>(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
  if (h_bar) return z_bar_rows<T, false, true>(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
  z_bar_rows<T, false, false>(d_bar, a, a_stride, s1, s2, h_bar, out, rows, cols);
}

}  // namespace

extern const Table table;
const Table table{GRADFIT_STR(GRADFIT_KERNELS_ISA), activate_impl, z_bar_impl<float>, z_bar_impl<double>};

}  // namespace GRADFIT_KERNELS_ISA
}  // namespace gradfit::model::kernels
