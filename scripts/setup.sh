#!/usr/bin/env bash
# Installs everything gradfit_dist needs to build, test and run, from Debian packages (Debian 12 or newer).
# Idempotent: does nothing when every package is already installed. Needs root or sudo.
set -euo pipefail

packages=(
  cmake g++ make git                     # toolchain (git: the commit recorded in results)
  libtorch-dev                           # LibTorch (CPU)
  libopenblas0-openmp                    # fast BLAS for LibTorch: without it matmuls run ~20x slower
  libopenmpi-dev openmpi-bin             # MPI
  libhdf5-dev hdf5-tools                 # HDF5 library, and h5dump/h5import
  libyaml-cpp-dev libcli11-dev           # YAML parsing, command line
  libgtest-dev universal-ctags           # tests (ctags: the structure test's function lengths)
  python3-h5py python3-pandas python3-matplotlib  # scripts/analyze.py, and tests that read results
  python3-torch time                     # bench/bench_perf.sh: the PyTorch reference, per-rank peak memory
  python3-ase                            # scripts/ase_import.py, scripts/ase_calculator.py and their tests
  xtb                                    # experiments/molecule: GFN2-xTB molecular dynamics and forces
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
