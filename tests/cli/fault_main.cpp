// A gradfit_dist job with a fault injected, for tests of what a failure leaves behind. Usage:
//   mpiexec -n 4 fault_job SWEEP.yaml OUT_DIR
// GRADFIT_FAULT_MODE picks the fault:
//   throw (default)       rank GRADFIT_FAULT_RANK (2) throws after epoch GRADFIT_FAULT_EPOCH (3) of whichever run it
//                         trains, first writing the time to GRADFIT_FAULT_MARKER: one rank's failure, which the
//                         others cannot share; the whole job must end promptly with a non-zero exit, not hang in a
//                         collective;
//   throw_before_run:K    the rank 0 of the group that trains run K (0-based, in the sweep's order) throws just
//                         before it: a step the group shares (parallel::all_or_none), so the whole group fails;
//   unwritable_run_file:K  a directory is put where run K's results file goes (OUT_DIR/runs/<id>.h5) just before
//                         the run starts, so that the group cannot write it when the run ends;
//   freeze_before_run:K   a group's rank 0 freezes just before the K-th run it starts (between runs);
//   freeze_in_checkpoint:K  a group's rank 0 freezes in its K-th checkpoint write, the temporary file complete
//                         but not renamed (mid-checkpoint).
// A freeze creates the file GRADFIT_FAULT_MARKER and waits, so a test can SIGKILL the job at exactly that moment.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "app.h"
#include "config/config.h"
#include "parallel/comm.h"

namespace {

int env_or(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value ? std::atoi(value) : fallback;
}

[[noreturn]] void freeze() {
  const char* marker = std::getenv("GRADFIT_FAULT_MARKER");
  if (marker) std::ofstream(marker) << "frozen\n";
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  gradfit::parallel::MpiEnvironment mpi(argc, argv);
  const gradfit::parallel::Comm world(MPI_COMM_WORLD);
  if (argc != 3) return 2;
  const std::string mode = std::getenv("GRADFIT_FAULT_MODE") ? std::getenv("GRADFIT_FAULT_MODE") : "throw";
  const auto colon = mode.find(':');
  const std::string kind = mode.substr(0, colon);
  const int count = colon == std::string::npos ? 1 : std::atoi(mode.c_str() + colon + 1);

  gradfit::AppOptions options;
  options.config_path = argv[1];
  options.out_dir = argv[2];
  options.progress = "lines";
  int seen = 0;
  if (kind == "throw") {
    const int fault_rank = env_or("GRADFIT_FAULT_RANK", 2);
    const int fault_epoch = env_or("GRADFIT_FAULT_EPOCH", 3);
    options.after_epoch = [&](int64_t epoch) {
      if (world.rank() == fault_rank && epoch == fault_epoch) {
        if (const char* marker = std::getenv("GRADFIT_FAULT_MARKER")) {  // when it failed, for the test's clock
          const auto now = std::chrono::system_clock::now().time_since_epoch();
          std::ofstream(marker) << std::chrono::duration<double>(now).count() << "\n";
        }
        throw std::runtime_error("injected failure after epoch " + std::to_string(epoch));
      }
    };
  } else if (kind == "throw_before_run") {
    options.before_run = [&](int64_t run) {
      if (run == count) throw std::runtime_error("injected failure before run " + std::to_string(run));
    };
  } else if (kind == "unwritable_run_file") {
    // Read here only for the run's id (the job reads the file again, on every rank).
    const std::string id = gradfit::config::load_config(options.config_path).runs.at(count).id;
    options.before_run = [&, id](int64_t run) {
      if (run == count) std::filesystem::create_directories(std::filesystem::path(argv[2]) / "runs" / (id + ".h5"));
    };
  } else if (kind == "freeze_before_run") {
    options.before_run = [&](int64_t) {
      if (++seen == count) freeze();
    };
  } else if (kind == "freeze_in_checkpoint") {
    options.before_checkpoint_commit = [&] {
      if (++seen == count) freeze();
    };
  } else {
    return 2;
  }
  return gradfit::run_app(options, world);
}
