#include "model/neighbours.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>

namespace gradfit::model::neighbours {
namespace {

using Vec = std::array<double, 3>;

Vec cross(const Vec& a, const Vec& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec& a, const Vec& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
double norm(const Vec& a) {
  return std::sqrt(dot(a, a));
}
Vec scaled(const Vec& a, double f) {
  return {a[0] * f, a[1] * f, a[2] * f};
}

// A unit vector orthogonal to the unit vector e.
Vec orthogonal_to(const Vec& e) {
  const int axis = std::abs(e[0]) <= std::abs(e[1]) && std::abs(e[0]) <= std::abs(e[2]) ? 0
                   : std::abs(e[1]) <= std::abs(e[2])                                   ? 1
                                                                                        : 2;
  Vec u{0, 0, 0};
  u[static_cast<size_t>(axis)] = 1;
  const Vec v = cross(e, u);
  return scaled(v, 1 / norm(v));
}

// The cell's periodic vectors, completed by unit vectors orthogonal to their span (and to each other) in the
// directions that are not periodic, so that the fractional coordinates s_k = r · b*_k along the periodic ones are
// those of the periodic lattice; b*_k the reciprocal vectors (rows of H⁻ᵀ); and how far, in images, the cutoff
// reaches along each periodic direction: ⌈rc |b*_k|⌉ (|Δs_k| ≤ |Δr| |b*_k|).
struct Lattice {
  std::array<Vec, 3> h{}, reciprocal{};
  std::array<double, 3> span{0, 0, 0};  // rc |b*_k|
  std::array<int64_t, 3> reach{0, 0, 0};
};

void complete(std::array<Vec, 3>& h, const std::array<bool, 3>& periodic) {
  std::vector<size_t> on, off;
  for (size_t k = 0; k < 3; ++k) (periodic[k] ? on : off).push_back(k);
  const auto fail = [] {
    throw std::invalid_argument(
        "the cell's periodic lattice vectors span no volume (a zero vector, or vectors "
        "along one line or in one plane)");
  };
  if (on.size() == 1) {
    const double length = norm(h[on[0]]);
    if (!(length > 0)) fail();
    h[off[0]] = orthogonal_to(scaled(h[on[0]], 1 / length));
    h[off[1]] = cross(scaled(h[on[0]], 1 / length), h[off[0]]);
  } else if (on.size() == 2) {
    const Vec normal = cross(h[on[0]], h[on[1]]);
    if (!(norm(normal) > 1e-12 * norm(h[on[0]]) * norm(h[on[1]]))) fail();
    h[off[0]] = scaled(normal, 1 / norm(normal));
  } else {
    const double volume = std::abs(dot(h[0], cross(h[1], h[2])));
    if (!(volume > 1e-12 * norm(h[0]) * norm(h[1]) * norm(h[2]))) fail();
  }
}

Lattice lattice_of(const Cell& cell, double cutoff) {
  Lattice l;
  l.h = cell.vectors;
  complete(l.h, cell.periodic);
  const double volume = dot(l.h[0], cross(l.h[1], l.h[2]));
  for (size_t k = 0; k < 3; ++k) {
    l.reciprocal[k] = scaled(cross(l.h[(k + 1) % 3], l.h[(k + 2) % 3]), 1 / volume);
    if (!cell.periodic[k]) continue;
    l.span[k] = cutoff * norm(l.reciprocal[k]);
    l.reach[k] = static_cast<int64_t>(std::ceil(l.span[k]));
  }
  return l;
}

void check(const double* positions, int64_t atoms, double cutoff) {
  if (!(std::isfinite(cutoff) && cutoff > 0))
    throw std::invalid_argument("the cutoff must be a finite number > 0, not " + std::to_string(cutoff));
  for (int64_t a = 0; a < 3 * atoms; ++a)
    if (!std::isfinite(positions[a]))
      throw std::invalid_argument("atom " + std::to_string(a / 3) + " has a position that is not finite");
}

Vec position(const double* positions, int64_t a) {
  return {positions[3 * a], positions[3 * a + 1], positions[3 * a + 2]};
}

// r + Σ_k n_k h_k over the periodic directions.
Vec moved(const Vec& r, const std::array<int64_t, 3>& n, const Lattice& l) {
  Vec out = r;
  for (size_t k = 0; k < 3; ++k)
    for (size_t c = 0; c < 3; ++c) out[c] += static_cast<double>(n[k]) * l.h[k][c];
  return out;
}

// Every n in [−reach_k, reach_k] per direction (0 where not periodic), in lexicographic order.
template <class F>
void for_each_image(const std::array<int64_t, 3>& reach, F f) {
  for (int64_t x = -reach[0]; x <= reach[0]; ++x)
    for (int64_t y = -reach[1]; y <= reach[1]; ++y)
      for (int64_t z = -reach[2]; z <= reach[2]; ++z) f(std::array<int64_t, 3>{x, y, z});
}

// An atom's copy in the search: the atom, its image n (of its wrapped position) and where that lies.
struct Ghost {
  int64_t atom;
  std::array<int64_t, 3> image;
  Vec at;
};

// The atoms wrapped into the cell along the periodic directions (wrap: the whole cells taken off, per atom), and
// their images that can lie within the cutoff of a wrapped atom: fractional coordinates in [−span_k, 1 + span_k].
std::vector<Ghost> ghosts_of(const double* positions, int64_t atoms, const Cell& cell, const Lattice& l,
                             std::vector<std::array<int64_t, 3>>& wrap) {
  std::vector<Ghost> ghosts;
  wrap.assign(static_cast<size_t>(atoms), {0, 0, 0});
  for (int64_t a = 0; a < atoms; ++a) {
    const Vec r = position(positions, a);
    auto& w = wrap[static_cast<size_t>(a)];
    Vec s{0, 0, 0};
    for (size_t k = 0; k < 3; ++k) {
      if (!cell.periodic[k]) continue;
      const double fraction = dot(r, l.reciprocal[k]);
      w[k] = static_cast<int64_t>(std::floor(fraction));
      s[k] = fraction - static_cast<double>(w[k]);
    }
    const Vec inside = moved(r, {-w[0], -w[1], -w[2]}, l);
    for_each_image(l.reach, [&](const std::array<int64_t, 3>& n) {
      for (size_t k = 0; k < 3; ++k) {
        const double t = s[k] + static_cast<double>(n[k]);
        if (cell.periodic[k] && (t < -l.span[k] - 1e-9 || t > 1 + l.span[k] + 1e-9)) return;
      }
      ghosts.push_back({a, n, moved(inside, n, l)});
    });
  }
  return ghosts;
}

// Ghosts sorted into boxes at least a cutoff wide over their bounding box: a box's ghosts are
// order[start[b]..start[b + 1]).
struct Boxes {
  Vec low{};
  double width = 0;
  std::array<int64_t, 3> count{1, 1, 1};
  std::vector<int64_t> start, order;
  std::array<int64_t, 3> box_of(const Vec& r) const {
    std::array<int64_t, 3> b{};
    for (size_t c = 0; c < 3; ++c)
      b[c] = std::clamp(static_cast<int64_t>(std::floor((r[c] - low[c]) / width)), int64_t{0}, count[c] - 1);
    return b;
  }
  int64_t index(const std::array<int64_t, 3>& b) const { return (b[0] * count[1] + b[1]) * count[2] + b[2]; }
};

Boxes boxes_of(const std::vector<Ghost>& ghosts, double cutoff) {
  Boxes boxes;
  Vec high{};
  boxes.low = high = ghosts.front().at;
  for (const auto& g : ghosts)
    for (size_t c = 0; c < 3; ++c) boxes.low[c] = std::min(boxes.low[c], g.at[c]), high[c] = std::max(high[c], g.at[c]);
  // Boxes of the cutoff's width, fewer (wider) where that would make many more boxes than ghosts.
  const double limit = 8.0 * static_cast<double>(ghosts.size()) + 64;
  for (boxes.width = cutoff;; boxes.width *= 2) {
    double total = 1;
    for (size_t c = 0; c < 3; ++c) {
      boxes.count[c] = std::max<int64_t>(1, static_cast<int64_t>(std::floor((high[c] - boxes.low[c]) / boxes.width)));
      total *= static_cast<double>(boxes.count[c]);
    }
    if (total <= limit) break;
  }
  boxes.start.assign(static_cast<size_t>(boxes.count[0] * boxes.count[1] * boxes.count[2] + 1), 0);
  std::vector<int64_t> box(ghosts.size());
  for (size_t g = 0; g < ghosts.size(); ++g) {
    box[g] = boxes.index(boxes.box_of(ghosts[g].at));
    ++boxes.start[static_cast<size_t>(box[g]) + 1];
  }
  for (size_t b = 1; b < boxes.start.size(); ++b) boxes.start[b] += boxes.start[b - 1];
  boxes.order.resize(ghosts.size());
  std::vector<int64_t> fill(boxes.start.begin(), boxes.start.end() - 1);
  for (size_t g = 0; g < ghosts.size(); ++g)
    boxes.order[static_cast<size_t>(fill[static_cast<size_t>(box[g])]++)] = static_cast<int64_t>(g);
  return boxes;
}

using Entry = std::tuple<int64_t, int64_t, std::array<int64_t, 3>>;

Pairs sorted(std::vector<Entry> entries) {
  std::sort(entries.begin(), entries.end());
  Pairs pairs;
  for (const auto& [i, j, shift] : entries) {
    pairs.i.push_back(i);
    pairs.j.push_back(j);
    pairs.shift.push_back(shift);
  }
  return pairs;
}

// The pairs (centre, j, shift) of the ghosts in the centre's box and the boxes around it closer than the cutoff.
void add_neighbours(const Ghost& centre, const std::vector<Ghost>& ghosts, const Boxes& boxes,
                    const std::vector<std::array<int64_t, 3>>& wrap, double cutoff2, std::vector<Entry>& entries) {
  const auto b = boxes.box_of(centre.at);
  std::array<int64_t, 3> lo{}, hi{}, around{};
  for (size_t c = 0; c < 3; ++c) lo[c] = std::max<int64_t>(0, b[c] - 1), hi[c] = std::min(boxes.count[c] - 1, b[c] + 1);
  const auto& wi = wrap[static_cast<size_t>(centre.atom)];
  for (around[0] = lo[0]; around[0] <= hi[0]; ++around[0])
    for (around[1] = lo[1]; around[1] <= hi[1]; ++around[1])
      for (around[2] = lo[2]; around[2] <= hi[2]; ++around[2]) {
        const auto box = static_cast<size_t>(boxes.index(around));
        for (int64_t k = boxes.start[box]; k < boxes.start[box + 1]; ++k) {
          const Ghost& other = ghosts[static_cast<size_t>(boxes.order[static_cast<size_t>(k)])];
          if (other.atom == centre.atom && other.image == centre.image) continue;
          const Vec d{other.at[0] - centre.at[0], other.at[1] - centre.at[1], other.at[2] - centre.at[2]};
          if (dot(d, d) >= cutoff2) continue;
          // r_j − w_j H + n H − (r_i − w_i H): the image n − w_j + w_i of the atom as given.
          const auto& wj = wrap[static_cast<size_t>(other.atom)];
          entries.emplace_back(centre.atom, other.atom,
                               std::array<int64_t, 3>{other.image[0] - wj[0] + wi[0], other.image[1] - wj[1] + wi[1],
                                                      other.image[2] - wj[2] + wi[2]});
        }
      }
}

}  // namespace

Pairs within(const double* positions, int64_t atoms, const Cell& cell, double cutoff) {
  check(positions, atoms, cutoff);
  if (atoms == 0) return {};
  const Lattice l = cell.any_periodic() ? lattice_of(cell, cutoff) : Lattice{};
  std::vector<std::array<int64_t, 3>> wrap;
  const std::vector<Ghost> ghosts = ghosts_of(positions, atoms, cell, l, wrap);
  const Boxes boxes = boxes_of(ghosts, cutoff);
  std::vector<Entry> entries;
  for (const auto& centre : ghosts)
    if (centre.image == std::array<int64_t, 3>{0, 0, 0})  // the atoms themselves, wrapped
      add_neighbours(centre, ghosts, boxes, wrap, cutoff * cutoff, entries);
  return sorted(std::move(entries));
}

Pairs within_brute_force(const double* positions, int64_t atoms, const Cell& cell, double cutoff) {
  check(positions, atoms, cutoff);
  const Lattice l = cell.any_periodic() ? lattice_of(cell, cutoff) : Lattice{};
  // Atoms anywhere: the images reach the cutoff's span plus the atoms' own spread, per periodic direction.
  std::array<int64_t, 3> reach{0, 0, 0};
  for (size_t k = 0; k < 3; ++k) {
    if (!cell.periodic[k] || atoms == 0) continue;
    double low = dot(position(positions, 0), l.reciprocal[k]), high = low;
    for (int64_t a = 1; a < atoms; ++a) {
      const double s = dot(position(positions, a), l.reciprocal[k]);
      low = std::min(low, s), high = std::max(high, s);
    }
    reach[k] = static_cast<int64_t>(std::ceil(l.span[k] + high - low)) + 1;
  }
  std::vector<Entry> entries;
  for (int64_t i = 0; i < atoms; ++i)
    for (int64_t j = 0; j < atoms; ++j)
      for_each_image(reach, [&](const std::array<int64_t, 3>& n) {
        if (i == j && n == std::array<int64_t, 3>{0, 0, 0}) return;
        const Vec rj = moved(position(positions, j), n, l), ri = position(positions, i);
        const Vec d{rj[0] - ri[0], rj[1] - ri[1], rj[2] - ri[2]};
        if (dot(d, d) < cutoff * cutoff) entries.emplace_back(i, j, n);
      });
  return sorted(std::move(entries));
}

}  // namespace gradfit::model::neighbours
