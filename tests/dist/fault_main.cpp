// A gradfit_dist job in which rank GRADFIT_FAULT_RANK throws after epoch GRADFIT_FAULT_EPOCH (defaults 2 and 3):
// the whole job must end promptly with a non-zero exit, not hang in a collective. Usage:
//   mpiexec -n 4 fault_job SWEEP.yaml OUT_DIR
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "app.h"
#include "dist/mpi_env.h"

int main(int argc, char** argv) {
  gradfit::dist::MpiEnvironment mpi(argc, argv);
  const gradfit::dist::Comm world(MPI_COMM_WORLD);
  if (argc != 3) return 2;
  const auto env_or = [](const char* name, int fallback) {
    const char* value = std::getenv(name);
    return value ? std::atoi(value) : fallback;
  };
  const int fault_rank = env_or("GRADFIT_FAULT_RANK", 2);
  const int fault_epoch = env_or("GRADFIT_FAULT_EPOCH", 3);

  gradfit::AppOptions options;
  options.config_path = argv[1];
  options.out_dir = argv[2];
  options.after_epoch = [&](int64_t epoch) {
    if (world.rank() == fault_rank && epoch == fault_epoch)
      throw std::runtime_error("injected failure after epoch " + std::to_string(epoch));
  };
  return gradfit::run_app(options, world);
}
