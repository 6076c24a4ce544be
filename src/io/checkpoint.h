#pragma once
// Checkpoint files: OUT/checkpoints/<run id>.h5, the state to continue an unfinished run (records::Checkpoint), or
// that of every unfinished run of an ensemble, in one file named after the ensemble's first run, so that its runs
// are always saved at the same step. Written whole to a temporary file, fsynced and renamed over the previous one,
// so a kill at any instant leaves the previous checkpoint intact.
#include <functional>
#include <string>

#include "records/records.h"

namespace gradfit::io {

// One rank writes (the group's rank 0). `before_rename` runs when the temporary file is complete (a test seam).
// Throws IoError.
void write_checkpoint(const std::string& path, const std::string& run_id, const records::Checkpoint& checkpoint,
                      const std::function<void()>& before_rename = {});

// An ensemble's checkpoint: `checkpoints[i]` of run `run_ids[i]`. One run alone is written as write_checkpoint does.
void write_checkpoints(const std::string& path, const std::vector<std::string>& run_ids,
                       const std::vector<records::Checkpoint>& checkpoints,
                       const std::function<void()>& before_rename = {});
// The runs whose state a checkpoint file holds, in order (one for a run alone). Throws IoError.
std::vector<std::string> checkpoint_runs(const std::string& path);
// The state of each of `run_ids` (all held by the file). Throws IoError.
std::vector<records::Checkpoint> read_checkpoints(const std::string& path, const std::vector<std::string>& run_ids);

}  // namespace gradfit::io
