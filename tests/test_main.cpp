// GoogleTest main for gradfit tests: the library's collectives need MPI, so every test binary runs inside an MPI
// environment (a single-process world unless started by mpiexec). Under mpiexec only rank 0 prints the report;
// every rank runs every test, and the job fails if any rank fails.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "device/device.h"
#include "parallel/comm.h"

namespace {

// A test binary started without mpiexec is an OpenMPI singleton, and two singletons starting at once (ctest -j)
// can race to create OpenMPI's session directory /tmp/ompi.<host>.<uid>: the loser fails in MPI_Init with "mkdir
// ... File exists" (seen in CI). Each such process gets a session base of its own, removed at exit.
struct PrivateOpenMpiSessionBase {
  std::string path;
  PrivateOpenMpiSessionBase() {
    if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("OMPI_MCA_orte_tmpdir_base")) return;  // mpiexec's
    std::string pattern = (std::filesystem::temp_directory_path() / "gradfit-test-ompi-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return;
    path = pattern;
    ::setenv("OMPI_MCA_orte_tmpdir_base", path.c_str(), 1);
  }
  ~PrivateOpenMpiSessionBase() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const PrivateOpenMpiSessionBase session_base;  // before MPI_Init, gone after MPI_Finalize
  gradfit::parallel::MpiEnvironment mpi(argc, argv);
  const gradfit::parallel::Comm world(MPI_COMM_WORLD);
  // As many threads as the tool itself would use: never oversubscribe when ranks share cores.
  gradfit::device::set_threads(gradfit::device::default_thread_count(world.node_local().size));
  ::testing::InitGoogleTest(&argc, argv);
  if (!world.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
