// gradfit_dist: fit a scalar potential V(x) to gradient samples, data-parallel over MPI ranks.
#include <CLI/CLI.hpp>

#include "app.h"
#include "gradfit/version.h"
#include "parallel/comm.h"

int main(int argc, char** argv) {
  // Always under MPI, even as a single process without mpirun.
  gradfit::parallel::MpiEnvironment mpi(argc, argv);
  const gradfit::parallel::Comm world(MPI_COMM_WORLD);

  gradfit::AppOptions options;
  CLI::App cli{
      "gradfit_dist: fit a scalar potential V(x) (an MLP) whose gradient dV/dx matches gradient samples.\n"
      "Run it under mpirun to train data-parallel over ranks."};
  cli.set_version_flag("--version",
                       std::string("gradfit_dist ") + gradfit::kVersion + " (" + gradfit::kGitCommit + ")");
  cli.add_option("SWEEP.yaml", options.config_path, "Run description (see README: YAML schema)")
      ->required()
      ->check(CLI::ExistingFile);
  cli.add_option("--out", options.out_dir,
                 "Output directory for results.h5 (default: output.dir, else results/<name>)");
  cli.add_flag("--fresh", options.fresh,
               "Discard the results and checkpoints an earlier invocation left in the output folder (by default "
               "finished runs are kept and interrupted ones continue)");
  cli.add_flag("--dry-run", options.dry_run, "Print the runs the sweep expands to, and exit");
  cli.add_option("--set", options.overrides,
                 "Override a key of the base configuration: --set optimizer.lr=0.01 "
                 "(repeatable; the value is YAML, e.g. --set model.widths=[64,64])")
      ->allow_extra_args(false);
  cli.add_option("--progress", options.progress,
                 "How rank 0 shows the runs in flight: live (one rewritten line), lines (a line every 30 s), "
                 "auto (live on a terminal outside Slurm)")
      ->check(CLI::IsMember({"auto", "live", "lines"}));
  cli.add_option("--threads", options.threads,
                 "Intra-op threads per rank (default: OMP_NUM_THREADS, or the "
                 "node's cores shared among its ranks)")
      ->check(CLI::PositiveNumber);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank parsed the same arguments; only rank 0 speaks.
    if (world.is_root()) return cli.exit(e);
    return e.get_exit_code();
  }
  for (int i = 0; i < argc; ++i) options.command_line += (i ? " " : "") + std::string(argv[i]);
  return gradfit::run_app(options, world);
}
