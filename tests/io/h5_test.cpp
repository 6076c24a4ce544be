#include "io/h5.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::io {
namespace {

TEST(H5, ReadRowsReadsAHyperslabOfRows) {
  gradfit::testing::TempDir dir;
  const auto path = dir.file("rows.h5");
  std::vector<double> data(10 * 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<double>(i);
  {
    const auto file = File::create(path);
    file.write("m", {10, 3}, data.data());
    const int64_t ints[4] = {4, 5, 6, 7};
    file.write("v", {4}, ints);
  }
  const auto file = File::open_read_only(path);
  const auto info = file.dataset_info("m");
  EXPECT_EQ(info.shape, (std::vector<int64_t>{10, 3}));
  EXPECT_EQ(info.type_class, H5T_FLOAT);
  EXPECT_EQ(file.read_rows("m", 4, 2), (std::vector<double>{12, 13, 14, 15, 16, 17}));
  EXPECT_TRUE(file.read_rows("m", 10, 0).empty());
  EXPECT_EQ(file.read_rows("v", 1, 2), (std::vector<double>{5, 6}));  // integers convert to double
  EXPECT_EQ(file.dataset_info("v").type_class, H5T_INTEGER);
  EXPECT_FALSE(file.has("absent"));
  EXPECT_THROW_MATCHING(file.dataset_info("absent"), IoError, "cannot open dataset 'absent' in '.*rows\\.h5'");
}

TEST(H5, CreateInAMissingDirectoryNamesThePath) {
  EXPECT_THROW_MATCHING(File::create("/nonexistent/dir/out.h5"), IoError,
                        "cannot create HDF5 file '/nonexistent/dir/out\\.h5'");
}

}  // namespace
}  // namespace gradfit::io
