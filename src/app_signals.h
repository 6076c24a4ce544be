#pragma once
// SIGTERM and SIGUSR1 (Slurm's warning before the time limit, scancel, preemption): the job checkpoints at the next
// step and stops, to be continued by the same command (see docs/sweeps.md, "Preemption").

namespace gradfit {

// From the call on, SIGTERM and SIGUSR1 set the stop flag instead of ending the process.
void catch_stop_signals();
// Whether one of them has arrived. Safe from any thread.
bool stop_signalled();

}  // namespace gradfit
