#pragma once
// The messages between the sweep's coordinator (world rank 0) and the roots of the other rank groups, and the
// encoding of the job list that rank 0 broadcasts. Control messages are fixed arrays of kMessageLength doubles
// (indices stay exact below 2^53); a group's failure travels as text (Comm::send_text).
//
//   group root -> coordinator: kRequest (its job, if any, is over: the next one, please), kProgress, kFinished (one
//                              per run of its job, before its next kRequest), kFailed (text: the job failed on the
//                              whole group, sent instead of its kFinished messages)
//   coordinator -> group root: kAssign (the answer to kRequest), kStop (checkpoint and stop the job in progress)
#include <array>
#include <cstdint>
#include <vector>

#include "sweep/scheduler.h"

namespace gradfit::sweep::wire {

enum Tag : int { kRequest = 7101, kAssign = 7102, kProgress = 7103, kFinished = 7104, kFailed = 7105, kStop = 7106 };

constexpr int kMessageLength = 8;
using Message = std::array<double, kMessageLength>;

// The coordinator's answer to a request.
struct Assignment {
  int64_t job = -1;        // the job to train next, or -1: nothing left for this group
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

// The job list as one flat array: per job, its length, its checkpoint source (-1 for none) and its runs.
// `sources` has one entry per job.
std::vector<int64_t> encode_jobs(const std::vector<std::vector<int64_t>>& jobs, const std::vector<int64_t>& sources);
void decode_jobs(const std::vector<int64_t>& flat, std::vector<std::vector<int64_t>>* jobs,
                 std::vector<int64_t>* sources);

}  // namespace gradfit::sweep::wire
