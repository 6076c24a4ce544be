#include "data/frames.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "data/dataset.h"
#include "io/h5.h"
#include "model/standardization.h"

namespace gradfit::data {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw DataError(message);
}

// `name`'s shape is `expected` (its first dimension: rows), or an error naming both.
void check_shape(const io::File& file, const std::string& name, const std::vector<int64_t>& expected) {
  if (!file.has(name)) fail(file.path() + ": the frames layout needs dataset '" + name + "'");
  const auto shape = file.dataset_info(name).shape;
  if (shape != expected)
    fail(file.path() + ": dataset '" + name + "' has shape " + shape_text(shape) + ", expected " +
         shape_text(expected));
}

std::vector<int64_t> integers(const std::vector<double>& values) {
  return std::vector<int64_t>(values.begin(), values.end());
}

// Each frame's atom count, checked (≥ 1 each, adding up to the atoms' datasets' rows).
std::vector<int64_t> atom_counts(const io::File& file) {
  if (!file.has("atoms")) fail(file.path() + ": the frames layout needs dataset 'atoms'");
  const auto frames = file.dataset_info("atoms").shape;
  if (frames.size() != 1 || frames[0] < 1) fail(file.path() + ": dataset 'atoms' must hold one count per frame");
  const auto atoms = integers(file.read_rows("atoms", 0, frames[0]));
  int64_t total = 0;
  for (size_t f = 0; f < atoms.size(); ++f) {
    if (atoms[f] < 1)
      fail(file.path() + ": frame " + std::to_string(f) + " has " + std::to_string(atoms[f]) + " atoms");
    total += atoms[f];
  }
  check_shape(file, "positions", {total, 3});
  check_shape(file, "grad", {total, 3});
  check_shape(file, "numbers", {total});
  check_shape(file, "cell", {frames[0], 9});
  check_shape(file, "pbc", {frames[0], 3});
  if (file.has("value")) check_shape(file, "value", {frames[0]});
  return atoms;
}

// The shard's numbers and cells, checked.
void read_elements_and_cells(const io::File& file, Frames& out) {
  const auto& s = out.shard;
  out.numbers = integers(file.read_rows("numbers", s.first_atom, s.atoms));
  for (int64_t f = 0, atom = 0; f < s.frames; ++f)
    for (int64_t a = 0; a < out.atoms[static_cast<size_t>(f)]; ++a, ++atom)
      if (out.numbers[static_cast<size_t>(atom)] < 1 || out.numbers[static_cast<size_t>(atom)] > kMaxAtomicNumber)
        fail(file.path() + ": frame " + std::to_string(s.first_frame + f) + ", atom " + std::to_string(a) +
             ": atomic number " + std::to_string(out.numbers[static_cast<size_t>(atom)]) + " is no element (1 to " +
             std::to_string(kMaxAtomicNumber) + ")");
  const auto cells = file.read_rows("cell", s.first_frame, s.frames);
  const auto pbc = file.read_rows("pbc", s.first_frame, s.frames);
  for (int64_t f = 0; f < s.frames; ++f) {
    model::neighbours::Cell cell;
    for (size_t k = 0; k < 3; ++k) {
      const double flag = pbc[static_cast<size_t>(3 * f) + k];
      if (flag != 0 && flag != 1)
        fail(file.path() + ": frame " + std::to_string(s.first_frame + f) + ": dataset 'pbc' holds " +
             std::to_string(flag) + ", not 0 or 1");
      cell.periodic[k] = flag == 1;
      for (size_t c = 0; c < 3; ++c) cell.vectors[k][c] = cells[static_cast<size_t>(9 * f) + 3 * k + c];
    }
    out.cells.push_back(cell);
  }
}

// The frame of atom `atom` (counting every frame's atoms in order) and the atom's index in it.
std::pair<int64_t, int64_t> frame_and_index(const std::vector<int64_t>& atoms, int64_t atom) {
  size_t f = 0;
  while (atom >= atoms[f]) atom -= atoms[f++];
  return {static_cast<int64_t>(f), atom};
}

}  // namespace

FramesLayout inspect_frames(const std::string& path) {
  const io::File file = io::File::open_read_only(path);
  const auto atoms = atom_counts(file);
  FramesLayout layout;
  layout.frames = static_cast<int64_t>(atoms.size());
  for (const int64_t a : atoms) layout.atoms += a;
  layout.has_values = file.has("value");
  std::vector<bool> present(kMaxAtomicNumber + 1, false);
  constexpr int64_t kBlock = int64_t{1} << 20;  // atoms read at a time
  for (int64_t first = 0; first < layout.atoms; first += kBlock) {
    const auto numbers = file.read_rows("numbers", first, std::min(kBlock, layout.atoms - first));
    for (size_t i = 0; i < numbers.size(); ++i) {
      const double z = numbers[i];
      if (z >= 1 && z <= kMaxAtomicNumber && z == std::floor(z)) {
        present[static_cast<size_t>(z)] = true;
        continue;
      }
      const auto [frame, index] = frame_and_index(atoms, first + static_cast<int64_t>(i));
      fail(path + ": frame " + std::to_string(frame) + ", atom " + std::to_string(index) + ": atomic number " +
           std::to_string(static_cast<int64_t>(z)) + " is no element (1 to " + std::to_string(kMaxAtomicNumber) + ")");
    }
  }
  for (int64_t z = 1; z <= kMaxAtomicNumber; ++z)
    if (present[static_cast<size_t>(z)]) layout.elements.push_back(z);
  return layout;
}

FramesShard frames_shard(const std::vector<int64_t>& atoms_per_frame, int rank, int ranks) {
  int64_t total = 0;
  for (const int64_t a : atoms_per_frame) total += a;
  const auto bound = [&](int r) {  // ⌈r · A / R⌉ without overflow for any realistic A
    return static_cast<int64_t>(std::ceil(static_cast<double>(total) * r / ranks));
  };
  const int64_t low = bound(rank), high = bound(rank + 1);
  FramesShard shard;
  int64_t atom = 0;
  bool started = false;
  for (size_t f = 0; f < atoms_per_frame.size(); atom += atoms_per_frame[f], ++f) {
    if (atom < low || atom >= high) continue;
    if (!started) shard.first_frame = static_cast<int64_t>(f), shard.first_atom = atom, started = true;
    ++shard.frames;
    shard.atoms += atoms_per_frame[f];
  }
  if (!started) shard.first_frame = static_cast<int64_t>(atoms_per_frame.size()), shard.first_atom = total;
  return shard;
}

std::vector<double> element_energy_sums(const Frames& frames, const std::vector<double>& element_energies,
                                        const std::vector<int64_t>& elements) {
  std::vector<double> sums;
  for (size_t f = 0, atom = 0; f < frames.atoms.size(); atom += static_cast<size_t>(frames.atoms[f]), ++f) {
    const auto first = frames.numbers.begin() + static_cast<int64_t>(atom);
    sums.push_back(
        model::atoms_energy_of(element_energies, elements, std::vector<int64_t>(first, first + frames.atoms[f])));
  }
  return sums;
}

Frames read_frames(const std::string& path, int rank, int ranks) {
  const io::File file = io::File::open_read_only(path);
  if (!file.has_attribute("layout") || file.read_string_attribute("layout") != "frames")
    fail(path + ": not the frames layout (attribute layout = \"frames\")");
  const auto atoms = atom_counts(file);
  Frames out;
  out.shard = frames_shard(atoms, rank, ranks);
  out.total_frames = static_cast<int64_t>(atoms.size());
  for (const int64_t a : atoms) out.total_atoms += a;
  const auto& s = out.shard;
  out.atoms.assign(atoms.begin() + s.first_frame, atoms.begin() + s.first_frame + s.frames);
  out.positions = file.read_rows("positions", s.first_atom, s.atoms);
  out.grad = file.read_rows("grad", s.first_atom, s.atoms);
  if (file.has("value")) out.values = file.read_rows("value", s.first_frame, s.frames);
  read_elements_and_cells(file, out);
  return out;
}

}  // namespace gradfit::data
