#include "data/dataset.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "common/error.h"
#include "io/h5.h"
#include "test_util.h"

namespace gradfit::data {
namespace {

using config::DataSpec;
using config::Target;

DataSpec file_spec(const std::string& path) {
  DataSpec s;
  s.target = Target::file;
  s.path = path;
  return s;
}

// Loads a file as a single rank would, in float64.
Dataset load(const std::string& path) {
  return load_dataset(file_spec(path), torch::kFloat64, parallel::Comm(MPI_COMM_SELF));
}

// Writes x (rows×cols) and grad (grad_rows×grad_cols), optionally value, into a new HDF5 file.
void write_file(const std::string& path, int64_t rows, int64_t cols, int64_t grad_rows, int64_t grad_cols,
                bool with_value = false, double poison = 0.0, int64_t poison_row = -1) {
  const auto file = io::File::create(path);
  std::vector<double> x(rows * cols), g(grad_rows * grad_cols), v(rows);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1 * static_cast<double>(i);
  for (size_t i = 0; i < g.size(); ++i) g[i] = -0.5 * static_cast<double>(i);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  if (poison_row >= 0) g[poison_row * grad_cols] = poison;
  file.write("x", {rows, cols}, x.data());
  file.write("grad", {grad_rows, grad_cols}, g.data());
  if (with_value) file.write("value", {rows}, v.data());
}

TEST(Dataset, ReadsAUsersFile) {
  testing::TempDir dir;
  write_file(dir.file("g.h5"), 7, 3, 7, 3, /*with_value=*/true);
  const Dataset d = load_dataset(file_spec(dir.file("g.h5")), torch::kFloat64, parallel::Comm(MPI_COMM_SELF));
  EXPECT_EQ(d.total_rows, 7);
  EXPECT_EQ(d.dim, 3);
  EXPECT_EQ(d.shard.count, 7);
  ASSERT_TRUE(d.has_values());
  EXPECT_DOUBLE_EQ(d.x[2][1].item<double>(), 0.1 * 7);
  EXPECT_DOUBLE_EQ(d.grad_samples[6][2].item<double>(), -0.5 * 20);
  EXPECT_DOUBLE_EQ(d.values[4].item<double>(), 4.0);
}

TEST(Dataset, ConvertsToTheModelDtype) {
  testing::TempDir dir;
  write_file(dir.file("g.h5"), 4, 2, 4, 2);
  const Dataset d = load_dataset(file_spec(dir.file("g.h5")), torch::kFloat32, parallel::Comm(MPI_COMM_SELF));
  EXPECT_EQ(d.x.scalar_type(), torch::kFloat32);
  EXPECT_EQ(d.grad_samples.scalar_type(), torch::kFloat32);
  EXPECT_FALSE(d.has_values());
}

TEST(Dataset, ShapeMismatchNamesFileAndDatasets) {
  testing::TempDir dir;
  const auto path = dir.file("bad.h5");
  write_file(path, 10, 2, 10, 3);
  EXPECT_THROW_MATCHING(load(path), CollectiveError,
                        "bad\\.h5: dataset 'grad' has shape \\(10, 3\\) but 'x' has \\(10, 2\\); they must match");
  write_file(path, 10, 2, 9, 2);
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "dataset 'grad' has shape \\(9, 2\\)");
}

TEST(Dataset, MalformedFileIsAClearError) {
  testing::TempDir dir;
  const auto path = dir.file("not_hdf5.h5");
  std::ofstream(path) << "x,grad\n1,2\n";
  EXPECT_THROW_MATCHING(load(path), CollectiveError,
                        "cannot open HDF5 file '.*not_hdf5\\.h5' \\(missing, or not an HDF5 file\\)");
  EXPECT_THROW_MATCHING(load_dataset(file_spec(dir.file("absent.h5")), torch::kFloat64, parallel::Comm(MPI_COMM_SELF)),
                        CollectiveError, "absent\\.h5");
}

TEST(Dataset, MissingDatasetIsNamed) {
  testing::TempDir dir;
  const auto path = dir.file("no_grad.h5");
  {
    const auto file = io::File::create(path);
    const double x[2] = {1, 2};
    file.write("x", {1, 2}, x);
  }
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "no_grad\\.h5: missing dataset 'grad'");
}

TEST(Dataset, WrongRankAndEmptyData) {
  testing::TempDir dir;
  const auto path = dir.file("d.h5");
  {
    const auto file = io::File::create(path);
    const double v[3] = {1, 2, 3};
    file.write("x", {3}, v);
    file.write("grad", {3}, v);
  }
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "dataset 'x' must be 2-D \\(N×n\\), got shape \\(3\\)");
  write_file(path, 0, 2, 0, 2);
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "d\\.h5: dataset 'x' has no rows \\(N = 0\\)");
}

TEST(Dataset, NonNumericDtypeIsRejected) {
  testing::TempDir dir;
  const auto path = dir.file("strings.h5");
  write_file(path, 2, 1, 2, 1);
  {
    // Replace 'grad' by a dataset of fixed-length strings.
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "grad", H5P_DEFAULT);
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 4);
    const hsize_t dims[2] = {2, 1};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t set = H5Dcreate2(file, "grad", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, "abcdefgh");
    H5Dclose(set), H5Sclose(space), H5Tclose(type), H5Fclose(file);
  }
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "strings\\.h5: dataset 'grad' must hold numbers");
}

TEST(Dataset, NanAndInfNameTheRow) {
  testing::TempDir dir;
  const auto path = dir.file("nan.h5");
  write_file(path, 5, 2, 5, 2, false, std::numeric_limits<double>::quiet_NaN(), 3);
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "nan\\.h5: dataset 'grad' has NaN or Inf in row 3");
  write_file(path, 5, 2, 5, 2, false, std::numeric_limits<double>::infinity(), 0);
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "dataset 'grad' has NaN or Inf in row 0");
  // Finite in float64 but beyond float32's range: fine for a float64 model, an error for a float32 one.
  write_file(path, 5, 2, 5, 2, false, 1e300, 4);
  EXPECT_NO_THROW(load(path));
  EXPECT_THROW_MATCHING(load_dataset(file_spec(path), torch::kFloat32, parallel::Comm(MPI_COMM_SELF)), CollectiveError,
                        "dataset 'grad' has NaN or Inf in row 4 \\(in float32: beyond ±3\\.4e38 counts too\\)");
}

// A file's shard is read and converted a block of rows at a time: more rows than a block come back whole, in
// the model's dtype, equal to the file's numbers.
TEST(Dataset, LargeFilesAreReadInBlocks) {
  testing::TempDir dir;
  const auto path = dir.file("large.h5");
  const int64_t rows = (int64_t{1} << 16) + 37;
  write_file(path, rows, 2, rows, 2, true);
  const auto d = load_dataset(file_spec(path), torch::kFloat32, parallel::Comm(MPI_COMM_SELF));
  ASSERT_EQ(d.x.scalar_type(), torch::kFloat32);
  ASSERT_EQ(d.x.size(0), rows);
  const auto expected_x = torch::arange(rows * 2, torch::kFloat64).mul(0.1).view({rows, 2}).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(d.x, expected_x));
  const auto expected_g = torch::arange(rows * 2, torch::kFloat64).mul(-0.5).view({rows, 2}).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(d.grad_samples, expected_g));
  EXPECT_EQ(d.values[rows - 1].item<float>(), static_cast<float>(rows - 1));
}

TEST(Dataset, ValueMustHaveOneEntryPerRow) {
  testing::TempDir dir;
  const auto path = dir.file("v.h5");
  {
    const auto file = io::File::create(path);
    const double xy[8] = {0, 1, 2, 3, 4, 5, 6, 7}, v[3] = {1, 2, 3};
    file.write("x", {4, 2}, xy);
    file.write("grad", {4, 2}, xy);
    file.write("value", {3}, v);
  }
  EXPECT_THROW_MATCHING(load(path), CollectiveError, "v\\.h5: dataset 'value' has shape \\(3\\); expected \\(4\\)");
}

TEST(Dataset, GeneratedTargetsCarryGradientsAndValues) {
  DataSpec s;
  s.target = Target::quadratic;
  s.P = {2.0, 0.0, 0.0, 3.0};
  const Dataset d = load_dataset(s, torch::kFloat32, parallel::Comm(MPI_COMM_SELF));
  EXPECT_EQ(d.total_rows, 100);
  ASSERT_TRUE(d.has_values());
  // V = 2 x0^2 + 3 x1^2 at the first grid point (-3, -3): 45, gradient (-12, -18).
  EXPECT_FLOAT_EQ(d.values[0].item<float>(), 45.0f);
  EXPECT_FLOAT_EQ(d.grad_samples[0][0].item<float>(), -12.0f);
  EXPECT_FLOAT_EQ(d.grad_samples[0][1].item<float>(), -18.0f);
}

TEST(Shard, ContiguousShardsOfWholeBlocksCoverEveryRowOnce) {
  for (const auto& [rows, ranks] :
       std::vector<std::pair<int64_t, int>>{{1001, 3}, {2, 4}, {100, 1}, {0, 2}, {2000, 3}, {1000000, 7}}) {
    const int64_t block = parallel::reduction_block_rows(rows);
    const int64_t blocks = (rows + block - 1) / block;
    int64_t next = 0;
    for (int r = 0; r < ranks; ++r) {
      const auto s = parallel::shard_of(rows, r, ranks);
      EXPECT_EQ(s.begin, next);
      EXPECT_TRUE(s.count == 0 || s.begin % block == 0) << rows << " rows, rank " << r;
      EXPECT_TRUE(s.end() == rows || s.end() % block == 0) << rows << " rows, rank " << r;
      EXPECT_LE(s.count, (blocks / ranks + 1) * block);  // at most one block more than the smallest
      EXPECT_GE(s.count, std::min(rows - s.begin, blocks / ranks * block) - (s.end() == rows ? block : 0));
      next = s.end();
    }
    EXPECT_EQ(next, rows);
  }
  EXPECT_EQ(parallel::reduction_block_rows(200), 13);       // 16 blocks of a small N
  EXPECT_EQ(parallel::reduction_block_rows(100000), 256);   // 256 rows
  EXPECT_EQ(parallel::reduction_block_rows(1000000), 977);  // at most 1024 blocks
  EXPECT_EQ(parallel::reduction_block_rows(0), 1);
  EXPECT_EQ(parallel::shard_of(1001, 1, 3).begin, 378);  // 16 blocks of 63 over 3 ranks: 6, 5, 5
  EXPECT_EQ(parallel::shard_of(1001, 2, 3).count, 308);
  EXPECT_EQ(parallel::shard_of(2, 1, 3).count, 1);  // blocks of one row
  EXPECT_EQ(parallel::shard_of(2, 3, 4).count, 0);
}

}  // namespace
}  // namespace gradfit::data
