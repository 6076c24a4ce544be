#pragma once
// Keeping the replicas identical: parameters broadcast from rank 0 at the start, and per step ONE allreduce over a
// single flat buffer that holds every weight gradient plus a few metric scalars.
#include <torch/torch.h>

#include <vector>

#include "parallel/comm.h"

namespace gradfit::parallel {

// Overwrites every rank's parameters with rank 0's (collective).
void broadcast_parameters(const std::vector<torch::Tensor>& params, const Comm& comm);

// Sums gradients over ranks through one flat buffer, allocated once.
class GradientAllreduce {
 public:
  // `extra_slots` scalars ride along after the gradients (the step's loss sums), in the parameters' dtype.
  GradientAllreduce(std::vector<torch::Tensor> params, int64_t extra_slots);

  // Collective. gather_gradients(), then `extras` into the first extra slots, then reduce_in_place(). Returns the
  // summed `extras` (a view into the buffer).
  torch::Tensor reduce(const std::vector<torch::Tensor>& extras, const Comm& comm);

  // Copies each parameter's .grad into the buffer (zeros where a parameter got no gradient, such as the output
  // bias under a pure gradient loss); the extra slots stay as they are.
  void gather_gradients();

  // For code that writes gradients straight into the buffer (gradients()) and the extra slots. zero() clears the
  // whole buffer; reduce_in_place() (collective) then sums it as it stands over all ranks, sets each .grad to its
  // view and returns the summed extra slots.
  torch::Tensor extras() const { return buffer_.narrow(0, grad_numel_, buffer_.numel() - grad_numel_); }
  void zero() { buffer_.zero_(); }
  torch::Tensor reduce_in_place(const Comm& comm);
  // Sums that do not depend on how the rows are spread over the ranks, to the last bit as a rule: the caller
  // computes the terms block by block (the blocks of parallel/shard.h, whose terms come out alike on any rank
  // count), each into the zeroed buffer followed by add_block(), which adds the buffer to a double-double
  // accumulator (in float64) and zeroes it. reduce_compensated() (collective) adds the buffer as it stands (the
  // extra slots' requests, say), sums the accumulators over the ranks in double-double arithmetic and writes the
  // sums, rounded once, into the buffer; then as reduce_in_place(). The sum is exact to ~1e-32 relative whatever
  // the grouping, so any rank count rounds it to the same number unless it lies that close to a rounding boundary.
  void add_block();
  torch::Tensor reduce_compensated(const Comm& comm);

  // Extra slot i of the last reduce, on the host: read from the host copy where the sum passed through one (a CPU
  // buffer, or a GPU buffer staged through the host), else copied from the device (which waits for it).
  double reduced_extra(int64_t i) const;
  // All gradients as one flat tensor (in the parameters' order), a view into the buffer.
  torch::Tensor gradients() const { return buffer_.narrow(0, 0, grad_numel_); }

  // Wall seconds spent in the allreduce itself (including any device-host copies and waiting for other ranks).
  double seconds() const { return seconds_; }

 private:
  double seconds_ = 0;
  std::vector<torch::Tensor> params_;
  torch::Tensor buffer_;              // all gradients, then the extras
  std::vector<torch::Tensor> views_;  // of the gradients in buffer_, one per parameter
  torch::Tensor host_;                // the last sum on the host, where there is one
  torch::Tensor sum_, error_;         // the double-double accumulator of add_block(): sum_ + error_, float64
  int64_t grad_numel_ = 0;
};

}  // namespace gradfit::parallel
