#include "train/lbfgs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace gradfit::train {
namespace {

// _strong_wolfe's constants (LBFGS.step leaves its tolerance_change at the default).
constexpr double kToleranceChange = 1e-9;
constexpr double kC1 = 1e-4, kC2 = 0.9;
constexpr int64_t kMaxLineSearch = 25;

double scalar(const torch::Tensor& t) {
  return t.item<double>();
}

// _cubic_interpolate: the minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [low, high];
// the middle of the interval where the cubic has no minimum.
double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, double low, double high) {
  const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const double d2_square = d1 * d1 - g1 * g2;
  if (!(d2_square >= 0)) return (low + high) / 2.;
  const double d2 = std::sqrt(d2_square);
  const double min_pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                  : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
  return std::min(std::max(min_pos, low), high);  // Python's min(max(...)): the same picks, NaN included
}

double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2) {
  return cubic_interpolate(x1, f1, g1, x2, f2, g2, x1 <= x2 ? x1 : x2, x1 <= x2 ? x2 : x1);
}

// _strong_wolfe's bracket: one or two trial points, the lower (by loss) at `low`, each with its evaluation (PyTorch
// keeps each point's gradient too and returns the final one's: Lbfgs::step hands it on, see lbfgs.h).
struct Bracket {
  std::array<double, 2> t{}, f{}, gtd{};
  std::array<Lbfgs::Evaluation, 2> e;
  int low = 0, high = 1;
  void set(int i, double t_i, const Lbfgs::Evaluation& e_i, double gtd_i) {
    t[i] = t_i, f[i] = e_i.loss, e[i] = e_i, gtd[i] = gtd_i;
  }
  void order() { low = f[0] <= f[1] ? 0 : 1, high = 1 - low; }
};

// The zoom phase's next trial point: the cubic's minimiser, moved to 0.1 × the bracket's length from its nearer end
// when it comes too close to an end twice (or lies outside).
double zoom_trial(const Bracket& b, bool& insufficient_progress) {
  double t = cubic_interpolate(b.t[0], b.f[0], b.gtd[0], b.t[1], b.f[1], b.gtd[1]);
  const double high = b.t[0] < b.t[1] ? b.t[1] : b.t[0], low = b.t[1] < b.t[0] ? b.t[1] : b.t[0];
  const double eps = 0.1 * (high - low);
  if (std::min(high - t, t - low) < eps) {
    if (insufficient_progress || t >= high || t <= low) {
      t = std::abs(t - high) < std::abs(t - low) ? high - eps : low + eps;
      insufficient_progress = false;
    } else {
      insufficient_progress = true;
    }
  } else {
    insufficient_progress = false;
  }
  return t;
}

// What the line search works along: the parameters from x (their value at t = 0, evaluated as `start`, whose loss is
// f) in the direction d, where the directional derivative is gtd.
struct Line {
  torch::Tensor params, x, d;
  const Lbfgs::Closure& evaluate;
  const Lbfgs::Evaluation& start;
  double f, gtd, d_norm;

  // _directional_evaluate: the loss and gradient at x + t·d, the parameters put back to x after.
  Lbfgs::Evaluation at(double t) const {
    {
      torch::NoGradGuard no_grad;
      params.add_(d, t);
    }
    Lbfgs::Evaluation e = evaluate();
    torch::NoGradGuard no_grad;
    params.copy_(x);
    return e;
  }
  bool armijo_fails(double t, double f_new) const { return f_new > f + kC1 * t * gtd; }
  bool curvature_holds(double gtd_new) const { return std::abs(gtd_new) <= -kC2 * gtd; }
};

// The line search's progress: its bracket, whether a point satisfies both conditions, its iterations (ls_iter)
// and its evaluations.
struct Search {
  Bracket b;
  bool done = false;
  int64_t iterations = 0, evaluations = 0;
};

// _strong_wolfe's first phase: from the trial step t, steps that grow (by cubic interpolation, up to 10×) until an
// interval holds a point satisfying the strong Wolfe conditions, or such a point is found.
Search bracket_phase(const Line& line, double t) {
  Search s;
  Lbfgs::Evaluation e = line.at(t);
  s.evaluations = 1;
  Lbfgs::Evaluation e_prev = line.start;
  double gtd_new = scalar(e.grad.dot(line.d)), t_prev = 0, gtd_prev = line.gtd;
  while (s.iterations < kMaxLineSearch) {
    const bool no_progress = s.iterations > 1 && e.loss >= e_prev.loss;
    const bool both_hold = !line.armijo_fails(t, e.loss) && !no_progress && line.curvature_holds(gtd_new);
    if (both_hold) {  // a one-point bracket
      s.b.set(0, t, e, gtd_new);
      s.b.set(1, t, e, gtd_new);
      s.done = true;
      return s;
    }
    if (line.armijo_fails(t, e.loss) || no_progress || gtd_new >= 0) {  // [t_prev, t] holds such a point
      s.b.set(0, t_prev, e_prev, gtd_prev);
      s.b.set(1, t, e, gtd_new);
      return s;
    }
    const double min_step = t + 0.01 * (t - t_prev), max_step = t * 10, tmp = t;
    t = cubic_interpolate(t_prev, e_prev.loss, gtd_prev, t, e.loss, gtd_new, min_step, max_step);
    t_prev = tmp, e_prev = e, gtd_prev = gtd_new;
    e = line.at(t);
    ++s.evaluations, ++s.iterations;
    gtd_new = scalar(e.grad.dot(line.d));
  }
  s.b.set(0, 0, line.start, line.gtd);  // out of iterations: [0, t]
  s.b.set(1, t, e, gtd_new);
  return s;
}

// _strong_wolfe's zoom phase: shrinks the bracket until a point satisfies the conditions, the iterations run out or
// the bracket is below tolerance_change.
void zoom(const Line& line, Search& s) {
  Bracket& b = s.b;
  b.order();  // a one-point bracket (done) is both ends
  bool insufficient_progress = false;
  while (!s.done && s.iterations < kMaxLineSearch) {
    if (std::abs(b.t[1] - b.t[0]) * line.d_norm < kToleranceChange) break;
    const double t = zoom_trial(b, insufficient_progress);
    const Lbfgs::Evaluation e = line.at(t);
    ++s.evaluations, ++s.iterations;
    const double gtd_new = scalar(e.grad.dot(line.d));
    if (line.armijo_fails(t, e.loss) || e.loss >= b.f[b.low]) {  // not lower than the low end: the new high end
      b.set(b.high, t, e, gtd_new);
      b.order();
      continue;
    }
    if (line.curvature_holds(gtd_new))
      s.done = true;
    else if (gtd_new * (b.t[b.high] - b.t[b.low]) >= 0)  // the old high end becomes the low end
      b.set(b.high, b.t[b.low], b.e[b.low], b.gtd[b.low]);
    b.set(b.low, t, e, gtd_new);
  }
}

// _strong_wolfe(obj_func, x, t, d, f, g, gtd) with c1 1e-4, c2 0.9, tolerance_change 1e-9, max_ls 25: a step length
// along d satisfying the strong Wolfe conditions (or the best point found), the evaluation there, and the
// evaluations made.
struct LineSearchResult {
  double t = 0;
  Lbfgs::Evaluation at_t;
  int64_t evaluations = 0;
};
LineSearchResult strong_wolfe(const torch::Tensor& params, const Lbfgs::Closure& evaluate, double t,
                              const torch::Tensor& d, const Lbfgs::Evaluation& start, double gtd) {
  const Line line{params, params.clone(), d, evaluate, start, start.loss, gtd, scalar(d.abs().max())};
  Search s = bracket_phase(line, t);
  zoom(line, s);
  return {s.b.t[s.b.low], s.b.e[s.b.low], s.evaluations};
}

}  // namespace

Lbfgs::Lbfgs(torch::Tensor params, int64_t history_size, double lr, LbfgsTolerances tolerances)
    : params_(std::move(params)), history_size_(history_size), lr_(lr), tolerances_(tolerances) {
  if (params_.dim() != 1 || !params_.is_contiguous()) throw Error("Lbfgs: the parameters must be one flat tensor");
}

// The L-BFGS direction: the history updated with the last step, then the two-loop recursion (PyTorch's order).
torch::Tensor Lbfgs::direction(const torch::Tensor& flat_grad) {
  if (n_iter_ == 1) {
    old_dirs_.clear(), old_stps_.clear(), ro_.clear();
    h_diag_ = 1;
    return flat_grad.neg();
  }
  const torch::Tensor y = flat_grad.sub(prev_flat_grad_), s = d_.mul(t_);
  const double ys = scalar(y.dot(s));
  if (ys > 1e-10) {
    if (static_cast<int64_t>(old_dirs_.size()) == history_size_)
      old_dirs_.pop_front(), old_stps_.pop_front(), ro_.pop_front();
    old_dirs_.push_back(y), old_stps_.push_back(s), ro_.push_back(1. / ys);
    h_diag_ = ys / scalar(y.dot(y));
  }
  const size_t num_old = old_dirs_.size();
  std::vector<double> al(num_old);
  torch::Tensor q = flat_grad.neg();
  for (size_t i = num_old; i-- > 0;) {
    al[i] = scalar(old_stps_[i].dot(q)) * ro_[i];
    q.add_(old_dirs_[i], -al[i]);
  }
  torch::Tensor r = torch::mul(q, h_diag_);
  for (size_t i = 0; i < num_old; ++i) {
    const double be_i = scalar(old_dirs_[i].dot(r)) * ro_[i];
    r.add_(old_stps_[i], al[i] - be_i);
  }
  return r;
}

Lbfgs::Evaluation Lbfgs::step(const Evaluation& start, const Closure& evaluate) {
  ++func_evals_;
  const torch::Tensor& flat_grad = start.grad;
  if (scalar(flat_grad.abs().max()) <= tolerances_.grad) return start;  // optimal: no step, state unchanged
  ++n_iter_;
  d_ = direction(flat_grad);
  if (prev_flat_grad_.defined())
    prev_flat_grad_.copy_(flat_grad);
  else
    prev_flat_grad_ = flat_grad.clone();
  prev_loss_ = start.loss;
  t_ = n_iter_ == 1 ? std::min(1., 1. / scalar(flat_grad.abs().sum())) * lr_ : lr_;
  const double gtd = scalar(flat_grad.dot(d_));
  if (gtd > -tolerances_.change) return start;  // the directional derivative is below tolerance: no step
  const LineSearchResult found = strong_wolfe(params_, evaluate, t_, d_, start, gtd);
  t_ = found.t;
  {
    torch::NoGradGuard no_grad;
    params_.add_(d_, t_);  // x + t·d as Line::at computed it: the very parameters `found.at_t` was evaluated at
  }
  func_evals_ += found.evaluations;
  return found.at_t;
}

std::string Lbfgs::save() const {
  torch::serialize::OutputArchive archive;
  const auto f64 = torch::kFloat64;
  archive.write("lbfgs_counts", torch::tensor({n_iter_, func_evals_, history_size_}));
  archive.write("lbfgs_scalars", torch::tensor({t_, h_diag_, prev_loss_}, f64));
  archive.write("lbfgs_ro", torch::tensor(std::vector<double>(ro_.begin(), ro_.end()), f64));
  if (n_iter_ > 0) {
    archive.write("lbfgs_d", d_.cpu());
    archive.write("lbfgs_prev_flat_grad", prev_flat_grad_.cpu());
    const auto stacked = [&](const std::deque<torch::Tensor>& list) {
      return list.empty() ? torch::empty({0, params_.numel()}, params_.options().device(torch::kCPU))
                          : torch::stack(std::vector<torch::Tensor>(list.begin(), list.end())).cpu();
    };
    archive.write("lbfgs_old_dirs", stacked(old_dirs_));
    archive.write("lbfgs_old_stps", stacked(old_stps_));
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

void Lbfgs::load(const std::string& bytes, torch::Device device) {
  torch::serialize::InputArchive archive;
  torch::Tensor counts, scalars, ro, d, prev, dirs, stps;
  try {
    std::istringstream in(bytes);
    archive.load_from(in, device);
    archive.read("lbfgs_counts", counts);
    archive.read("lbfgs_scalars", scalars);
    archive.read("lbfgs_ro", ro);
    if (counts[0].item<int64_t>() > 0) {
      archive.read("lbfgs_d", d), archive.read("lbfgs_prev_flat_grad", prev);
      archive.read("lbfgs_old_dirs", dirs), archive.read("lbfgs_old_stps", stps);
    }
  } catch (const c10::Error&) {
    throw Error("optimizer state in the checkpoint is not an L-BFGS state readable by this version of gradfit_dist");
  }
  const int64_t p = params_.numel();
  if (d.defined() && (d.numel() != p || prev.numel() != p || dirs.size(1) != p || stps.sizes() != dirs.sizes() ||
                      ro.numel() != dirs.size(0)))
    throw Error("optimizer state in the checkpoint does not match the model's parameter count");
  n_iter_ = counts[0].item<int64_t>(), func_evals_ = counts[1].item<int64_t>();
  const auto s = scalars.cpu().contiguous();
  t_ = s[0].item<double>(), h_diag_ = s[1].item<double>(), prev_loss_ = s[2].item<double>();
  const auto ro_host = ro.cpu().contiguous();
  ro_.assign(ro_host.data_ptr<double>(), ro_host.data_ptr<double>() + ro_host.numel());
  old_dirs_.clear(), old_stps_.clear();
  if (!d.defined()) return;
  const auto options = params_.options();
  d_ = d.to(options), prev_flat_grad_ = prev.to(options);
  for (int64_t i = 0; i < dirs.size(0); ++i) old_dirs_.push_back(dirs[i].to(options).clone());
  for (int64_t i = 0; i < stps.size(0); ++i) old_stps_.push_back(stps[i].to(options).clone());
}

}  // namespace gradfit::train
