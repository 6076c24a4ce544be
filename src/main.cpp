// gradfit_dist: fit a scalar potential V(x) to gradient samples, data-parallel over MPI ranks.
#include <CLI/CLI.hpp>

#include "app.h"
#include "gradfit/version.h"
#include "parallel/comm.h"

namespace {

void add_train_options(CLI::App& cli, gradfit::AppOptions& options) {
  // Not ->required(): `gradfit_dist eval ...` has none; main() checks it when no command is given. Not
  // CLI::ExistingFile either: reading the file reports a missing one as a config error (exit 1, rank 0 speaks).
  cli.add_option("SWEEP.yaml", options.config_path, "Run description (see docs/config.md)");
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
  cli.add_option("--stop-timeout", options.stop_timeout,
                 "After a stop signal (SIGTERM, SIGUSR1), seconds a rank waits without word from the others before "
                 "it gives up (outcome 'failed', lock released, checkpoints kept): a rank or node is gone. Keep it "
                 "below Slurm's KillWait (default 30 s); 0 waits for ever (default 20)")
      ->check(CLI::NonNegativeNumber);
}

constexpr const char* kRunHelp =
    "Which run of the results file: its name under /runs, its id, or 'best' (among runs done or early_stopped, the "
    "lowest best_val_loss when the runs validate, else the lowest final_rel_grad_error); needed when the file "
    "holds several (or write RESULTS.h5#NAME)";

CLI::App* add_eval(CLI::App& cli, gradfit::EvalOptions& options) {
  auto* eval = cli.add_subcommand("eval",
                                  "Evaluate a trained run's V and dV/dx at the points of an HDF5 file "
                                  "(x: N×n; grad and value, where present, give the error metrics)");
  eval->add_option("RESULTS.h5", options.results_path, "A results file (results.h5 or runs/<id>.h5)")->required();
  eval->add_option("DATA.h5", options.data_path, "Points x (N×n), optional grad (N×n) and value (N)")->required();
  eval->add_option("--run", options.run, kRunHelp);
  eval->add_option("--out", options.out_path, "Write the predictions to this HDF5 file: value (N), grad (N×n)");
  eval->add_option("--device", options.device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  eval->add_option("--threads", options.threads, "Intra-op threads per rank")->check(CLI::PositiveNumber);
  return eval;
}

CLI::App* add_export(CLI::App& cli, gradfit::ExportOptions& options) {
  auto* exp = cli.add_subcommand("export",
                                 "Write a trained run as a TorchScript module (forward(x) -> V, "
                                 "gradient(x) -> dV/dx) for torch.jit.load");
  exp->add_option("RESULTS.h5", options.results_path, "A results file (results.h5 or runs/<id>.h5)")->required();
  exp->add_option("--run", options.run, kRunHelp);
  exp->add_option("--out", options.out_path, "The TorchScript file to write, e.g. model.pt")->required();
  return exp;
}

}  // namespace

int main(int argc, char** argv) {
  // Always under MPI, even as a single process without mpirun.
  gradfit::parallel::MpiEnvironment mpi(argc, argv);
  const gradfit::parallel::Comm world(MPI_COMM_WORLD);

  gradfit::AppOptions options;
  gradfit::EvalOptions eval_options;
  gradfit::ExportOptions export_options;
  CLI::App cli{
      "gradfit_dist: fit a scalar potential V(x) (an MLP) whose gradient dV/dx matches gradient samples.\n"
      "Run it under mpirun to train data-parallel over ranks. Commands eval and export use a trained run."};
  cli.set_version_flag("--version",
                       std::string("gradfit_dist ") + gradfit::kVersion + " (" + gradfit::kGitCommit + ")");
  add_train_options(cli, options);
  const auto* eval = add_eval(cli, eval_options);
  const auto* exp = add_export(cli, export_options);
  cli.require_subcommand(0, 1);
  try {
    cli.parse(argc, argv);
    if (cli.get_subcommands().empty() && options.config_path.empty()) throw CLI::RequiredError("SWEEP.yaml");
  } catch (const CLI::ParseError& e) {
    // Every rank parsed the same arguments; only rank 0 speaks.
    if (world.is_root()) return cli.exit(e);
    return e.get_exit_code();
  }
  if (eval->parsed()) return gradfit::run_eval(eval_options, world);
  if (exp->parsed()) return gradfit::run_export(export_options, world);
  for (int i = 0; i < argc; ++i) options.command_line += (i ? " " : "") + std::string(argv[i]);
  return gradfit::run_app(options, world);
}
