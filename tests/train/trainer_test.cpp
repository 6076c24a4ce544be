#include "train/trainer.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "common/error.h"
#include "config/config.h"
#include "io/h5.h"
#include "io/results.h"
#include "model/loss.h"
#include "model/mlp.h"
#include "test_util.h"
#include "train/schedule.h"

namespace gradfit::train {
namespace {

const parallel::Comm& self() {
  static const parallel::Comm comm(MPI_COMM_SELF);
  return comm;
}

config::RunSpec seed_experiment() {
  return config::load_config(std::string(GRADFIT_SOURCE_DIR) + "/experiments/seed_quadratic.yaml").runs.at(0);
}

TrainResult train_run(const config::RunSpec& run) {
  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), self());
  return train(run, data, self());
}

const torch::Tensor& parameter(const TrainResult& r, const std::string& name) {
  for (const auto& [n, t] : r.parameters)
    if (n == name) return t;
  throw std::runtime_error("no parameter " + name);
}

// The user's setup: the loss falls from ~24000 to well under a third of that (they saw ~6000).
TEST(Train, SeedExperimentLossFallsBelowAThird) {
  const auto result = train_run(seed_experiment());
  ASSERT_EQ(result.history.size(), 999u);
  EXPECT_EQ(result.status, records::RunStatus::done);
  const double first = result.history.front().train_loss;
  const double last = result.history.back().train_loss;
  EXPECT_NEAR(first, 24000.0, 500.0);
  EXPECT_LT(last, first / 3.0) << "first " << first << ", last " << last;
  EXPECT_EQ(result.parameter_count, 2 * 10 + 10 + 10 * 10 + 10 + 10 + 1);
}

// Same size, Softplus: the smooth activation fits the quadratic's gradient to under 1 %.
TEST(Train, SoftplusFitsTheQuadraticToUnderOnePercent) {
  auto run = seed_experiment();
  run.model.activation = config::Activation::softplus;
  run.train.epochs = 2000;
  const auto result = train_run(run);
  EXPECT_LT(result.history.back().rel_grad_error, 0.01);
  EXPECT_GT(result.history.front().rel_grad_error, 0.9);
}

// Under a pure gradient loss the output bias gets no gradient; it must stay at its initial value, and training
// must go on regardless.
TEST(Train, ParameterWithoutGradientStaysPut) {
  auto run = seed_experiment();
  run.train.epochs = 20;
  const auto initial = model::make_mlp(run.model, 2, run.train.seed)->named_parameters();
  const auto result = train_run(run);
  EXPECT_TRUE(torch::equal(parameter(result, "layers.2.bias"), initial["layers.2.bias"]));
  EXPECT_FALSE(torch::equal(parameter(result, "layers.2.weight"), initial["layers.2.weight"]));

  run.train.value_weight = 1.0;  // the value term reaches the output bias
  const auto with_values = train_run(run);
  EXPECT_FALSE(torch::equal(parameter(with_values, "layers.2.bias"), initial["layers.2.bias"]));
}

TEST(Train, MiniBatchSgdWithMomentumLearns) {
  auto run = seed_experiment();
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.name = config::Optimizer::sgd;
  run.optimizer.lr = 1e-4;
  run.optimizer.momentum = 0.9;
  run.train.batch_size = 16;
  run.train.epochs = 60;
  const auto result = train_run(run);
  EXPECT_LT(result.history.back().train_loss, 0.1 * result.history.front().train_loss);
}

TEST(Train, DivergenceStopsTheRunAndSaysSo) {
  auto run = seed_experiment();
  run.optimizer.name = config::Optimizer::sgd;
  run.optimizer.lr = 10.0;
  run.train.epochs = 200;
  const auto result = train_run(run);
  EXPECT_EQ(result.status, records::RunStatus::diverged);
  EXPECT_LT(result.history.size(), 200u);
  EXPECT_FALSE(std::isfinite(result.history.back().train_loss));
}

// A stop request (a signal, or a failure elsewhere in the job) ends the run after the step that saw it, with
// status interrupted and the weights it had then, whether or not anybody saves checkpoints; an unstopped run
// through that step is the same run.
TEST(Train, AStopRequestEndsTheRunInterruptedWithoutACheckpointHook) {
  auto run = seed_experiment();
  run.train.epochs = 50;
  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), self());
  TrainHooks hooks;
  int steps = 0;
  hooks.stop_requested = [&steps] { return ++steps > 10; };  // raised at the 11th step: one per epoch here
  const auto stopped = train(run, data, self(), hooks);
  EXPECT_EQ(stopped.status, records::RunStatus::interrupted);
  ASSERT_EQ(stopped.history.size(), 11u);
  run.train.epochs = 11;
  const auto through = train(run, data, self());
  EXPECT_EQ(through.status, records::RunStatus::done);
  EXPECT_EQ(stopped.history.back().train_loss, through.history.back().train_loss);
  for (size_t i = 0; i < through.parameters.size(); ++i)
    EXPECT_TRUE(torch::equal(stopped.parameters[i].second, through.parameters[i].second)) << i;
}

// The ReLU net stalls on the seed problem, so its validation loss stops improving and patience ends the run.
TEST(Train, EarlyStoppingOnTheValidationLoss) {
  auto run = seed_experiment();
  run.train.val_fraction = 0.2;
  run.train.patience = 10;
  const auto result = train_run(run);
  EXPECT_EQ(result.status, records::RunStatus::early_stopped);
  ASSERT_LT(result.history.size(), 999u);
  EXPECT_GT(result.history.size(), 10u);
  const auto& h = result.history;
  double best = h.front().val_loss;
  size_t best_epoch = 0;
  for (size_t e = 0; e < h.size(); ++e) {
    ASSERT_TRUE(std::isfinite(h[e].val_loss));
    if (h[e].val_loss < best) best = h[e].val_loss, best_epoch = e;
  }
  EXPECT_EQ(h.size() - 1 - best_epoch, 10u);  // stopped exactly `patience` epochs after the best
  EXPECT_LT(h.back().val_loss, h.front().val_loss);
}

// The loss of `parameters` on the rows of `data` where `take(row)` is true, by LibTorch's autograd on a model
// built anew (not the trainer's engine): sums of squared gradient errors and the relative error.
struct Recomputed {
  double loss = 0, rel_grad_error = 0;
};
Recomputed recompute(const config::RunSpec& run, const data::Dataset& data, const NamedTensors& parameters,
                     const std::function<bool(int64_t)>& take) {
  auto model = model::make_mlp(run.model, data.dim, run.train.seed);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters())
      for (const auto& [name, tensor] : parameters)
        if (name == item.key()) item.value().copy_(tensor);
  }
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < data.total_rows; ++i)
    if (take(i)) rows.push_back(i);
  const auto index = torch::tensor(rows);
  const auto x = data.x.index_select(0, index), g = data.grad_samples.index_select(0, index);
  const auto terms = model::gradient_matching_loss(model, x, g, torch::Tensor(), 0.0, index.numel(),
                                                   /*create_graph=*/false);
  const double sse = terms.grad_sse.item<double>();
  return {sse / (static_cast<double>(rows.size()) * static_cast<double>(data.dim)),
          std::sqrt(sse / g.pow(2).sum().item<double>())};
}

// With validation a run is saved with the weights of its best validation epoch, its last ones kept beside them;
// its final metrics are those of the saved weights, read back from its results file and recomputed by autograd.
TEST(Train, SavedWeightsAreTheBestValidationEpochsAndFinalMetricsTheirs) {
  auto run = seed_experiment();
  run.model.dtype = config::DType::float64;
  run.train.val_fraction = 0.2;
  run.train.patience = 10;
  const auto data = data::load_dataset(run.data, torch::kFloat64, self());
  const auto result = train(run, data, self());
  ASSERT_EQ(result.status, records::RunStatus::early_stopped);
  const auto& h = result.history;
  ASSERT_EQ(h.size() - static_cast<size_t>(result.best_epoch), 10u);
  double best = INFINITY;
  for (const auto& r : h) best = std::min(best, r.val_loss);
  EXPECT_EQ(h[result.best_epoch - 1].val_loss, best);
  EXPECT_EQ(result.final.val_loss, best);  // the same engine on the same rows and weights
  EXPECT_FALSE(torch::equal(result.parameters[0].second, result.last_parameters[0].second));

  testing::TempDir dir;
  config::Config config;
  config.runs = {run};
  io::write_results(dir.file("r.h5"), config, run, io::RunProvenance{}, result);
  const auto file = io::File::open_read_only(dir.file("r.h5"));
  const auto group = file.open_group("runs/" + run.name);
  NamedTensors saved;
  for (const auto& [name, tensor] : result.parameters) {
    auto values = group.read_rows("model/" + name, 0, tensor.size(0));
    saved.emplace_back(name, torch::tensor(values, torch::kFloat64).view(tensor.sizes()));
  }
  const auto held_out = holdout_rows(data.total_rows, run.train.val_fraction, run.train.seed);
  const auto val = recompute(run, data, saved, [&](int64_t i) { return held_out[i] != 0; });
  const auto train_rows = recompute(run, data, saved, [&](int64_t i) { return held_out[i] == 0; });
  EXPECT_NEAR(val.loss / group.read_double_attribute("best_val_loss"), 1.0, 1e-10);
  EXPECT_NEAR(val.loss / group.read_double_attribute("final_val_loss"), 1.0, 1e-10);
  EXPECT_NEAR(train_rows.loss / group.read_double_attribute("final_loss"), 1.0, 1e-10);
  EXPECT_NEAR(train_rows.rel_grad_error / group.read_double_attribute("final_rel_grad_error"), 1.0, 1e-10);
  EXPECT_EQ(group.read_int_attribute("best_epoch"), result.best_epoch);
  EXPECT_TRUE(group.has("model_last/layers.0.weight"));
}

// Without validation the final metrics are those of the last weights, after the last step: not the last epoch's
// row of the history, which was computed before that epoch's step.
TEST(Train, WithoutValidationFinalMetricsAreThoseOfTheLastWeights) {
  auto run = seed_experiment();
  run.model.dtype = config::DType::float64;
  run.train.epochs = 100;
  const auto data = data::load_dataset(run.data, torch::kFloat64, self());
  const auto result = train(run, data, self());
  EXPECT_EQ(result.best_epoch, 0);
  EXPECT_TRUE(result.last_parameters.empty());
  EXPECT_TRUE(std::isnan(result.final.val_loss));
  const auto all = recompute(run, data, result.parameters, [](int64_t) { return true; });
  EXPECT_NEAR(all.loss / result.final.train_loss, 1.0, 1e-10);
  EXPECT_NEAR(all.rel_grad_error / result.final.rel_grad_error, 1.0, 1e-10);
  EXPECT_NE(result.final.train_loss, result.history.back().train_loss);
}

TEST(Train, HoldoutIsAFixedFractionOfRows) {
  const auto held = holdout_rows(10000, 0.1, 3);
  int64_t count = 0;
  for (const uint8_t h : held) count += h;
  EXPECT_NEAR(static_cast<double>(count), 1000.0, 100.0);
  EXPECT_EQ(holdout_rows(10000, 0.1, 3), held);
  EXPECT_NE(holdout_rows(10000, 0.1, 4), held);
  EXPECT_TRUE(holdout_rows(10000, 0.0, 3).empty());
  // Held-out rows never appear in a training batch.
  const auto plan = plan_batches(10000, 128, 3, 1, parallel::Shard{0, 10000}, held);
  for (const auto& batch : plan.local_rows)
    for (const int64_t row : batch) ASSERT_FALSE(held[row]);
}

TEST(Train, NonlinearTargetsTrain) {
  for (const auto target : {config::Target::rosenbrock, config::Target::gaussian_wells}) {
    config::RunSpec run;
    run.data.target = target;
    run.data.dim = 3;
    run.data.sampling = config::Sampling::uniform;
    run.data.samples = 256;
    run.data.low = -1.5, run.data.high = 1.5;
    run.model.widths = {32, 32};
    run.optimizer.lr = 1e-2;
    run.train.epochs = 300;
    const auto result = train_run(run);
    EXPECT_LT(result.history.back().rel_grad_error, 0.5 * result.history.front().rel_grad_error)
        << config::to_string(target);
  }
}

// Every row appears in exactly one batch per epoch, whatever the sharding; batch order depends on the epoch.
TEST(BatchPlan, GlobalPermutationSplitAcrossShards) {
  const int64_t rows = 1001, batch = 64;
  for (const int ranks : {1, 3, 4}) {
    std::vector<std::multiset<int64_t>> batches(16);
    for (int r = 0; r < ranks; ++r) {
      const auto shard = parallel::shard_of(rows, r, ranks);
      const auto plan = plan_batches(rows, batch, /*seed=*/5, /*epoch=*/1, shard);
      ASSERT_EQ(plan.local_rows.size(), 16u);
      EXPECT_EQ(plan.global_sizes.back(), rows - 15 * batch);
      for (size_t b = 0; b < plan.local_rows.size(); ++b)
        for (const int64_t local : plan.local_rows[b]) batches[b].insert(local + shard.begin);
    }
    std::set<int64_t> seen;
    for (size_t b = 0; b < batches.size(); ++b) {
      EXPECT_EQ(static_cast<int64_t>(batches[b].size()), b + 1 < batches.size() ? batch : rows - 15 * batch);
      seen.insert(batches[b].begin(), batches[b].end());
    }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), rows);
  }
  const parallel::Shard all{0, rows};
  EXPECT_EQ(plan_batches(rows, batch, 5, 1, all).local_rows, plan_batches(rows, batch, 5, 1, all).local_rows);
  EXPECT_NE(plan_batches(rows, batch, 5, 1, all).local_rows, plan_batches(rows, batch, 5, 2, all).local_rows);
  EXPECT_NE(plan_batches(rows, batch, 5, 1, all).local_rows, plan_batches(rows, batch, 6, 1, all).local_rows);
}
}  // namespace
}  // namespace gradfit::train

namespace gradfit::train {
namespace {

// The analytic engine and autograd, each chunked differently, follow the same trajectory in float64: mini-batches,
// a validation split, activations with curvature and ReLU (the value term is checked per step in analytic_test).
TEST(Train, AnalyticEngineFollowsAutogradsTrajectory) {
  for (const auto activation : {config::Activation::softplus, config::Activation::relu, config::Activation::gelu}) {
    config::RunSpec run = seed_experiment();
    run.model.activation = activation;
    run.model.widths = {12, 9};
    run.model.dtype = config::DType::float64;
    run.train.epochs = 30;
    run.train.batch_size = 32;
    run.train.val_fraction = 0.2;
    run.optimizer.lr = 0.01;
    run.train.engine = config::Engine::autograd;
    run.train.chunk_rows = 13;
    const auto reference = train_run(run);
    run.train.engine = config::Engine::analytic;
    run.train.chunk_rows = 7;
    const auto analytic = train_run(run);
    ASSERT_EQ(analytic.history.size(), reference.history.size());
    double worst = 0;
    for (size_t e = 0; e < reference.history.size(); ++e) {
      const auto& a = analytic.history[e];
      const auto& r = reference.history[e];
      for (const auto& [x, y] : {std::pair{a.train_loss, r.train_loss}, std::pair{a.val_loss, r.val_loss},
                                 std::pair{a.grad_norm, r.grad_norm}})
        worst = std::max(worst, std::abs(x / y - 1));
    }
    for (size_t i = 0; i < reference.parameters.size(); ++i) {
      const auto& r = reference.parameters[i].second;
      if (r.norm().item<double>() > 0)
        worst = std::max(worst, ((analytic.parameters[i].second - r).norm() / r.norm()).item<double>());
    }
    std::printf("[ %s ] worst relative difference, analytic vs autograd over 30 epochs: %.3e\n",
                config::to_string(activation), worst);
    EXPECT_LT(worst, 1e-9) << config::to_string(activation);
    EXPECT_LT(analytic.history.back().train_loss, analytic.history.front().train_loss);
  }
}

// The worst relative difference between two runs' histories (losses, validation losses, gradient norms) and final
// weights (but those of diverged runs); infinity when their lengths or statuses differ.
double trajectory_difference(const TrainResult& a, const TrainResult& b) {
  if (a.history.size() != b.history.size() || a.status != b.status) return INFINITY;
  double worst = 0;
  const auto rel = [](double x, double y) {
    return x == y || (std::isnan(x) && std::isnan(y)) ? 0 : std::abs(x / y - 1);
  };
  for (size_t e = 0; e < a.history.size(); ++e) {
    const auto &p = a.history[e], &q = b.history[e];
    worst = std::max({worst, rel(p.train_loss, q.train_loss), rel(p.val_loss, q.val_loss),
                      rel(p.grad_norm, q.grad_norm), rel(p.rel_grad_error, q.rel_grad_error), rel(p.lr, q.lr)});
  }
  if (b.status == records::RunStatus::diverged) return worst;  // weights with NaN
  for (size_t i = 0; i < b.parameters.size(); ++i) {
    const auto& y = b.parameters[i].second;
    if (y.norm().item<double>() > 0)
      worst = std::max(worst, ((a.parameters[i].second - y).norm() / y.norm()).item<double>());
  }
  return worst;
}

// Runs trained as one ensemble get what they get trained one by one, on the CPU bit for bit (histories and final
// weights): every activation, a value term, mini-batches with validation and early stopping, learning rates and
// momenta per run, and a member that diverges while the others go on.
TEST(Ensemble, EachRunGetsWhatItGetsAlone) {
  struct Case {
    const char* what;
    std::vector<config::RunSpec> runs;
  };
  std::vector<Case> cases;
  // A case of runs that differ only in their learning rate.
  const auto over_lrs = [](const char* what, config::RunSpec base, std::initializer_list<double> lrs) {
    Case c{what, {}};
    for (const double lr : lrs) {
      base.optimizer.lr = lr;
      c.runs.push_back(base);
    }
    return c;
  };
  for (const auto activation : {config::Activation::relu, config::Activation::tanh, config::Activation::softplus,
                                config::Activation::silu, config::Activation::gelu}) {
    config::RunSpec base = seed_experiment();
    base.model.activation = activation;
    base.model.widths = {12, 9};
    base.model.dtype = config::DType::float64;
    base.train.epochs = 25;
    Case c{config::to_string(activation), {}};
    for (const double lr : {0.02, 0.005, 0.1}) {  // full batch: the seeds differ too
      base.optimizer.lr = lr;
      base.train.seed = c.runs.size();
      c.runs.push_back(base);
    }
    cases.push_back(c);
  }
  {  // mini-batches, validation and patience (one seed); SGD with momenta per run, one diverging
    config::RunSpec base = seed_experiment();
    base.model.widths = {10, 10};
    base.model.activation = config::Activation::tanh;
    base.model.dtype = config::DType::float64;
    base.optimizer.name = config::Optimizer::sgd;
    base.train.epochs = 60;
    base.train.batch_size = 16;
    base.train.val_fraction = 0.2;
    base.train.patience = 4;
    Case c{"sgd mini-batch validation patience", {}};
    for (const auto& [lr, momentum] : {std::pair{1e-4, 0.9}, std::pair{3e-5, 0.0}, std::pair{5e-5, 0.5}}) {
      base.optimizer.lr = lr;
      base.optimizer.momentum = momentum;
      c.runs.push_back(base);
    }
    cases.push_back(c);
  }
  {  // a schedule, a weight decay and a learning rate per run, the gradient clipped; plateau on validation
    config::RunSpec base = seed_experiment();
    base.model.widths = {10, 10};
    base.model.activation = config::Activation::softplus;
    base.model.dtype = config::DType::float64;
    base.optimizer.name = config::Optimizer::adamw;
    base.optimizer.max_grad_norm = 50;
    base.train.epochs = 60;
    base.train.val_fraction = 0.2;
    Case c{"adamw schedules clipped", {}};
    for (const auto schedule : {config::Schedule::exponential, config::Schedule::cosine, config::Schedule::plateau,
                                config::Schedule::constant}) {
      base.optimizer.schedule = schedule;
      base.optimizer.lr = 0.05 / static_cast<double>(c.runs.size() + 1);
      base.optimizer.lr_final = base.optimizer.lr / 50;
      base.optimizer.warmup_epochs = 5;
      base.optimizer.plateau_patience = 2;
      base.optimizer.weight_decay = 0.01 * static_cast<double>(c.runs.size());
      c.runs.push_back(base);
    }
    cases.push_back(c);
  }
  {  // a moving average of the weights judges validation and early stopping, each member its own
    config::RunSpec base = seed_experiment();
    base.model.widths = {10, 10};
    base.model.activation = config::Activation::tanh;
    base.model.dtype = config::DType::float64;
    base.train.epochs = 40;
    base.train.batch_size = 20;
    base.train.val_fraction = 0.2;
    base.train.patience = 3;
    base.train.ema_decay = 0.8;
    cases.push_back(over_lrs("adam mini-batch moving average", base, {0.05, 0.01, 0.2}));
  }
  {  // the huber loss (both of its branches in use), mini-batches with validation, a value term
    config::RunSpec base = seed_experiment();
    base.model.widths = {10, 10};
    base.model.activation = config::Activation::softplus;
    base.model.dtype = config::DType::float64;
    base.train.loss = config::Loss::huber;
    base.train.huber_delta = 30;
    base.train.epochs = 30;
    base.train.batch_size = 32;
    base.train.val_fraction = 0.2;
    base.train.value_weight = 0.01;
    cases.push_back(over_lrs("huber mini-batch validation value", base, {0.02, 0.005, 0.1}));
  }
  {  // float32, SGD: one member diverges while the other goes on
    config::RunSpec base = seed_experiment();
    base.optimizer.name = config::Optimizer::sgd;
    base.train.epochs = 200;
    cases.push_back(over_lrs("float32 sgd, one diverging", base, {10.0, 1e-4}));
  }
  {  // a value term, on data with values
    config::RunSpec base = seed_experiment();
    base.data.target = config::Target::gaussian_wells;
    base.data.dim = 3;
    base.data.sampling = config::Sampling::uniform;
    base.data.samples = 300;
    base.model.widths = {16};
    base.model.activation = config::Activation::softplus;
    base.model.dtype = config::DType::float64;
    base.train.value_weight = 0.5;
    base.train.epochs = 20;
    base.train.chunk_rows = 64;
    Case c{"softplus value term chunked", {}};
    for (const double lr : {0.01, 0.03}) {
      base.optimizer.lr = lr;
      base.train.seed = 7 + c.runs.size();
      c.runs.push_back(base);
    }
    cases.push_back(c);
  }
  std::set<records::RunStatus> statuses;
  for (const auto& c : cases) {
    for (const auto& run : c.runs) ASSERT_EQ(ensemble_key(run), ensemble_key(c.runs.front())) << c.what;
    const auto data = data::load_dataset(c.runs.front().data, model::torch_dtype(c.runs.front().model.dtype), self());
    const auto together = train_ensemble(c.runs, data, self());
    ASSERT_EQ(together.size(), c.runs.size());
    double worst = 0;
    for (size_t r = 0; r < c.runs.size(); ++r) {
      const auto alone = train(c.runs[r], data, self());
      EXPECT_EQ(together[r].status, alone.status) << c.what << " run " << r;
      EXPECT_EQ(together[r].ensemble, static_cast<int64_t>(c.runs.size()));
      worst = std::max(worst, trajectory_difference(together[r], alone));
      bool same_weights = true;
      for (size_t i = 0; i < alone.parameters.size(); ++i)
        same_weights = same_weights && torch::equal(together[r].parameters[i].second, alone.parameters[i].second);
      std::printf("  run %zu: %s after %zu epochs, difference %.3e, final weights %s\n", r,
                  records::to_string(alone.status), alone.history.size(), trajectory_difference(together[r], alone),
                  same_weights ? "identical" : "differ");
      if (alone.status != records::RunStatus::diverged) {
        EXPECT_TRUE(same_weights) << c.what << " run " << r;
      }
      statuses.insert(alone.status);
    }
    std::printf("[ %s ] %zu runs, worst relative difference from training them alone: %.3e\n", c.what, c.runs.size(),
                worst);
    EXPECT_EQ(worst, 0) << c.what;  // on the CPU, bit for bit
  }
  // The cases cover members that stop early while the others go on.
  EXPECT_TRUE(statuses.count(records::RunStatus::diverged));
  EXPECT_TRUE(statuses.count(records::RunStatus::early_stopped));
  EXPECT_TRUE(statuses.count(records::RunStatus::done));
}

// A run stopped by a checkpoint mid-way and resumed from it equals the run never stopped, bit for bit, with every
// schedule (its rate and plateau's memory are in the checkpoint), decay and clipping; plateau watches the
// validation loss: replaying its schedule over the recorded validation losses gives the recorded rates.
TEST(Train, ResumedSchedulesEqualTheUninterruptedRun) {
  config::RunSpec run = seed_experiment();
  run.model.widths = {10, 10};
  run.model.activation = config::Activation::tanh;
  run.model.dtype = config::DType::float64;
  run.optimizer.name = config::Optimizer::adamw;
  run.optimizer.lr = 0.05;
  run.optimizer.lr_final = 1e-4;
  run.optimizer.warmup_epochs = 6;
  run.optimizer.plateau_patience = 1;
  run.optimizer.plateau_factor = 0.5;
  run.optimizer.max_grad_norm = 100;
  run.train.epochs = 40;
  run.train.batch_size = 25;
  run.train.val_fraction = 0.2;
  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), self());
  int steps_per_epoch = 0;
  TrainHooks count;
  count.between_steps = [&steps_per_epoch] { ++steps_per_epoch; };
  run.train.epochs = 1;
  train(run, data, self(), count);
  ASSERT_GT(steps_per_epoch, 2);
  run.train.epochs = 40;
  for (const auto schedule : {config::Schedule::exponential, config::Schedule::cosine, config::Schedule::plateau}) {
    run.optimizer.schedule = schedule;
    const auto whole = train(run, data, self());
    // At the end of epoch 4 (in the warmup), and in the middle of epoch 18.
    for (const int stop_step : {4 * steps_per_epoch, 17 * steps_per_epoch + 2}) {
      TrainHooks hooks;
      int steps = 0;
      std::vector<Checkpoint> saved;
      hooks.stop_requested = [&steps, stop_step] { return ++steps == stop_step; };
      hooks.save_checkpoint = [&saved](const std::vector<Checkpoint>& c) { saved = c; };
      const auto stopped = train(run, data, self(), hooks);
      ASSERT_EQ(stopped.status, records::RunStatus::interrupted);
      ASSERT_EQ(saved.size(), 1u);
      const auto resumed = train(run, data, self(), {}, &saved[0]);
      EXPECT_EQ(trajectory_difference(resumed, whole), 0) << config::to_string(schedule) << " " << stop_step;
    }
    LrSchedule replay(run.optimizer, run.train.epochs);
    std::set<double> rates;
    for (const auto& record : whole.history) {
      EXPECT_EQ(record.lr, replay.lr()) << config::to_string(schedule) << " epoch " << record.epoch;
      rates.insert(record.lr);
      replay.step(record.val_loss);
    }
    EXPECT_GT(rates.size(), 2u) << config::to_string(schedule);  // the rate did move
  }
}

// L-BFGS (one iteration per epoch, strong Wolfe) stopped by a checkpoint and resumed equals the run never stopped,
// bit for bit: its pairs (s, y), direction, step and counters are in the checkpoint (here with a full history that
// shifts after the resume, a schedule and validation). The analytic engine and autograd take the same iterations.
TEST(Train, LbfgsResumesBitForBitAndEnginesAgree) {
  config::RunSpec run = seed_experiment();
  run.model.widths = {10, 10};
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.name = config::Optimizer::lbfgs;
  run.optimizer.lr = 1;
  run.optimizer.history_size = 4;
  run.optimizer.schedule = config::Schedule::cosine;
  run.optimizer.lr_final = 0.1;
  run.train.epochs = 25;
  run.train.val_fraction = 0.2;
  EXPECT_EQ(ensemble_key(run), "");  // trains alone
  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), self());
  const auto whole = train(run, data, self());
  ASSERT_EQ(whole.status, records::RunStatus::done);
  EXPECT_LT(whole.history.back().train_loss, 0.1 * whole.history.front().train_loss);
  EXPECT_GT(whole.function_evaluations, run.train.epochs);  // line searches evaluate more than once
  for (const int stop_step : {3, 13}) {
    TrainHooks hooks;
    int steps = 0;
    std::vector<Checkpoint> saved;
    hooks.stop_requested = [&steps, stop_step] { return ++steps == stop_step; };
    hooks.save_checkpoint = [&saved](const std::vector<Checkpoint>& c) { saved = c; };
    ASSERT_EQ(train(run, data, self(), hooks).status, records::RunStatus::interrupted);
    ASSERT_EQ(saved.size(), 1u);
    const auto resumed = train(run, data, self(), {}, &saved[0]);
    EXPECT_EQ(trajectory_difference(resumed, whole), 0) << "stopped at epoch " << stop_step;
    EXPECT_EQ(resumed.function_evaluations, whole.function_evaluations);
  }
  run.train.engine = config::Engine::autograd;
  const auto autograd = train(run, data, self());
  const double worst = trajectory_difference(autograd, whole);
  std::printf("[ lbfgs ] 25 epochs, %lld function evaluations; analytic vs autograd: %.3e\n",
              static_cast<long long>(whole.function_evaluations), worst);
  // The engines' gradients differ in the last bits; L-BFGS's line search (cubic interpolation through nearly equal
  // losses) amplifies that epoch by epoch (here ~3e-9 after 25, in the validation losses and gradient norms).
  EXPECT_LT(worst, 1e-8);
}

// The moving average (train.ema_decay) leaves the training itself alone (the same train_loss history, bit for bit)
// and judges the rest: the validation losses, the best epoch and the saved weights are the average's. A run stopped
// mid-epoch and resumed equals the run never stopped, bit for bit (the average is in the checkpoint).
TEST(Train, MovingAverageJudgesTheRunAndResumesBitForBit) {
  config::RunSpec run = seed_experiment();
  run.model.widths = {10, 10};
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.lr = 0.05;
  run.train.epochs = 30;
  run.train.batch_size = 25;
  run.train.val_fraction = 0.2;
  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), self());
  const auto plain = train(run, data, self());
  run.train.ema_decay = 0.9;
  const auto averaged = train(run, data, self());
  ASSERT_EQ(averaged.history.size(), plain.history.size());
  double val_difference = 0;
  for (size_t e = 0; e < plain.history.size(); ++e) {
    EXPECT_EQ(averaged.history[e].train_loss, plain.history[e].train_loss) << "epoch " << e + 1;
    val_difference = std::max(val_difference, std::abs(averaged.history[e].val_loss / plain.history[e].val_loss - 1));
  }
  EXPECT_GT(val_difference, 1e-3);  // validation saw other weights
  EXPECT_EQ(averaged.final.val_loss, averaged.history[averaged.best_epoch - 1].val_loss);
  EXPECT_FALSE(torch::equal(averaged.parameters[0].second, plain.parameters[0].second));
  EXPECT_FALSE(torch::equal(averaged.last_parameters[0].second, plain.last_parameters[0].second));
  for (const int stop_step : {7, 4 * 4 + 2}) {  // 4 batches an epoch: after epoch 1's third, in epoch 5
    TrainHooks hooks;
    int steps = 0;
    std::vector<Checkpoint> saved;
    hooks.stop_requested = [&steps, stop_step] { return ++steps == stop_step; };
    hooks.save_checkpoint = [&saved](const std::vector<Checkpoint>& c) { saved = c; };
    ASSERT_EQ(train(run, data, self(), hooks).status, records::RunStatus::interrupted);
    ASSERT_EQ(saved.size(), 1u);
    EXPECT_FALSE(saved[0].ema_parameters.empty());
    const auto resumed = train(run, data, self(), {}, &saved[0]);
    EXPECT_EQ(trajectory_difference(resumed, averaged), 0) << "stopped at step " << stop_step;
    for (size_t i = 0; i < averaged.last_parameters.size(); ++i)
      EXPECT_TRUE(torch::equal(resumed.last_parameters[i].second, averaged.last_parameters[i].second));
  }
}

TEST(Ensemble, KeysTellWhichRunsCanTrainTogether) {
  const auto base = seed_experiment();
  auto other = base;
  other.optimizer.lr *= 3;
  other.optimizer.momentum = 0.5;
  other.train.seed = 9;                                 // full batch, no validation: the seed only initialises
  other.optimizer.schedule = config::Schedule::cosine;  // a schedule is a per-run rate
  other.optimizer.warmup_epochs = 3;
  other.optimizer.lr_final = 1e-5;
  EXPECT_EQ(ensemble_key(other), ensemble_key(base));
  auto clipped = base;
  clipped.optimizer.max_grad_norm = 1;  // one clipping for all rows
  EXPECT_NE(ensemble_key(clipped), ensemble_key(base));
  auto adamw = base, decayed = base;
  adamw.optimizer.name = decayed.optimizer.name = config::Optimizer::adamw;
  decayed.optimizer.weight_decay = 0.5;  // a per-run factor
  EXPECT_EQ(ensemble_key(adamw), ensemble_key(decayed));
  EXPECT_NE(ensemble_key(adamw), ensemble_key(base));
  other.train.batch_size = 10;  // now it orders the mini-batches
  auto same_seed = other;
  same_seed.train.seed = base.train.seed;
  EXPECT_NE(ensemble_key(other), ensemble_key(same_seed));
  auto wider = base;
  wider.model.widths = {10, 11};
  EXPECT_NE(ensemble_key(wider), ensemble_key(base));
  auto autograd = base;
  autograd.train.engine = config::Engine::autograd;
  EXPECT_EQ(ensemble_key(autograd), "");
  auto adam_and_sgd = base;
  adam_and_sgd.optimizer.name = config::Optimizer::sgd;
  EXPECT_NE(ensemble_key(adam_and_sgd), ensemble_key(base));
  const auto data = data::load_dataset(base.data, torch::kFloat32, self());
  EXPECT_THROW_MATCHING(train_ensemble({base, wider}, data, self()), Error, "cannot be trained as one ensemble");
}

}  // namespace
}  // namespace gradfit::train
