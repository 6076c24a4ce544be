#include "train/dataset_cache.h"

#include <cstdio>

#include "model/mlp.h"
#include "train/standardization_fit.h"

namespace gradfit::train {

DatasetCache::Key DatasetCache::key_of(const config::RunSpec& run) {
  Key key;
  config::DataSpec rows = run.data;
  rows.test_path.clear();  // the training rows do not depend on it
  key.data = config::canonical_data_text(rows);
  key.dtype = config::to_string(run.model.dtype);
  // The scaling of φ is fitted to the features, and atom_centered's element energies are taken off the values.
  if (run.data.standardize || run.model.features == config::FeatureKind::atom_centered) {
    key.features = config::to_string(run.model.features);
    char period_text[32];
    for (const double period : run.model.periods) {
      std::snprintf(period_text, sizeof period_text, ",%.17g", period);
      key.features += period_text;
    }
  }
  if (run.train.val_fraction > 0) {
    char split[64];
    std::snprintf(split, sizeof split, "%.17g/%llu", run.train.val_fraction,
                  static_cast<unsigned long long>(run.train.seed));
    key.split = split;
  }
  return key;
}

const data::Dataset& DatasetCache::training(const config::RunSpec& run, const parallel::Comm& group) {
  const Key key = key_of(run);
  const bool fitted = training_ && (training_->standardization.active() || training_->has_weights() ||
                                    !training_->standardization.element_energies.empty());
  if (!training_ || !key.same_rows(training_key_) || (fitted && key.split != training_key_.split)) {
    training_.reset();
    training_ = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), group, device_);
    prepare_dataset(*training_, run, group);
    training_key_ = key;
    checked_features_.clear();
  }
  if (training_->is_frames()) return *training_;  // its geometry was checked by prepare_dataset
  const model::Features features(run.model, training_->dim);
  if (checked_features_ != features.kind().name()) {  // two atoms at one place, for inverse distances
    data::check_feature_rows(*training_, features, group);
    checked_features_ = features.kind().name();
  }
  return *training_;
}

const data::Dataset& DatasetCache::test(const config::RunSpec& run, const parallel::Comm& group) {
  const std::string key =
      run.data.test_path + "\n" + config::to_string(run.model.dtype) + "\n" + config::to_string(run.model.features);
  if (!test_ || key != test_key_) {
    test_.reset();
    test_ = data::load_points_for(run.model, run.data.test_path, group);
    test_key_ = key;
  }
  return *test_;
}

}  // namespace gradfit::train
