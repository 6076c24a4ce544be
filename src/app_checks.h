#pragma once
// What is checked of a sweep's data files before anything is trained or written: the shapes of every file the runs
// name against the runs (also for --dry-run), and the rows of every data.test_path as training checks its data.
#include "config/config.h"
#include "data/dataset.h"
#include "parallel/comm.h"

namespace gradfit {

// Runs on a user's file (and test files) against the files' shapes (read, not the data): sizes, batch size,
// features, values, and data.test_path's n and atoms. Returns the shapes. ConfigError or DataError naming the file
// and key. One rank.
data::FileLayouts check_against_files(const config::Config& config);

// The atomic numbers of each run's data file in its model (config::ModelSpec::numbers), for the features that
// need the atoms' elements (atom_centered). After check_against_files; every rank reads the attribute itself.
void attach_elements(config::Config& config);

// Every data.test_path's rows, checked as the training data are (NaN or Inf, the coordinates of a file with atoms,
// two atoms at one place for features that need distinct atoms), with each run's dtype. Collective over `world`;
// errors are CollectiveErrors naming the sweep file's key, the file and the row.
void check_test_rows(const config::Config& config, const parallel::Comm& world);

}  // namespace gradfit
