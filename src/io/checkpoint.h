#pragma once
// Checkpoint files: OUT/checkpoints/<run id>.h5, the state to continue an unfinished run (train::Checkpoint).
// Written whole to a temporary file, fsynced and renamed over the previous one, so a kill at any instant leaves
// the previous checkpoint intact.
#include <functional>
#include <string>

#include "train/trainer.h"

namespace gradfit::io {

// One rank writes (the group's rank 0). `before_rename` runs when the temporary file is complete (a test seam).
// Throws IoError.
void write_checkpoint(const std::string& path, const std::string& run_id, const train::Checkpoint& checkpoint,
                      const std::function<void()>& before_rename = {});

// Reads a checkpoint; its parameters come back as float64 or float32 tensors as written. Throws IoError.
train::Checkpoint read_checkpoint(const std::string& path, const std::string& run_id);

}  // namespace gradfit::io
