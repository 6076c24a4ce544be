#include "sweep/wire.h"

#include <cstring>
#include <optional>
#include <string>

#include "common/error.h"

namespace gradfit::sweep::wire {
namespace {

std::optional<records::RunStatus> status_from_int(int value) {
  const auto status = static_cast<records::RunStatus>(value);
  switch (status) {
    case records::RunStatus::done:
    case records::RunStatus::diverged:
    case records::RunStatus::early_stopped:
    case records::RunStatus::interrupted:
    case records::RunStatus::paused:
    case records::RunStatus::pruned: return status;
  }
  return std::nullopt;
}

int64_t as_index(double value) {
  return static_cast<int64_t>(value);
}

}  // namespace

Message encode_request(int group) {
  return Message{static_cast<double>(group)};
}

int decode_request(const Message& m) {
  return static_cast<int>(m[0]);
}

Message encode_assignment(const Assignment& assignment) {
  return Message{static_cast<double>(assignment.job), assignment.stop_sent ? 1.0 : 0.0};
}

Assignment decode_assignment(const Message& m) {
  Assignment assignment;
  assignment.job = as_index(m[0]);
  assignment.stop_sent = m[1] != 0;
  return assignment;
}

Message encode_progress(const RunProgress& p) {
  return Message{static_cast<double>(p.group), static_cast<double>(p.index), static_cast<double>(p.epoch), p.loss,
                 p.rel_grad_error};
}

RunProgress decode_progress(const Message& m) {
  RunProgress p;
  p.group = static_cast<int>(m[0]);
  p.index = as_index(m[1]);
  p.epoch = as_index(m[2]);
  p.loss = m[3];
  p.rel_grad_error = m[4];
  return p;
}

Message encode_finished(const Finished& f) {
  const RunSummary& s = f.summary;
  return Message{static_cast<double>(f.group),
                 static_cast<double>(s.index),
                 static_cast<double>(static_cast<int>(s.status)),
                 static_cast<double>(s.epochs_run),
                 s.final_loss,
                 s.final_rel_grad_error,
                 s.seconds,
                 s.metric,
                 s.best_val_loss,
                 s.test_rel_grad_error};
}

Finished decode_finished(const Message& m) {
  Finished f;
  f.group = static_cast<int>(m[0]);
  RunSummary& s = f.summary;
  s.index = as_index(m[1]);
  const auto status = status_from_int(static_cast<int>(m[2]));
  if (!status)
    throw Error("sweep message from group " + std::to_string(f.group) + ": run " + std::to_string(s.index) +
                " has an unknown status " + std::to_string(m[2]));
  s.status = *status;
  s.epochs_run = as_index(m[3]);
  s.final_loss = m[4];
  s.final_rel_grad_error = m[5];
  s.seconds = m[6];
  s.metric = m[7];
  s.best_val_loss = m[8];
  s.test_rel_grad_error = m[9];
  return f;
}

Message encode_stop() {
  return Message{};
}

void send(const parallel::Comm& comm, const Message& m, int destination, Tag tag) {
  comm.send(m.data(), kMessageLength, destination, tag);
}

Message receive(const parallel::Comm& comm, int source, Tag tag) {
  Message m;
  comm.receive(m.data(), kMessageLength, source, tag);
  return m;
}

std::vector<int64_t> encode_job(const JobSpec& job) {
  std::vector<int64_t> flat{job.source, job.own_checkpoints ? 1 : 0, job.pause_after_epoch, job.prune ? 1 : 0};
  flat.insert(flat.end(), job.runs.begin(), job.runs.end());
  return flat;
}

JobSpec decode_job(const std::vector<int64_t>& flat) {
  constexpr size_t kHeader = 4;
  if (flat.size() <= kHeader) throw Error("sweep job message: " + std::to_string(flat.size()) + " numbers, no run");
  JobSpec job;
  job.source = flat[0];
  job.own_checkpoints = flat[1] != 0;
  job.pause_after_epoch = flat[2];
  job.prune = flat[3] != 0;
  job.runs.assign(flat.begin() + kHeader, flat.end());
  return job;
}

void send_job(const parallel::Comm& comm, const JobSpec& job, int destination) {
  const std::vector<int64_t> flat = encode_job(job);
  comm.send_text(std::string(reinterpret_cast<const char*>(flat.data()), flat.size() * sizeof(int64_t)), destination,
                 kJob);
}

JobSpec receive_job(const parallel::Comm& comm, int source) {
  const std::string bytes = comm.receive_text(source, kJob);
  std::vector<int64_t> flat(bytes.size() / sizeof(int64_t));
  std::memcpy(flat.data(), bytes.data(), flat.size() * sizeof(int64_t));
  return decode_job(flat);
}

void share_job(const parallel::Comm& group, std::optional<JobSpec>& job) {
  std::vector<int64_t> flat = job ? encode_job(*job) : std::vector<int64_t>{};
  int64_t length = static_cast<int64_t>(flat.size());
  group.broadcast(&length, sizeof(length));
  if (length == 0) {
    job.reset();
    return;
  }
  flat.resize(static_cast<size_t>(length));
  group.broadcast(flat.data(), length * static_cast<int64_t>(sizeof(int64_t)));
  job = decode_job(flat);
}

}  // namespace gradfit::sweep::wire
