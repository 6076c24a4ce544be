#pragma once
// MPI, wrapped: an RAII environment and a communicator handle with the few collectives the tool uses.
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace gradfit::parallel {

// MPI_Init on construction, MPI_Finalize on destruction. Exactly one per process, created first in main.
class MpiEnvironment {
 public:
  MpiEnvironment(int& argc, char**& argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
};

// A non-owning view of a communicator. Every collective here must be called by all ranks of the communicator.
class Comm {
 public:
  explicit Comm(MPI_Comm comm = MPI_COMM_WORLD);
  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }

  // In-place sums over all ranks (collective).
  void allreduce_sum(float* data, int64_t count) const;
  void allreduce_sum(double* data, int64_t count) const;
  // Sums of double-double numbers: `pairs` holds `count` (hi, lo) pairs, each the unevaluated sum hi + lo; every
  // rank's pairs are added in double-double arithmetic (error-free TwoSum, then renormalized), so the result is the
  // exact sum to ~1e-32 relative whatever the order MPI adds in. In place, collective.
  void allreduce_sum_double_double(double* pairs, int64_t count) const;
  int64_t allreduce_min(int64_t value) const;
  // Root's bytes overwrite every other rank's (collective).
  void broadcast(void* data, int64_t bytes, int root = 0) const;
  // Every rank's text, in rank order, on `root` (empty elsewhere); collective.
  std::vector<std::string> gather_texts(const std::string& text, int root = 0) const;

  // Point to point, for small control messages of doubles.
  void send(const double* data, int count, int destination, int tag) const;
  void receive(double* data, int count, int source, int tag) const;
  // Point to point, for a text of any length (e.g. an error message): receive_text blocks until a message with
  // `tag` from `source` arrives and takes it whole.
  void send_text(const std::string& text, int destination, int tag) const;
  std::string receive_text(int source, int tag) const;
  // The source and tag of a message waiting to be received, without blocking; false when there is none.
  bool poll(int* source, int* tag) const;
  // Whether a message with `tag` from `source` is waiting to be received, without blocking.
  bool waiting(int source, int tag) const;

  // This rank's place among the ranks of this communicator on its node (collective).
  struct NodeLocal {
    int rank = 0;
    int size = 1;
  };
  NodeLocal node_local() const;
  // Ends every process of the job: for errors that only some ranks see.
  [[noreturn]] void abort(int exit_code) const;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

// This host's name (gethostname), "unknown" where the system does not say.
std::string host_name();

// How many collectives and receives this process has completed: what a watchdog watches to tell a rank that
// waits for a dead peer from one that works.
uint64_t exchanges_completed();

// A communicator this process created by splitting another (MPI_Comm_split, collective over the parent); freed
// on destruction.
class SplitComm {
 public:
  SplitComm(const Comm& parent, int color, int key);
  ~SplitComm();
  SplitComm(const SplitComm&) = delete;
  SplitComm& operator=(const SplitComm&) = delete;
  const Comm& comm() const { return comm_; }

 private:
  static MPI_Comm split(const Comm& parent, int color, int key);
  MPI_Comm handle_;
  Comm comm_;
};

// True when the MPI library can read and write GPU memory directly (OpenMPI's MPIX_Query_cuda_support).
bool mpi_is_cuda_aware();

}  // namespace gradfit::parallel
