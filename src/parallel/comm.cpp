#include "parallel/comm.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>

#include "common/error.h"

#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // OpenMPI's extensions: MPIX_CUDA_AWARE_SUPPORT
#endif

namespace gradfit::parallel {
namespace {

std::atomic<uint64_t> g_exchanges{0};

void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(call) + " failed: " + std::string(text, length));
}

// A collective or receive that returned: progress with the peers.
void completed() {
  g_exchanges.fetch_add(1, std::memory_order_relaxed);
}

// MPI counts are int; split large buffers.
template <class Fn>
void in_chunks(int64_t count, Fn fn) {
  constexpr int64_t kMaxChunk = INT_MAX;
  for (int64_t offset = 0; offset < count; offset += kMaxChunk)
    fn(offset, static_cast<int>(std::min(kMaxChunk, count - offset)));
}

// a + b = sum + error exactly (Knuth's TwoSum).
void two_sum(double a, double b, double& sum, double& error) {
  sum = a + b;
  const double b_part = sum - a;
  error = (a - (sum - b_part)) + (b - b_part);
}

// The MPI operation: per pair, (a_hi + a_lo) + (b_hi + b_lo) in double-double arithmetic into b, renormalized
// (|lo| <= ulp(hi) / 2).
void add_double_doubles(void* in, void* inout, int* count, MPI_Datatype*) {
  const auto* a = static_cast<const double*>(in);
  auto* b = static_cast<double*>(inout);
  for (int i = 0; i < *count; ++i) {
    double hi, lo, lo_sum, lo_error;
    two_sum(a[2 * i], b[2 * i], hi, lo);
    two_sum(a[2 * i + 1], b[2 * i + 1], lo_sum, lo_error);
    lo += lo_sum;
    two_sum(hi, lo, hi, lo);
    lo += lo_error;
    two_sum(hi, lo, b[2 * i], b[2 * i + 1]);
  }
}

// The pair type and the sum operation, created for one call and freed after it.
struct DoubleDoubleSum {
  MPI_Datatype pair;
  MPI_Op op;
  DoubleDoubleSum() {
    check(MPI_Type_contiguous(2, MPI_DOUBLE, &pair), "MPI_Type_contiguous");
    check(MPI_Type_commit(&pair), "MPI_Type_commit");
    check(MPI_Op_create(&add_double_doubles, /*commute=*/1, &op), "MPI_Op_create");
  }
  ~DoubleDoubleSum() {
    MPI_Op_free(&op);
    MPI_Type_free(&pair);
  }
  DoubleDoubleSum(const DoubleDoubleSum&) = delete;
  DoubleDoubleSum& operator=(const DoubleDoubleSum&) = delete;
};

}  // namespace

MpiEnvironment::MpiEnvironment(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) check(MPI_Init(&argc, &argv), "MPI_Init");
  // Errors come back as codes and are turned into exceptions by check().
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

Comm::Comm(MPI_Comm comm) : comm_(comm) {
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

void Comm::allreduce_sum(float* data, int64_t count) const {
  in_chunks(count, [&](int64_t offset, int n) {
    check(MPI_Allreduce(MPI_IN_PLACE, data + offset, n, MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
  });
  completed();
}

void Comm::allreduce_sum(double* data, int64_t count) const {
  in_chunks(count, [&](int64_t offset, int n) {
    check(MPI_Allreduce(MPI_IN_PLACE, data + offset, n, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
  });
  completed();
}

void Comm::allreduce_sum_double_double(double* pairs, int64_t count) const {
  if (size_ == 1) return;
  const DoubleDoubleSum sum;
  in_chunks(count, [&](int64_t offset, int n) {
    check(MPI_Allreduce(MPI_IN_PLACE, pairs + 2 * offset, n, sum.pair, sum.op, comm_), "MPI_Allreduce");
  });
  completed();
}

int64_t Comm::allreduce_min(int64_t value) const {
  check(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_MIN, comm_), "MPI_Allreduce");
  completed();
  return value;
}

void Comm::broadcast(void* data, int64_t bytes, int root) const {
  auto* base = static_cast<char*>(data);
  in_chunks(bytes,
            [&](int64_t offset, int n) { check(MPI_Bcast(base + offset, n, MPI_BYTE, root, comm_), "MPI_Bcast"); });
  completed();
}

std::vector<std::string> Comm::gather_texts(const std::string& text, int root) const {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(rank_ == root ? size_ : 0), offsets(lengths.size(), 0);
  check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
  std::string all;
  if (rank_ == root) {
    for (int r = 1; r < size_; ++r) offsets[r] = offsets[r - 1] + lengths[r - 1];
    all.resize(static_cast<size_t>(offsets.back() + lengths.back()));
  }
  check(MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, comm_),
        "MPI_Gatherv");
  completed();
  std::vector<std::string> texts;
  for (size_t r = 0; r < lengths.size(); ++r) texts.push_back(all.substr(offsets[r], lengths[r]));
  return texts;
}

void Comm::send(const double* data, int count, int destination, int tag) const {
  check(MPI_Send(data, count, MPI_DOUBLE, destination, tag, comm_), "MPI_Send");
}

void Comm::receive(double* data, int count, int source, int tag) const {
  check(MPI_Recv(data, count, MPI_DOUBLE, source, tag, comm_, MPI_STATUS_IGNORE), "MPI_Recv");
  completed();
}

void Comm::send_text(const std::string& text, int destination, int tag) const {
  check(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, destination, tag, comm_), "MPI_Send");
}

std::string Comm::receive_text(int source, int tag) const {
  MPI_Status status;
  check(MPI_Probe(source, tag, comm_, &status), "MPI_Probe");
  int length = 0;
  check(MPI_Get_count(&status, MPI_CHAR, &length), "MPI_Get_count");
  std::string text(static_cast<size_t>(length), '\0');
  check(MPI_Recv(text.data(), length, MPI_CHAR, status.MPI_SOURCE, tag, comm_, MPI_STATUS_IGNORE), "MPI_Recv");
  completed();
  return text;
}

bool Comm::waiting(int source, int tag) const {
  int found = 0;
  check(MPI_Iprobe(source, tag, comm_, &found, MPI_STATUS_IGNORE), "MPI_Iprobe");
  return found != 0;
}

bool Comm::poll(int* source, int* tag) const {
  int waiting = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &waiting, &status), "MPI_Iprobe");
  if (waiting) *source = status.MPI_SOURCE, *tag = status.MPI_TAG;
  return waiting != 0;
}

MPI_Comm SplitComm::split(const Comm& parent, int color, int key) {
  MPI_Comm handle;
  check(MPI_Comm_split(parent.get(), color, key, &handle), "MPI_Comm_split");
  return handle;
}

SplitComm::SplitComm(const Comm& parent, int color, int key) : handle_(split(parent, color, key)), comm_(handle_) {}

SplitComm::~SplitComm() {
  MPI_Comm_free(&handle_);
}

Comm::NodeLocal Comm::node_local() const {
  MPI_Comm node;
  check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  NodeLocal local;
  MPI_Comm_rank(node, &local.rank);
  MPI_Comm_size(node, &local.size);
  MPI_Comm_free(&node);
  return local;
}

void Comm::abort(int exit_code) const {
  MPI_Abort(comm_, exit_code);
  std::_Exit(exit_code);  // MPI_Abort should not return; make sure.
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

uint64_t exchanges_completed() {
  return g_exchanges.load(std::memory_order_relaxed);
}

bool mpi_is_cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

}  // namespace gradfit::parallel
