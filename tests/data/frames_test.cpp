// scripts/ase_import.py's frames layout read by shard (data/frames.h): shards of whole frames balanced on atoms,
// every frame in exactly one, and the rows read back as written; a broken file is one error naming what is wrong.
#include "data/frames.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/error.h"
#include "io/h5.h"
#include "test_util.h"

namespace gradfit::data {
namespace {

TEST(FramesShard, EveryFrameOnceAndTheAtomsBalanced) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> size(1, 40);
  std::vector<int64_t> atoms(1000);
  for (auto& a : atoms) a = size(rng);
  int64_t total = 0;
  for (const int64_t a : atoms) total += a;
  const int64_t largest = *std::max_element(atoms.begin(), atoms.end());
  for (int ranks = 1; ranks <= 7; ++ranks) {
    int64_t next_frame = 0, next_atom = 0;
    for (int r = 0; r < ranks; ++r) {
      const FramesShard s = frames_shard(atoms, r, ranks);
      EXPECT_EQ(s.first_frame, next_frame) << ranks << " ranks, rank " << r;
      EXPECT_EQ(s.first_atom, next_atom);
      int64_t sum = 0;
      for (int64_t f = s.first_frame; f < s.first_frame + s.frames; ++f) sum += atoms[static_cast<size_t>(f)];
      EXPECT_EQ(sum, s.atoms);
      EXPECT_LT(std::abs(static_cast<double>(s.atoms) - static_cast<double>(total) / ranks),
                static_cast<double>(largest));
      next_frame += s.frames, next_atom += s.atoms;
    }
    EXPECT_EQ(next_frame, 1000);
    EXPECT_EQ(next_atom, total);
  }
  const FramesShard empty = frames_shard({5}, 1, 2);  // more ranks than frames: a rank may hold none
  EXPECT_EQ(empty.frames, 0);
}

// Frames of 3, 1, 4, 2 atoms; frame 1 periodic along a and b.
struct Written {
  std::vector<double> atoms{3, 1, 4, 2}, positions, grad, numbers, values{-1, -2, -3, -4}, cell, pbc;
};

Written write_frames_file(const std::string& path) {
  Written w;
  for (int a = 0; a < 10; ++a) {
    for (int c = 0; c < 3; ++c) w.positions.push_back(a + 0.1 * c), w.grad.push_back(-a - 0.01 * c);
    w.numbers.push_back(a % 2 == 0 ? 1 : 8);
  }
  w.cell.assign(36, 0.0);
  w.pbc.assign(12, 0.0);
  w.cell[9] = 5, w.cell[13] = 6, w.cell[17] = 7, w.pbc[3] = w.pbc[4] = 1;
  const auto file = io::File::create(path);
  const auto ints = [](const std::vector<double>& v) { return std::vector<int64_t>(v.begin(), v.end()); };
  file.write("atoms", ints(w.atoms));
  file.write("positions", {10, 3}, w.positions.data());
  file.write("grad", {10, 3}, w.grad.data());
  file.write("numbers", ints(w.numbers));
  file.write("value", w.values);
  file.write("cell", {4, 9}, w.cell.data());
  const auto pbc = ints(w.pbc);
  file.write("pbc", {4, 3}, pbc.data());
  file.write_attribute("layout", std::string("frames"));
  return w;
}

TEST(Frames, ShardsReadBackAsWritten) {
  testing::TempDir dir;
  const Written w = write_frames_file(dir.file("f.h5"));
  Frames all;
  for (int r = 0; r < 3; ++r) {
    const Frames f = read_frames(dir.file("f.h5"), r, 3);
    EXPECT_EQ(f.total_frames, 4);
    EXPECT_EQ(f.total_atoms, 10);
    all.atoms.insert(all.atoms.end(), f.atoms.begin(), f.atoms.end());
    all.positions.insert(all.positions.end(), f.positions.begin(), f.positions.end());
    all.grad.insert(all.grad.end(), f.grad.begin(), f.grad.end());
    all.numbers.insert(all.numbers.end(), f.numbers.begin(), f.numbers.end());
    all.values.insert(all.values.end(), f.values.begin(), f.values.end());
    all.cells.insert(all.cells.end(), f.cells.begin(), f.cells.end());
  }
  EXPECT_EQ(std::vector<double>(all.atoms.begin(), all.atoms.end()), w.atoms);
  EXPECT_EQ(all.positions, w.positions);
  EXPECT_EQ(all.grad, w.grad);
  EXPECT_EQ(std::vector<double>(all.numbers.begin(), all.numbers.end()), w.numbers);
  EXPECT_EQ(all.values, w.values);
  ASSERT_EQ(all.cells.size(), 4u);
  EXPECT_TRUE(all.cells[1].periodic[0] && all.cells[1].periodic[1] && !all.cells[1].periodic[2]);
  EXPECT_FALSE(all.cells[0].any_periodic());
  EXPECT_EQ(all.cells[1].vectors[1][1], 6);
}

TEST(Frames, ABrokenFileIsOneError) {
  testing::TempDir dir;
  const auto message = [&](const std::string& path) -> std::string {
    try {
      read_frames(path, 0, 1);
    } catch (const DataError& e) {
      return e.what();
    }
    return "no error";
  };
  write_frames_file(dir.file("f.h5"));
  {
    const auto file = io::File::open_read_write(dir.file("f.h5"));
    file.write("extra", std::vector<double>{1});
  }
  EXPECT_EQ(message(dir.file("f.h5")), "no error");
  // The file with `dataset` replaced by `values` (shape: `shape`), or left out when `values` is empty.
  const auto broken = [&](const std::string& name, const std::string& dataset, const std::vector<int64_t>& shape,
                          const std::vector<int64_t>& values) {
    write_frames_file(dir.file("source.h5"));
    const io::File source = io::File::open_read_only(dir.file("source.h5"));
    const io::File out = io::File::create(dir.file(name));
    for (const std::string d : {"atoms", "positions", "grad", "numbers", "value", "cell", "pbc"})
      if (d != dataset) out.copy_from(source, d, d);
    if (!values.empty()) out.write(dataset, shape, values.data());
    out.write_attribute("layout", std::string("frames"));
    return dir.file(name);
  };
  EXPECT_NE(message(broken("a.h5", "atoms", {4}, {3, 0, 5, 2})).find("frame 1 has 0 atoms"), std::string::npos);
  EXPECT_NE(message(broken("b.h5", "atoms", {4}, {3, 1, 4, 3}))
                .find("dataset 'positions' has shape (10, 3), expected (11, 3)"),
            std::string::npos);
  EXPECT_NE(message(broken("c.h5", "numbers", {10}, {1, 8, 1, 8, 0, 8, 1, 8, 1, 8}))
                .find("frame 2, atom 0: atomic number 0 is no element"),
            std::string::npos);
  EXPECT_NE(message(broken("d.h5", "pbc", {4, 3}, {0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0}))
                .find("frame 1: dataset 'pbc' holds 2"),
            std::string::npos);
  EXPECT_NE(message(broken("e.h5", "grad", {}, {})).find("the frames layout needs dataset 'grad'"), std::string::npos);
}

// inspect_frames: the counts and the elements of all frames without their positions; an atomic number that is no
// element names its frame and the atom's index in it, as read_frames does.
TEST(Frames, InspectedWithoutReadingTheAtoms) {
  testing::TempDir dir;
  write_frames_file(dir.file("f.h5"));
  const FramesLayout layout = inspect_frames(dir.file("f.h5"));
  EXPECT_EQ(layout.frames, 4);
  EXPECT_EQ(layout.atoms, 10);
  EXPECT_TRUE(layout.has_values);
  EXPECT_EQ(layout.elements, (std::vector<int64_t>{1, 8}));
  {
    const io::File source = io::File::open_read_only(dir.file("f.h5"));
    const io::File out = io::File::create(dir.file("g.h5"));
    for (const std::string d : {"atoms", "positions", "grad", "value", "cell", "pbc"}) out.copy_from(source, d, d);
    out.write("numbers", std::vector<int64_t>{1, 8, 1, 8, 1, 8, 1, 8, 1, 119});  // the last atom of frame 3
    out.write_attribute("layout", std::string("frames"));
  }
  try {
    inspect_frames(dir.file("g.h5"));
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("frame 3, atom 1: atomic number 119 is no element"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace gradfit::data
