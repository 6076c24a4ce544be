#include "io/results.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "io/h5.h"
#include "test_util.h"

namespace gradfit::io {
namespace {

std::string read_string_attribute(hid_t location, const char* name) {
  const hid_t attr = H5Aopen(location, name, H5P_DEFAULT);
  const hid_t type = H5Aget_type(attr);
  char* text = nullptr;
  H5Aread(attr, type, &text);
  std::string out = text ? text : "";
  H5free_memory(text);
  H5Tclose(type), H5Aclose(attr);
  return out;
}

records::TrainResult small_result() {
  records::TrainResult r;
  r.history = {{1, 4.0, 1.0, 0.1}, {2, 2.0, 0.7, 0.1}, {3, 3.0, 0.8, 0.1}};
  r.parameters = {{"layers.0.weight", torch::arange(6, torch::kFloat32).view({3, 2})},
                  {"layers.0.bias", torch::zeros({3}, torch::kFloat32)}};
  r.parameter_count = 9;
  return r;
}

TEST(Results, WritesHistoryModelAndAttributes) {
  gradfit::testing::TempDir dir;
  const auto path = dir.file("results.h5");
  config::Config config = config::parse_config("name: demo\ndata:\n  target: quadratic\n  P: [[1]]\n", "demo.yaml");
  RunProvenance context;
  context.command_line = "gradfit_dist demo.yaml";
  context.ranks = 3;
  context.dim = 1;
  write_results(path, config, config.runs.at(0), context, small_result());

  const auto file = File::open_read_only(path);
  EXPECT_EQ(file.read_rows("runs/demo/train_loss", 0, 3), (std::vector<double>{4.0, 2.0, 3.0}));
  EXPECT_EQ(file.read_rows("runs/demo/epoch", 0, 3), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(file.read_rows("runs/demo/rel_grad_error", 0, 3), (std::vector<double>{1.0, 0.7, 0.8}));
  EXPECT_EQ(file.dataset_info("runs/demo/model/layers.0.weight").shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(file.read_rows("runs/demo/model/layers.0.weight", 2, 1), (std::vector<double>{4, 5}));
  EXPECT_EQ(read_string_attribute(file.id(), "config_yaml"), config.yaml_text);
  EXPECT_EQ(read_string_attribute(file.id(), "command_line"), "gradfit_dist demo.yaml");
  const hid_t run = H5Gopen2(file.id(), "runs/demo", H5P_DEFAULT);
  EXPECT_EQ(read_string_attribute(run, "status"), "done");
  double best = 0;
  const hid_t attr = H5Aopen(run, "best_loss", H5P_DEFAULT);
  H5Aread(attr, H5T_NATIVE_DOUBLE, &best);
  H5Aclose(attr), H5Gclose(run);
  EXPECT_EQ(best, 2.0);
  // Nothing but the results file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(Results, AFailedWriteLeavesThePreviousFileWhole) {
  gradfit::testing::TempDir dir;
  const auto path = dir.file("results.h5");
  config::Config config = config::parse_config("name: demo\ndata:\n  target: quadratic\n  P: [[1]]\n", "demo.yaml");
  write_results(path, config, config.runs.at(0), RunProvenance{}, small_result());
  const auto size_before = std::filesystem::file_size(path);

  auto bad = small_result();
  bad.parameters.push_back(bad.parameters.front());  // a duplicate dataset name makes the write fail midway
  EXPECT_THROW_MATCHING(write_results(path, config, config.runs.at(0), RunProvenance{}, bad), IoError,
                        "cannot create dataset .layers.0.weight. in .*results.h5.tmp-[0-9]+/runs/demo/model");
  EXPECT_EQ(std::filesystem::file_size(path), size_before);
  EXPECT_EQ(File::open_read_only(path).read_rows("runs/demo/train_loss", 0, 3), (std::vector<double>{4, 2, 3}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);  // no temporary left
}

}  // namespace
}  // namespace gradfit::io
