#include "sweep/wire.h"

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
    case records::RunStatus::interrupted: return status;
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
                 s.seconds};
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

std::vector<int64_t> encode_jobs(const std::vector<std::vector<int64_t>>& jobs, const std::vector<int64_t>& sources) {
  std::vector<int64_t> flat;
  for (size_t j = 0; j < jobs.size(); ++j) {
    flat.push_back(static_cast<int64_t>(jobs[j].size()));
    flat.push_back(sources[j]);
    flat.insert(flat.end(), jobs[j].begin(), jobs[j].end());
  }
  return flat;
}

void decode_jobs(const std::vector<int64_t>& flat, std::vector<std::vector<int64_t>>* jobs,
                 std::vector<int64_t>* sources) {
  jobs->clear();
  sources->clear();
  for (size_t at = 0; at < flat.size();) {
    const int64_t length = flat[at];
    if (length < 0 || at + 2 + static_cast<size_t>(length) > flat.size())
      throw Error("sweep job list: a job of " + std::to_string(length) + " runs overruns the list");
    const auto first = flat.begin() + static_cast<std::ptrdiff_t>(at) + 2;
    jobs->emplace_back(first, first + length);
    sources->push_back(flat[at + 1]);
    at += static_cast<size_t>(length) + 2;
  }
}

}  // namespace gradfit::sweep::wire
