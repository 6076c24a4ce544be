#include "model/descriptor_kernels.h"

#include <algorithm>
#include <cmath>

namespace gradfit::model::descriptor {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kCosineFactor = 0.95;           // TorchANI's factor on cos θ before acos
constexpr double kDistanceProductFloor = 1e-10;  // TorchANI's floor of R_ij R_ik under cos θ

// base^exponent, by squaring where the exponent is a whole number up to 64 (ζ usually is), else std::pow.
template <typename T>
T power(T base, double exponent) {
  if (exponent != std::floor(exponent) || exponent > 64) return std::pow(base, static_cast<T>(exponent));
  auto n = static_cast<int>(exponent);
  T result = 1;
  while (n > 0) {
    if (n & 1) result *= base;
    base *= base;
    n >>= 1;
  }
  return result;
}

// f_c and its slope at d.
template <typename T>
void cutoff(T d, double cutoff, T& value, T& slope) {
  if (d >= cutoff) {
    value = slope = 0;
    return;
  }
  const T angle = d * static_cast<T>(kPi / cutoff);
  value = std::cos(angle) * T(0.5) + T(0.5);
  slope = std::sin(angle) * static_cast<T>(-0.5 * kPi / cutoff);
}

template <typename T>
T dot(const T* a, const T* b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// A triplet's factors, as laid out in memory.
template <typename T>
struct Triplet {
  T *ej, *ek, *c, *dj, *dk, *f, *fj, *fk, *a, *da, *q, *dq;
  Triplet(T* base, const Geometry& g)
      : ej(base),
        ek(base + 3),
        c(base + 6),
        dj(base + 7),
        dk(base + 8),
        f(base + 9),
        fj(base + 10),
        fk(base + 11),
        a(base + 12),
        da(a + g.angle_sections),
        q(da + g.angle_sections),
        dq(q + g.angular_divisions) {}
};

template <typename T>
void pair_at(const Geometry& g, const T* x, T* phi, T* factors, int64_t p) {
  const T* xi = x + 3 * g.pair_i[p];
  const T* xj = x + 3 * g.pair_j[p];
  const T v[3] = {xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]};
  const T d = std::sqrt(dot(v, v));
  for (int c = 0; c < 3; ++c) factors[c] = v[c] / d;
  T fc, fc_slope;
  cutoff(d, g.radial_cutoff, fc, fc_slope);
  T* slopes = factors + 3;
  T* terms = phi + g.pair_offset[p];
  for (int64_t k = 0; k < g.radial_divisions; ++k) {
    const T centred = d - static_cast<T>(g.radial_shifts[k]);
    const T gauss = std::exp(centred * centred * static_cast<T>(-g.radial_eta)) * T(0.25);
    terms[k] += gauss * fc;
    slopes[k] = gauss * (fc_slope - centred * static_cast<T>(2 * g.radial_eta) * fc);
  }
}

template <typename T>
void triplet_at(const Geometry& g, const T* x, T* phi, T* factors, int64_t t) {
  const Triplet<T> f(factors, g);
  const T* xi = x + 3 * g.triplet_i[t];
  const T* xj = x + 3 * g.triplet_j[t];
  const T* xk = x + 3 * g.triplet_k[t];
  const T vj[3] = {xj[0] - xi[0], xj[1] - xi[1], xj[2] - xi[2]};
  const T vk[3] = {xk[0] - xi[0], xk[1] - xi[1], xk[2] - xi[2]};
  const T dj = std::sqrt(dot(vj, vj)), dk = std::sqrt(dot(vk, vk));
  const T c = dot(vj, vk) / std::max(dj * dk, static_cast<T>(kDistanceProductFloor));
  for (int i = 0; i < 3; ++i) f.ej[i] = vj[i] / dj, f.ek[i] = vk[i] / dk;
  *f.c = c, *f.dj = dj, *f.dk = dk;
  T fcj, fcj_slope, fck, fck_slope;
  cutoff(dj, g.angular_cutoff, fcj, fcj_slope);
  cutoff(dk, g.angular_cutoff, fck, fck_slope);
  *f.f = fcj * fck, *f.fj = fcj_slope * fck, *f.fk = fcj * fck_slope;
  if (*f.f == 0) {  // a neighbour beyond the cutoff: no terms, and factors that give none
    std::fill(f.a, f.a + 2 * (g.angle_sections + g.angular_divisions), T(0));
    return;
  }
  // θ = acos(0.95 c): cos θ = 0.95 c and sin θ = √(1 − cos²θ) (θ in [0, π]), so that cos(θ − θ_z) and sin(θ − θ_z)
  // come from the shifts' cosines and sines without a transcendental function per term.
  const T cos_theta = c * static_cast<T>(kCosineFactor);
  const T sin_theta = std::sqrt(1 - cos_theta * cos_theta);
  const T dtheta_dc = static_cast<T>(-kCosineFactor) / sin_theta;
  for (int64_t z = 0; z < g.angle_sections; ++z) {
    const auto cos_z = static_cast<T>(g.angle_shift_cosines[z]), sin_z = static_cast<T>(g.angle_shift_sines[z]);
    const T half = (cos_theta * cos_z + sin_theta * sin_z + 1) * T(0.5);
    const T lower = power(half, g.zeta - 1);
    f.a[z] = lower * half;
    f.da[z] = lower * (sin_theta * cos_z - cos_theta * sin_z) * static_cast<T>(-0.5 * g.zeta) * dtheta_dc;
  }
  const T mean = (dj + dk) * T(0.5);
  for (int64_t a = 0; a < g.angular_divisions; ++a) {
    const T centred = mean - static_cast<T>(g.angular_shifts[a]);
    f.q[a] = std::exp(centred * centred * static_cast<T>(-g.angular_eta));
    f.dq[a] = f.q[a] * centred * static_cast<T>(-2 * g.angular_eta);
  }
  T* terms = phi + g.triplet_offset[t];
  const T scale = 2 * *f.f;
  for (int64_t a = 0; a < g.angular_divisions; ++a)
    for (int64_t z = 0; z < g.angle_sections; ++z) terms[a * g.angle_sections + z] += scale * f.q[a] * f.a[z];
}

template <typename T>
void at_frames(const Geometry& g, const T* x, T* phi, T* pair_factors, T* triplet_factors, int64_t begin, int64_t end) {
  const int64_t n = 3 * g.atoms;
  for (int64_t b = begin; b < end; ++b) {
    T* row = phi + b * g.width;
    std::fill(row, row + g.width, T(0));
    for (int64_t p = 0; p < g.pairs; ++p)
      pair_at(g, x + b * n, row, pair_factors + (b * g.pairs + p) * g.pair_factors(), p);
    for (int64_t t = 0; t < g.triplets; ++t)
      triplet_at(g, x + b * n, row, triplet_factors + (b * g.triplets + t) * g.triplet_factors(), t);
  }
}

// Adds s · e to atom j's row and its negative to atom i's.
template <typename T>
void add_along(T* out, int64_t i, int64_t j, T s, const T* e) {
  for (int c = 0; c < 3; ++c) {
    out[3 * j + c] += s * e[c];
    out[3 * i + c] -= s * e[c];
  }
}

template <typename T>
void transpose_frames(const Geometry& g, const T* pair_factors, const T* triplet_factors, const T* grad, T* out,
                      int64_t begin, int64_t end) {
  const int64_t n = 3 * g.atoms, kz = g.angle_sections;
  for (int64_t b = begin; b < end; ++b) {
    const T* row = grad + b * g.width;
    T* o = out + b * n;
    std::fill(o, o + n, T(0));
    for (int64_t p = 0; p < g.pairs; ++p) {  // ∂/∂x_j = e Σ_k g_k ∂t_k/∂R, its negative on x_i
      const T* f = pair_factors + (b * g.pairs + p) * g.pair_factors();
      const T* gk = row + g.pair_offset[p];
      T s = 0;
      for (int64_t k = 0; k < g.radial_divisions; ++k) s += gk[k] * f[3 + k];
      add_along(o, g.pair_i[p], g.pair_j[p], s, f);
    }
    for (int64_t t = 0; t < g.triplets; ++t) {
      const Triplet<T> f(const_cast<T*>(triplet_factors) + (b * g.triplets + t) * g.triplet_factors(), g);
      if (*f.f == 0) continue;
      const T* block = row + g.triplet_offset[t];
      T q = 0, dq = 0, qc = 0;  // Σ g Q A, Σ g Q' A, Σ g Q A'
      for (int64_t a = 0; a < g.angular_divisions; ++a) {
        T ga = 0, gda = 0;
        for (int64_t z = 0; z < kz; ++z) ga += block[a * kz + z] * f.a[z], gda += block[a * kz + z] * f.da[z];
        q += ga * f.q[a], dq += ga * f.dq[a], qc += gda * f.q[a];
      }
      const T s_j = dq * *f.f + 2 * q * *f.fj, s_k = dq * *f.f + 2 * q * *f.fk, s_c = 2 * qc * *f.f;
      const T along_j = s_j - s_c * *f.c / *f.dj, across_j = s_c / *f.dj;  // ∂c/∂v_j = (e_k − c e_j) / R_ij
      const T along_k = s_k - s_c * *f.c / *f.dk, across_k = s_c / *f.dk;
      add_along(o, g.triplet_i[t], g.triplet_j[t], along_j, f.ej);
      add_along(o, g.triplet_i[t], g.triplet_j[t], across_j, f.ek);
      add_along(o, g.triplet_i[t], g.triplet_k[t], along_k, f.ek);
      add_along(o, g.triplet_i[t], g.triplet_k[t], across_k, f.ej);
    }
  }
}

template <typename T>
void times_frames(const Geometry& g, const T* pair_factors, const T* triplet_factors, const T* r, T* out, int64_t begin,
                  int64_t end) {
  const int64_t n = 3 * g.atoms, kz = g.angle_sections;
  for (int64_t b = begin; b < end; ++b) {
    const T* moves = r + b * n;
    T* row = out + b * g.width;
    std::fill(row, row + g.width, T(0));
    const auto change = [&](int64_t i, int64_t j, T* d) {
      for (int c = 0; c < 3; ++c) d[c] = moves[3 * j + c] - moves[3 * i + c];
    };
    for (int64_t p = 0; p < g.pairs; ++p) {
      const T* f = pair_factors + (b * g.pairs + p) * g.pair_factors();
      T v[3];
      change(g.pair_i[p], g.pair_j[p], v);
      const T dd = dot(f, v);
      T* terms = row + g.pair_offset[p];
      for (int64_t k = 0; k < g.radial_divisions; ++k) terms[k] += f[3 + k] * dd;
    }
    for (int64_t t = 0; t < g.triplets; ++t) {
      const Triplet<T> f(const_cast<T*>(triplet_factors) + (b * g.triplets + t) * g.triplet_factors(), g);
      if (*f.f == 0) continue;
      T vj[3], vk[3];
      change(g.triplet_i[t], g.triplet_j[t], vj);
      change(g.triplet_i[t], g.triplet_k[t], vk);
      const T ddj = dot(f.ej, vj), ddk = dot(f.ek, vk);
      const T dc = (dot(f.ek, vj) - *f.c * ddj) / *f.dj + (dot(f.ej, vk) - *f.c * ddk) / *f.dk;
      // δT_az = Q'_a A_z F (δR_ij + δR_ik) + Q_a (A_z 2 (F_j δR_ij + F_k δR_ik) + A'_z 2 F δc)
      const T by_mean = *f.f * (ddj + ddk), by_distances = 2 * (*f.fj * ddj + *f.fk * ddk), by_angle = 2 * *f.f * dc;
      T* block = row + g.triplet_offset[t];
      for (int64_t a = 0; a < g.angular_divisions; ++a)
        for (int64_t z = 0; z < kz; ++z)
          block[a * kz + z] += f.dq[a] * f.a[z] * by_mean + f.q[a] * (f.a[z] * by_distances + f.da[z] * by_angle);
    }
  }
}

}  // namespace

void at(const Geometry& g, const float* x, float* phi, float* pf, float* tf, int64_t begin, int64_t end) {
  at_frames(g, x, phi, pf, tf, begin, end);
}
void at(const Geometry& g, const double* x, double* phi, double* pf, double* tf, int64_t begin, int64_t end) {
  at_frames(g, x, phi, pf, tf, begin, end);
}
void transpose_times(const Geometry& g, const float* pf, const float* tf, const float* grad, float* out, int64_t begin,
                     int64_t end) {
  transpose_frames(g, pf, tf, grad, out, begin, end);
}
void transpose_times(const Geometry& g, const double* pf, const double* tf, const double* grad, double* out,
                     int64_t begin, int64_t end) {
  transpose_frames(g, pf, tf, grad, out, begin, end);
}
void times(const Geometry& g, const float* pf, const float* tf, const float* r, float* out, int64_t begin,
           int64_t end) {
  times_frames(g, pf, tf, r, out, begin, end);
}
void times(const Geometry& g, const double* pf, const double* tf, const double* r, double* out, int64_t begin,
           int64_t end) {
  times_frames(g, pf, tf, r, out, begin, end);
}

}  // namespace gradfit::model::descriptor
