#pragma once
// What one rank computes on: its device and its number of intra-op threads; the node's memory.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace gradfit::device {

// auto: cuda:(node_local_rank % GPUs) where LibTorch sees GPUs, else the CPU. cpu: the CPU. cuda: a GPU, or a
// ConfigError starting with `source` (where cuda was asked for: "s.yaml: key 'device'", "--device") when LibTorch
// sees none (a CPU-only build, or no GPU on the node).
torch::Device select_device(config::Device wanted, int node_local_rank, const std::string& source);

// Intra-op threads for this rank: OMP_NUM_THREADS if set, else the node's cores shared evenly among the ranks on
// the node, at least one. Never oversubscribes by default.
int default_thread_count(int ranks_on_node);

// Sets this rank's intra-op threads: LibTorch's, and those of the OpenMP runtime our own at::parallel_for calls
// were compiled against (the same runtime with Debian's LibTorch; a LibTorch zip bundles a copy of its own).
void set_threads(int threads);

// Flushes subnormal floats to zero on the CPU (FTZ and DAZ in MXCSR), or keeps them. The mode is a thread's: call it
// before the first parallel region, so that the OpenMP threads of LibTorch and OpenBLAS, created from this thread,
// inherit it. Subnormal operands cost a microcode assist each (a saturated tanh's small derivatives, Adam's
// squared gradients): flushing made such runs ~1.8x faster with the same results (bench/BENCHMARKS.md). No effect
// on a GPU, nor where the CPU has no such mode.
void set_denormals(config::Denormals mode);

// The node's physical memory in bytes (sysconf), or 0 where the system does not say.
int64_t physical_memory_bytes();

}  // namespace gradfit::device
