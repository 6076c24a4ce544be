#pragma once
// The data a job's runs train and are tested on, loaded, prepared (train/standardization_fit.h: prepare_dataset) and
// checked for the runs' features once, and kept for the next job that reads the same rows the same way: the runs
// of a sweep usually share their data. One per rank.
#include <torch/types.h>

#include <optional>
#include <string>

#include "config/config.h"
#include "data/dataset.h"
#include "parallel/comm.h"

namespace gradfit::train {

class DatasetCache {
 public:
  explicit DatasetCache(torch::Device device) : device_(device) {}

  // The training data of `run` on this rank, on the device, prepared for it and its rows checked for its features.
  // Collective over `group` when anything must be loaded, fitted or checked.
  const data::Dataset& training(const config::RunSpec& run, const parallel::Comm& group);
  // This rank's shard of run.data.test_path, in the model's dtype, on the CPU, as `eval` reads it
  // (data::load_points_for). Collective over `group` when it must be loaded.
  const data::Dataset& test(const config::RunSpec& run, const parallel::Comm& group);

 private:
  // What prepared training rows depend on: the data (data.test_path aside) and the dtype; the features where
  // data.standardize fits their scaling; the validation split where anything was fitted to the training rows.
  struct Key {
    std::string data, dtype, features, split;
    bool same_rows(const Key& o) const { return data == o.data && dtype == o.dtype && features == o.features; }
  };
  static Key key_of(const config::RunSpec& run);

  torch::Device device_;
  std::optional<data::Dataset> training_;
  Key training_key_;
  std::string checked_features_;  // the feature kind training_'s rows were checked for (data::check_feature_rows)
  std::optional<data::Dataset> test_;
  std::string test_key_;
};

}  // namespace gradfit::train
