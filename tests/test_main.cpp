// GoogleTest main for gradfit tests: the library's collectives need MPI, so every test binary runs inside an MPI
// environment (a single-process "singleton" world unless started by mpiexec).
#include <gtest/gtest.h>

#include "dist/mpi_env.h"

int main(int argc, char** argv) {
  gradfit::dist::MpiEnvironment mpi(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
