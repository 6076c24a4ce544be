#pragma once
// Everything every rank knows before the first job of a sweep: the expanded sweep, where it runs, what is left to
// do (app.cpp fills it; app_console.h prints it).
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "sweep/jobs.h"
#include "sweep/output_folder.h"

namespace gradfit {

struct Sweep {
  config::Config config;
  int threads = 1;  // per rank
  torch::Device device = torch::kCPU;
  std::filesystem::path out_dir;
  sweep::PriorWork prior;  // world rank 0 only
  sweep::SweepPlan plan;
  int groups = 1;
  std::vector<std::string> nodes;  // world rank 0: one line per node (node_lines)
};

}  // namespace gradfit
