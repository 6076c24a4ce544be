#include "parallel/grad_sync.h"

#include <chrono>

#include "common/error.h"

namespace gradfit::parallel {
namespace {

// Sums `buffer` in place over all ranks. A GPU buffer goes straight to MPI when the MPI library is CUDA-aware,
// else through one host copy. Returns the summed values on the host where they are there anyway (a CPU buffer, or
// the host copy), else an undefined tensor.
torch::Tensor allreduce(torch::Tensor& buffer, const Comm& comm) {
  if (comm.size() == 1) return buffer.is_cpu() ? buffer : torch::Tensor();
  static const bool cuda_aware = mpi_is_cuda_aware();
  const bool direct = buffer.is_cpu() || (buffer.is_cuda() && cuda_aware);
  if (direct && !buffer.is_cpu()) torch::cuda::synchronize(buffer.device().index());  // kernels wrote it
  torch::Tensor data = direct ? buffer : buffer.cpu();
  if (data.scalar_type() == torch::kFloat64)
    comm.allreduce_sum(data.data_ptr<double>(), data.numel());
  else if (data.scalar_type() == torch::kFloat32)
    comm.allreduce_sum(data.data_ptr<float>(), data.numel());
  else
    throw Error("allreduce supports float32 and float64 only");
  if (!direct) buffer.copy_(data);
  return data.is_cpu() ? data : torch::Tensor();
}

}  // namespace

void broadcast_parameters(const std::vector<torch::Tensor>& params, const Comm& comm) {
  if (comm.size() == 1 || params.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& p : params) flat.push_back(p.detach().reshape(-1));
  auto buffer = torch::cat(flat).cpu().contiguous();
  comm.broadcast(buffer.data_ptr(), buffer.numel() * static_cast<int64_t>(buffer.element_size()));
  int64_t offset = 0;
  for (const auto& p : params) {
    p.copy_(buffer.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
}

GradientAllreduce::GradientAllreduce(std::vector<torch::Tensor> params, int64_t extra_slots)
    : params_(std::move(params)) {
  for (const auto& p : params_) grad_numel_ += p.numel();
  const auto options = params_.empty() ? torch::TensorOptions(torch::kFloat32) : params_.front().options();
  buffer_ = torch::zeros({grad_numel_ + extra_slots}, options.requires_grad(false));
  int64_t offset = 0;
  for (const auto& p : params_) {
    views_.push_back(buffer_.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
}

torch::Tensor GradientAllreduce::reduce_in_place(const Comm& comm) {
  const auto start = std::chrono::steady_clock::now();
  host_ = allreduce(buffer_, comm);
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = views_[i];
  return extras();
}

void GradientAllreduce::add_block() {
  torch::NoGradGuard no_grad;
  if (!sum_.defined()) {
    sum_ = torch::zeros_like(buffer_, buffer_.options().dtype(torch::kFloat64));
    error_ = torch::zeros_like(sum_);
  }
  // TwoSum: sum_ + terms = s + e exactly; e joins the error term.
  const auto terms = buffer_.to(torch::kFloat64);
  const auto s = sum_ + terms;
  const auto terms_part = s - sum_;
  error_ += (sum_ - (s - terms_part)) + (terms - terms_part);
  sum_.copy_(s);
  buffer_.zero_();
}

torch::Tensor GradientAllreduce::reduce_compensated(const Comm& comm) {
  add_block();
  const auto start = std::chrono::steady_clock::now();
  {
    torch::NoGradGuard no_grad;
    auto pairs = torch::stack({sum_, error_}, 1).cpu().contiguous();  // (hi, lo) per slot
    comm.allreduce_sum_double_double(pairs.data_ptr<double>(), sum_.numel());
    // hi + lo rounded once (after an allreduce the pairs are renormalized and this is hi; on one rank, the
    // accumulator as it stands).
    const auto hi = pairs.select(1, 0), lo = pairs.select(1, 1);
    const auto rounded = (hi + lo).to(buffer_.scalar_type());
    buffer_.copy_(rounded);
    host_ = buffer_.is_cpu() ? buffer_ : rounded;
    sum_.zero_();
    error_.zero_();
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (size_t i = 0; i < params_.size(); ++i) params_[i].mutable_grad() = views_[i];
  return extras();
}

double GradientAllreduce::reduced_extra(int64_t i) const {
  const int64_t at = grad_numel_ + i;
  if (!host_.defined()) return buffer_[at].item<double>();  // waits for the device
  return host_.scalar_type() == torch::kFloat64 ? host_.data_ptr<double>()[at]
                                                : static_cast<double>(host_.data_ptr<float>()[at]);
}

void GradientAllreduce::gather_gradients() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& grad = params_[i].grad();
    if (!grad.defined())
      views_[i].zero_();
    else if (!grad.is_same(views_[i]))
      views_[i].copy_(grad);
  }
}

torch::Tensor GradientAllreduce::reduce(const std::vector<torch::Tensor>& extras, const Comm& comm) {
  gather_gradients();
  torch::NoGradGuard no_grad;
  const auto slots = this->extras();
  for (size_t i = 0; i < extras.size(); ++i) slots[static_cast<int64_t>(i)].copy_(extras[i].reshape({}));
  return reduce_in_place(comm).narrow(0, 0, static_cast<int64_t>(extras.size()));
}

}  // namespace gradfit::parallel
