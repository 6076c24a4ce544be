#pragma once
// The messages between the sweep's coordinator (world rank 0) and the roots of the other rank groups, and the
// encoding of the job list that rank 0 broadcasts. Control messages are fixed arrays of kMessageLength doubles
// (indices stay exact below 2^53); a group's failure travels as text (Comm::send_text).
//
//   group root -> coordinator: kRequest (its job, if any, is over: the next one, please), kProgress, kFinished (one
//                              per run of its job, before its next kRequest), kFailed (text: the job failed on the
//                              whole group, sent instead of its kFinished messages)
//   coordinator -> group root: kAssign (the answer to kRequest, followed by kJob when it assigns one: the job as
//                              int64 bytes), kStop (checkpoint and stop the job in progress)
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "sweep/scheduler.h"

namespace gradfit::sweep::wire {

enum Tag : int {
  kRequest = 7101,
  kAssign = 7102,
  kProgress = 7103,
  kFinished = 7104,
  kFailed = 7105,
  kStop = 7106,
  kJob = 7107
};

constexpr int kMessageLength = 10;
using Message = std::array<double, kMessageLength>;

// The coordinator's answer to a request.
struct Assignment {
  int64_t job = -1;        // 1: a job follows (kJob); -1: nothing left for this group
  bool stop_sent = false;  // a kStop was sent to this group since its last request: receive it if not yet received
};

// A group's request: the group's number.
Message encode_request(int group);
int decode_request(const Message& m);

Message encode_assignment(const Assignment& assignment);
Assignment decode_assignment(const Message& m);

// `progress.index`, `.group`, `.epoch`, `.loss` and `.rel_grad_error` travel (`elapsed` is the coordinator's).
Message encode_progress(const RunProgress& progress);
RunProgress decode_progress(const Message& m);

// A finished run's summary and the group that trained it. The status travels as its enum's integer; decoding
// throws Error for an integer that is no RunStatus.
struct Finished {
  int group = 0;
  RunSummary summary;
};
Message encode_finished(const Finished& finished);
Finished decode_finished(const Message& m);

Message encode_stop();

// Point to point, with the tag of the message's kind.
void send(const parallel::Comm& comm, const Message& m, int destination, Tag tag);
Message receive(const parallel::Comm& comm, int source, Tag tag);

// A job, after its kAssign; and over a group, from its root (`job` there) to every rank: none ends the group.
void send_job(const parallel::Comm& comm, const JobSpec& job, int destination);
JobSpec receive_job(const parallel::Comm& comm, int source);
void share_job(const parallel::Comm& group, std::optional<JobSpec>& job);

}  // namespace gradfit::sweep::wire
