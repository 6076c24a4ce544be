#!/usr/bin/env bash
# One run on a GPU machine without network access: builds gradfit_dist against the machine's CUDA LibTorch (the
# pip torch of python3), runs the whole test suite with the GPU tests enabled, and times the GPU benchmarks.
# Run from the repository root, with the kit of scripts/gpu_fetch_kit.sh in .gpukit/: whatever the machine lacks of
# OpenMPI, HDF5 (and h5dump/h5import/h5ls), yaml-cpp, CLI11, GoogleTest and pkill comes from the kit, unpacked into
# a private prefix (nothing is installed); what the machine has is used as it is.
#
# Steps, each logged and timed: probe, kit, configure, build, ctest, bench. A failed step does not stop the later
# ones, except that nothing runs after a failed configure or build. The whole run keeps to a time budget.
# Writes to $OUT (default: gpu_check_out/): probe.log build.log ctest.log tests_gpu.txt bench.log summary.txt
# LastTest.log and, when configuring fails, cmake_error.log. Prints the summary last.
#
# Environment:
#   GPU_CHECK_SKIP_BENCH=1   no benchmarks (and no nvidia-smi needed): the part that can be rehearsed without a GPU
#   GPU_CHECK_BUDGET_S       seconds for the whole run (default 430); ctest and each benchmark get what is left
#   GPU_CHECK_PREFIX         where the kit is unpacked (default /tmp/gradfit-kit; never /)
#   GPU_CHECK_BUILD          the build folder (default build-gpu; a second run builds incrementally)
#   GPU_CHECK_CLEAN=1        remove the build folder first
#   GPU_CHECK_JOBS           parallel compile jobs (default: all cores)
#   GPU_CHECK_TORCH_PREFIX   a LibTorch's CMake prefix (default: torch.utils.cmake_prefix_path of python3's torch)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)
out=${OUT:-$root/gpu_check_out}
budget=${GPU_CHECK_BUDGET_S:-430}
skip_bench=${GPU_CHECK_SKIP_BENCH:-0}
kit=${GPU_CHECK_PREFIX:-/tmp/gradfit-kit}
debs=$root/.gpukit/debs
build=${GPU_CHECK_BUILD:-$root/build-gpu}
jobs=${GPU_CHECK_JOBS:-$(nproc)}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
if [ "$kit" = / ] || [ -z "$kit" ]; then echo "gpu_check: GPU_CHECK_PREFIX must not be /" >&2; exit 2; fi

# ---------------------------------------------------------------------------------------------------------------
# Bookkeeping: one row per step in the summary; facts (key: value) above the table.
rows=()
fact() { printf '%-22s %s\n' "$1:" "$2" >>"$summary"; echo "gpu_check: $1: $2"; }
elapsed() { echo $(($(date +%s) - start)); }
left() { echo $((budget - $(elapsed))); }
# step NAME LOG FUNCTION...: runs FUNCTION (in this shell, so it may export variables) with its output appended to
# LOG, and records its status and duration.
step() {
  local name=$1 log=$2 t0 rc
  shift 2
  t0=$(date +%s)
  echo "gpu_check: [$(elapsed)s] $name ..."
  echo "=== $name ($(date -u +%T) UTC, ${t0}s): $*" >>"$log"
  "$@" >>"$log" 2>&1
  rc=$?
  rows+=("$(printf '%-10s %-8s %6ss  %s' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" $(($(date +%s) - t0)) "${note:-}")")
  echo "gpu_check: [$(elapsed)s] $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc, see $(basename "$log"))")"
  note=""
  return $rc
}
skipped() { rows+=("$(printf '%-10s %-8s %6s   %s' "$1" skipped - "$2")"); echo "gpu_check: $1 skipped: $2"; }
have() { command -v "$1" >/dev/null 2>&1; }
# The first interpreter, of python3 on PATH and /usr/bin/python3, that imports every module named.
python_with() {
  local p
  for p in "$(command -v python3)" /usr/bin/python3; do
    [ -x "$p" ] && "$p" -c "import $1" >/dev/null 2>&1 && { echo "$p"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------------------------------------------------------
# a. What the machine has.
probe() {
  local c
  [ -d /usr/local/cuda/bin ] && export PATH=$PATH:/usr/local/cuda/bin
  if have nvidia-smi; then
    nvidia-smi
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  else
    echo "nvidia-smi: missing"
  fi
  uname -a
  cat /etc/os-release
  ldd --version 2>&1 | head -n 1
  echo "cores: $(nproc); memory: $(free -g 2>/dev/null | awk '/^Mem/ {print $2 " GiB"}'); /tmp: $(df -h /tmp | awk 'NR == 2 {print $4}') free"
  for c in g++ gcc c++ cc clang++ cmake ninja make nvcc python3 /usr/bin/python3 git dpkg-deb ldconfig timeout \
    mpirun mpiexec mpicxx h5cc h5dump h5import h5ls pkill; do
    printf '  %-18s %s\n' "$c" "$(command -v "$c" || echo MISSING)"
  done
  for c in g++ gcc cmake ninja; do have $c && echo "$c: $($c --version | head -n 1)"; done
  have nvcc && nvcc --version | tail -n 2
  # The machine's own MPI: vendor and version, and which signals its mpirun forwards to the ranks (SIGUSR1 stops a
  # job for a checkpoint; an earlier check found the machine's mpirun did not pass it on).
  have mpirun && echo "mpirun: $(mpirun --version 2>&1 | head -n 1)"
  have ompi_info && ompi_info --all --parsable 2>/dev/null | grep -iE 'forward_signals|ess_hnp' | head -n 5
  for c in "$(command -v python3)" /usr/bin/python3; do
    [ -x "$c" ] || continue
    echo "--- $c"
    "$c" - <<'PY'
import importlib, sys
print("python", sys.version.split()[0], "prefix", sys.prefix)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "cuda available", torch.cuda.is_available(),
          "devices", torch.cuda.device_count())
    print("torch cmake_prefix_path", torch.utils.cmake_prefix_path)
    print("torch _GLIBCXX_USE_CXX11_ABI", int(torch._C._GLIBCXX_USE_CXX11_ABI))
except Exception as e:
    print("torch: not importable:", e)
for m in ("numpy", "h5py", "pandas", "matplotlib", "mpi4py"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as e:
        print(m, "missing:", type(e).__name__)
PY
  done
  echo "--- headers, CMake packages and libraries already on the machine"
  ls -d /usr/include/mpi.h /usr/include/*/mpi.h /usr/include/*/openmpi* /usr/lib/*/openmpi/include/mpi.h \
    /usr/include/hdf5.h /usr/include/hdf5/serial/hdf5.h /usr/include/yaml-cpp /usr/include/gtest /usr/include/CLI \
    /usr/local/include/* 2>/dev/null
  find /usr/lib /usr/share /usr/local -maxdepth 5 \( -name 'yaml-cpp*onfig.cmake' -o -name 'GTestConfig.cmake' -o \
    -name 'CLI11Config.cmake' -o -name 'hdf5-config.cmake' -o -name 'MPIConfig.cmake' \) 2>/dev/null
  ldconfig -p 2>/dev/null | grep -E 'libmpi\.|libhdf5|libyaml-cpp|libcurl\.|libssl\.|libgnutls|libevent_core|libhwloc|libpmix' || true
  ls -d /usr/local/cuda* 2>/dev/null
  true
}

# ---------------------------------------------------------------------------------------------------------------
# b. The kit: each component from the machine where it is complete there, else from the kit.
extract_deb() {  # extract_deb FILE DIR: dpkg-deb -x, or Python where dpkg is missing
  if have dpkg-deb; then
    dpkg-deb -x "$1" "$2"
  else
    "$(python_with tarfile)" - "$1" "$2" <<'PY'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not a .deb"
pos = 8
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        with tarfile.open(fileobj=io.BytesIO(body)) as t:
            kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
            t.extractall(sys.argv[2], **kw)
    pos += 60 + size + (size & 1)
PY
  fi
}
deb_of() { ls "$debs"/main/"$1"_*.deb 2>/dev/null | head -n 1; }
sys_has_lib() { ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 (" || ls /lib*/x86_64-linux-gnu/"$1" /usr/lib*/x86_64-linux-gnu/"$1" /lib64/"$1" /usr/lib64/"$1" >/dev/null 2>&1; }
sys_cmake_pkg() { find /usr/lib /usr/share /usr/local -maxdepth 5 -name "$1" 2>/dev/null | grep -q .; }

kit_setup() {
  local comp pkgs p d f lib name need=() from_kit=() from_system=()
  cmake_sys_args=()
  # Which components the machine has complete.
  if have mpicxx && have mpiexec && echo '#include <mpi.h>' | mpicxx -E -x c++ - >/dev/null 2>&1; then
    from_system+=(mpi)
  else need+=(mpi); fi
  # HDF5: the machine's library and headers where it has them (a second HDF5 of the same soname in one process
  # is asking for trouble); the kit's command-line tools, each run with the kit's library alone, where it has none.
  sys_hdf5_lib=""
  for f in /usr/lib/x86_64-linux-gnu/libhdf5_serial.so /lib/x86_64-linux-gnu/libhdf5_serial.so /usr/lib/x86_64-linux-gnu/libhdf5.so; do
    [ -e "$f" ] && { sys_hdf5_lib=$f; break; }
  done
  if [ -f /usr/include/hdf5/serial/hdf5.h ] && [ -n "$sys_hdf5_lib" ]; then
    from_system+=(hdf5-library)
    cmake_sys_args=(-DHDF5_NO_FIND_PACKAGE_CONFIG_FILE=ON -DHDF5_C_INCLUDE_DIR=/usr/include/hdf5/serial
      "-DHDF5_hdf5_LIBRARY_RELEASE=$sys_hdf5_lib")
    if have h5dump && have h5import && have h5ls; then from_system+=(hdf5-tools); else need+=(hdf5-tools); fi
  elif { [ -f /usr/include/hdf5.h ] || [ -f /usr/include/hdf5/serial/hdf5.h ]; } &&
    { sys_has_lib libhdf5_serial.so.103 || sys_has_lib libhdf5.so; } && have h5dump && have h5import && have h5ls; then
    from_system+=(hdf5)
  else need+=(hdf5); fi
  if sys_cmake_pkg 'yaml-cpp-config.cmake' || sys_cmake_pkg 'yaml-cppConfig.cmake'; then from_system+=(yaml-cpp); else need+=(yaml-cpp); fi
  if sys_cmake_pkg CLI11Config.cmake; then from_system+=(cli11); else need+=(cli11); fi
  if sys_cmake_pkg GTestConfig.cmake || [ -f /usr/include/gtest/gtest.h ]; then from_system+=(gtest); else need+=(gtest); fi
  if have pkill; then from_system+=(pkill); else need+=(pkill); fi
  echo "from the machine: ${from_system[*]:-none}; from the kit: ${need[*]:-none}"
  kit_components="${need[*]:-none}"
  cmake_kit_args=("${cmake_sys_args[@]}")
  [ ${#need[@]} -gt 0 ] || return 0
  [ -d "$debs/main" ] || { echo "no kit in $debs (run scripts/gpu_fetch_kit.sh where apt works, carry .gpukit)"; return 1; }

  rm -rf "$kit"
  mkdir -p "$kit/root" "$kit/deps"
  for comp in "${need[@]}"; do
    case $comp in
      mpi) pkgs="openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2" ;;
      hdf5) pkgs="libhdf5-dev libhdf5-103-1 libhdf5-hl-100 hdf5-tools" ;;
      hdf5-tools)  # into a prefix of their own, behind wrappers: the kit's HDF5 library never enters our programs
        mkdir -p "$kit/tools/root" "$kit/tools/bin"
        for p in hdf5-tools libhdf5-103-1 libhdf5-hl-100; do
          f=$(deb_of "$p")
          [ -n "$f" ] || { echo "kit: $p missing from $debs/main"; return 1; }
          extract_deb "$f" "$kit/tools/root" || return 1
        done
        for p in h5dump h5import h5ls; do
          printf '#!/bin/sh\nLD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s "$@"\n' \
            "$kit/tools/root/usr/lib/x86_64-linux-gnu" "$kit/tools/root/usr/bin/$p" >"$kit/tools/bin/$p"
          chmod +x "$kit/tools/bin/$p"
        done
        export PATH=$kit/tools/bin:$PATH
        continue ;;
      yaml-cpp) pkgs="libyaml-cpp-dev libyaml-cpp0.7" ;;
      cli11) pkgs="libcli11-dev" ;;
      gtest) pkgs="libgtest-dev" ;;
      pkill) pkgs="procps libproc2-0" ;;
    esac
    for p in $pkgs; do
      f=$(deb_of "$p")
      [ -n "$f" ] || { echo "kit: $p missing from $debs/main"; return 1; }
      extract_deb "$f" "$kit/root" || return 1
    done
  done
  # Runtime libraries: a package only where the machine has none of the libraries it holds.
  for f in "$debs"/deps/*.deb; do
    d=$kit/deps/$(basename "$f" .deb)
    mkdir -p "$d"
    extract_deb "$f" "$d" || return 1
    name=""
    for lib in "$d"/lib/x86_64-linux-gnu/lib*.so.* "$d"/usr/lib/x86_64-linux-gnu/lib*.so*; do
      [ -e "$lib" ] || [ -L "$lib" ] || continue
      if sys_has_lib "$(basename "$lib")"; then name=system; break; fi
    done
    if [ "$name" = system ]; then
      echo "deps: $(basename "$f" .deb): the machine has it"
    else
      echo "deps: $(basename "$f" .deb): from the kit"
      cp -a "$d"/. "$kit/root/"
    fi
  done
  rm -rf "$kit/deps"

  P=$kit/root/usr
  L=$P/lib/x86_64-linux-gnu
  # What Debian's maintainer scripts would have done (update-alternatives), inside the prefix.
  for p in mpirun mpiexec; do [ -e "$P/bin/$p.openmpi" ] && ln -sf "$p.openmpi" "$P/bin/$p"; done
  [ -e "$P/bin/mpicc.openmpi" ] && ln -sf mpicc.openmpi "$P/bin/mpicc"
  [ -e "$P/bin/mpic++.openmpi" ] && { ln -sf mpic++.openmpi "$P/bin/mpicxx"; ln -sf mpic++.openmpi "$P/bin/mpic++"; }
  [ -d "$L/openmpi/include" ] && mkdir -p "$P/include/x86_64-linux-gnu" && ln -sfn ../../lib/x86_64-linux-gnu/openmpi/include "$P/include/x86_64-linux-gnu/mpi"
  [ -e "$L/openmpi/lib/libmpi.so" ] && ln -sf openmpi/lib/libmpi.so "$L/libmpi.so"
  [ -e "$P/lib/libpsm1/libpsm_infinipath.so.1.16" ] && ln -sf ../libpsm1/libpsm_infinipath.so.1.16 "$L/libpsm_infinipath.so.1"
  # Debian's HDF5 compiler wrappers name /usr: CMake must not ask them.
  rm -f "$P"/bin/h5cc "$P"/bin/h5c++ "$P"/bin/h5fc "$P"/bin/h5pcc* "$P"/bin/h5pfc*

  export PATH=$P/bin:$kit/root/bin:$PATH
  export LD_LIBRARY_PATH=$L:$kit/root/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cmake_kit_args=("${cmake_sys_args[@]}")
  case " ${need[*]} " in *" mpi "*)
    # Debian's OpenMPI lives under /usr; these move it to the prefix (its own defaults included).
    export OPAL_PREFIX=$P OPAL_EXEC_PREFIX=$P OPAL_BINDIR=$P/bin OPAL_LIBDIR=$L/openmpi/lib
    export OPAL_PKGLIBDIR=$L/openmpi/lib/openmpi3 OPAL_DATADIR=$P/share OPAL_PKGDATADIR=$P/share/openmpi
    export OPAL_DATAROOTDIR=$P/share OPAL_INCLUDEDIR=$L/openmpi/include OPAL_SYSCONFDIR=$kit/root/etc/openmpi
    export PMIX_INSTALL_PREFIX=$L/pmix2 PMIX_MCA_mca_base_component_path=$L/pmix2/lib/pmix
    # Start ranks on this node only, without ssh.
    export OMPI_MCA_plm=isolated
    cmake_kit_args+=(-DMPI_SKIP_COMPILER_WRAPPER=ON -DMPI_ASSUME_NO_BUILTIN_MPI=ON -DMPI_CXX_SKIP_MPICXX=ON
      "-DMPI_CXX_HEADER_DIR=$L/openmpi/include"
      -DMPI_C_LIB_NAMES=mpi -DMPI_CXX_LIB_NAMES=mpi "-DMPI_mpi_LIBRARY=$L/libmpi.so"
      "-DMPIEXEC_EXECUTABLE=$P/bin/mpiexec") ;;
  esac
  case " ${need[*]} " in *" hdf5 "*)
    cmake_kit_args+=("-DHDF5_ROOT=$P" -DHDF5_NO_FIND_PACKAGE_CONFIG_FILE=ON "-DHDF5_C_INCLUDE_DIR=$P/include/hdf5/serial"
      "-DHDF5_hdf5_LIBRARY_RELEASE=$L/hdf5/serial/libhdf5.so") ;;
  esac
  case " ${need[*]} " in *" yaml-cpp "*) cmake_kit_args+=("-Dyaml-cpp_DIR=$L/cmake/yaml-cpp") ;; esac
  case " ${need[*]} " in *" cli11 "*) cmake_kit_args+=("-DCLI11_DIR=$P/share/cmake/CLI11") ;; esac
  case " ${need[*]} " in *" gtest "*) cmake_kit_args+=("-DGTest_DIR=$L/cmake/GTest") ;; esac

  # Every library the kit's programs and libraries need must now resolve.
  local missing=0
  for f in "$P"/bin/orterun "$P"/bin/orted "$P"/bin/h5dump "$P"/bin/h5import "$P"/bin/h5ls "$kit"/root/usr/bin/pkill \
    "$L"/libmpi.so.40 "$L"/libhdf5_serial.so.103 "$L"/libyaml-cpp.so.0.7 "$L"/openmpi/lib/openmpi3/mca_pmix_ext3x.so \
    "$L"/openmpi/lib/openmpi3/mca_btl_vader.so "$L"/openmpi/lib/openmpi3/mca_btl_tcp.so; do
    [ -e "$f" ] || continue
    if ldd "$f" 2>&1 | grep -E 'not found|version .* not found'; then echo "  ^ in $f"; missing=1; fi
  done
  [ $missing -eq 0 ] && echo "kit: every library of the kit's programs resolves"
  have mpiexec && { echo "mpiexec: $(command -v mpiexec)"; ompi_info --path all 2>&1 | head -n 20; }
  return $missing
}

# ---------------------------------------------------------------------------------------------------------------
# c. Configure and build.
configure() {
  local gen=() cuda=() cc cxx nvcc arch h5dump h5import
  have ninja && gen=(-G Ninja)
  for cxx in g++ c++ clang++; do have $cxx && break; done
  for cc in gcc cc clang; do have $cc && break; done
  have "$cxx" || { echo "no C++ compiler (g++, c++, clang++) on this machine"; return 1; }
  echo "compilers: $(command -v "$cc") $(command -v "$cxx")"
  nvcc=$(command -v nvcc || true)
  if [ -n "$nvcc" ]; then
    # The CUDA LibTorch's CMake files enable CUDA: nvcc, with this host compiler, for this GPU only.
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ')
    arch=${arch:-9.0}
    export TORCH_CUDA_ARCH_LIST=$arch CUDACXX=$nvcc
    cuda=("-DCMAKE_CUDA_COMPILER=$nvcc" "-DCMAKE_CUDA_HOST_COMPILER=$(command -v "$cxx")"
      "-DCMAKE_CUDA_ARCHITECTURES=${arch/./}")
  fi
  cmake --version | head -n 1
  # CMake 4 refuses package files that ask for policies older than 3.5; this lets them load.
  cmake --version | head -n 1 | grep -q 'version [4-9]' && cuda+=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  [ "${GPU_CHECK_CLEAN:-0}" = 1 ] && rm -rf "$build"
  # The tools found now (the kit's may have moved since an earlier configure of this build folder).
  h5dump=$(command -v h5dump || true) h5import=$(command -v h5import || true)
  set -x
  cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_COMPILER=$(command -v "$cc")" "-DCMAKE_CXX_COMPILER=$(command -v "$cxx")" \
    ${torch_prefix:+"-DCMAKE_PREFIX_PATH=$torch_prefix"} ${test_python:+"-DGRADFIT_PYTHON=$test_python"} \
    ${h5dump:+"-DGRADFIT_H5DUMP=$h5dump"} ${h5import:+"-DGRADFIT_H5IMPORT=$h5import"} \
    ${cuda_link_flags:+"-DCMAKE_EXE_LINKER_FLAGS=$cuda_link_flags"} "${cuda[@]}" "${cmake_kit_args[@]}"
  local rc=$?
  set +x
  grep -E '^(MPI_mpi_LIBRARY|MPIEXEC_EXECUTABLE|HDF5_hdf5_LIBRARY_RELEASE|HDF5_C_INCLUDE_DIR|yaml-cpp_DIR|GTest_DIR|CLI11_DIR|Torch_DIR|GRADFIT_PYTHON|GRADFIT_H5DUMP|CMAKE_CUDA_COMPILER):' \
    "$build/CMakeCache.txt" 2>/dev/null
  return $rc
}
build_all() {  # within what is left of the budget (at least two minutes), so that the logs still come back
  local limit=$(($(left) - 40))
  [ $limit -lt 120 ] && limit=120
  timeout -k 10 $limit cmake --build "$build" -j "$jobs"
}

# ---------------------------------------------------------------------------------------------------------------
# d. The test suite, GPU tests included (they skip themselves only where LibTorch sees no GPU).
run_ctest() {
  local limit=$1
  # Two intra-op threads per test process: ctest runs eight at a time.
  (cd "$build" && OMP_NUM_THREADS=2 timeout -k 10 "$limit" ctest -j 8 --output-on-failure)
}

# ---------------------------------------------------------------------------------------------------------------
# e. Benchmarks on the GPU.
bench_py=""
bench_line() {  # bench_line NAME SECONDS CMD...: runs CMD under a timeout, prints its last "reference" line
  local name=$1 limit=$2 t0 rc
  shift 2
  if [ "$limit" -lt 15 ]; then echo "$name: no time left"; last_wall=0; return 124; fi
  t0=$(date +%s.%N)
  echo "--- $name (timeout ${limit}s): $*"
  timeout -k 5 "$limit" "$@"
  rc=$?
  last_wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  echo "--- $name: exit code $rc, ${last_wall}s"
  return $rc
}
epoch_median() {  # epoch_median RESULTS.h5 RUN: median epoch time of epochs 2.. (the first warms up)
  "$bench_py" - "$1" "$2" <<'PY'
import statistics, sys, h5py
t = h5py.File(sys.argv[1], "r")["runs"][sys.argv[2]]["epoch_seconds"][:]
t = t[1:] if len(t) > 1 else t
print(f"epochs={len(t) + 1} epoch_s_median={statistics.median(t):.6f} epoch_s_min={min(t):.6f}")
PY
}
bench() {
  local bin=$build/src/gradfit_dist tmp line rc
  tmp=$(mktemp -d)
  bench_results=()
  bench_py=$(python_with "torch, h5py") || { echo "no python3 with torch and h5py"; return 1; }
  export PYTHONUNBUFFERED=1
  local fail=0 lim
  cap() { lim=$(($(left) - 10)); [ "$lim" -gt "$1" ] && lim=$1; echo "$lim"; }

  if [ -f bench/reference.py ]; then
    bench_line "reference large" "$(cap 100)" "$bench_py" bench/reference.py large --device cuda --ranks 1 \
      --samples 1048576 --epochs 12 >"$tmp/ref_large" 2>&1
    cat "$tmp/ref_large"
    line=$(grep '^reference large:' "$tmp/ref_large" | tail -n 1)
    bench_results+=("${line:-reference large: FAILED or timed out after ${last_wall}s}")
    [ -n "$line" ] || fail=1
  else bench_results+=("reference large: bench/reference.py missing"); fi

  if [ -f bench/large.yaml ]; then
    bench_line "gradfit large" "$(cap 100)" "$bin" --out "$tmp/large" --set device=cuda --set data.samples=1048576 \
      bench/large.yaml
    if line=$(epoch_median "$tmp/large/results.h5" large 2>&1); then
      bench_results+=("gradfit_dist large: samples=1048576 $line wall_s=${last_wall}")
    else bench_results+=("gradfit_dist large: FAILED after ${last_wall}s ($(tail -n 1 <<<"$line"))"); fail=1; fi
  else bench_results+=("gradfit_dist large: bench/large.yaml missing"); fi

  if [ -f bench/seed_sweep36.yaml ]; then
    bench_line "gradfit seed sweep" "$(cap 130)" "$bin" --progress lines --out "$tmp/sweep" --set device=cuda \
      bench/seed_sweep36.yaml >"$tmp/sweep_log" 2>&1
    rc=$?
    tail -n 45 "$tmp/sweep_log"
    if [ $rc -eq 0 ]; then
      bench_results+=("gradfit_dist seed-sweep: runs=36 ranks=1 wall_s=${last_wall} ($(grep -m1 'ensemble' \
        "$tmp/sweep_log" || echo 'no ensembles'))")
    else bench_results+=("gradfit_dist seed-sweep: FAILED or timed out after ${last_wall}s"); fail=1; fi
  else bench_results+=("gradfit_dist seed_sweep36: bench/seed_sweep36.yaml missing"); fi

  if [ -f bench/reference.py ]; then
    bench_line "reference seed sweep" "$(cap 130)" "$bench_py" bench/reference.py seed-sweep --device cuda \
      >"$tmp/ref_sweep" 2>&1
    cat "$tmp/ref_sweep"
    line=$(grep '^reference seed-sweep:' "$tmp/ref_sweep" | tail -n 1)
    bench_results+=("${line:-reference seed-sweep: FAILED or timed out after ${last_wall}s}")
    [ -n "$line" ] || fail=1
  fi
  # The seed sweep's runs each alone, and their final losses against the ensembles' (batched products round
  # otherwise on a GPU).
  if [ -f "$tmp/sweep/results.h5" ]; then
    if bench_line "gradfit seed sweep alone" "$(cap 60)" "$bin" --progress lines --out "$tmp/sweep1" \
      --set device=cuda --set ensemble_size=1 bench/seed_sweep36.yaml >"$tmp/sweep1_log" 2>&1; then
      line=$("$bench_py" - "$tmp/sweep/results.h5" "$tmp/sweep1/results.h5" 2>&1 <<'PY' | tail -n 1
import sys, h5py, numpy as np
def losses(path):
    with h5py.File(path) as f:
        return {r.attrs["id"]: r.attrs["final_loss"] for r in f["runs"].values()}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
rel = np.array([abs(a[k] - b[k]) / abs(b[k]) for k in b if k in a])
print(f"final loss, ensembles vs alone: {len(rel)} runs, |a-b|/|b| median {np.median(rel):.3g}, worst {rel.max():.3g}")
PY
      )
      bench_results+=("gradfit_dist seed-sweep alone (ensemble_size 1): runs=36 ranks=1 wall_s=${last_wall}; $line")
    else bench_results+=("gradfit_dist seed-sweep alone: FAILED or timed out after ${last_wall}s"); fi
  fi
  rm -rf "$tmp"
  echo "=== results"
  printf '%s\n' "${bench_results[@]}"
  return $fail
}

# ---------------------------------------------------------------------------------------------------------------
# The run.
note=""
cuda_link_flags=""
fact "started" "$(date -u '+%F %T') UTC, budget ${budget}s, $(nproc) cores, output in $out"
[ -d /usr/local/cuda/bin ] && export PATH=$PATH:/usr/local/cuda/bin
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Shared memory between ranks without cross-process memory access (refused in some containers and sandboxes).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export HDF5_USE_FILE_LOCKING=FALSE
# OpenMPI's mpirun wants ssh even for ranks on this node; where there is none, any program stands in (never run).
have ssh || have rsh || export OMPI_MCA_plm_rsh_agent=false
# OpenMPI 4 creates its session folder $TMPDIR/ompi.<host>.<uid> racily when several jobs start at once (ctest -j,
# test discovery: "mkdir ... File exists") and removes it when its last job ends; a subfolder of ours keeps it.
session_dir="${TMPDIR:-/tmp}/ompi.$(uname -n | cut -d. -f1).$(id -u)"
mkdir -p "$session_dir/keep" && chmod 700 "$session_dir"

step probe "$out/probe.log" probe
fact "gpu" "$(have nvidia-smi && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 1 || echo none)"
fact "os" "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), $(ldd --version 2>&1 | head -n 1 | awk '{print "glibc " $NF}')"
torch_python=$(python_with torch) || torch_python=""
torch_prefix=${GPU_CHECK_TORCH_PREFIX:-}
torch_abi="" torch_cuda="" torch_libs=""
if [ -n "$torch_python" ]; then
  # One import: version, CMake prefix, C++ ABI, and for a CUDA build the folders of its libraries and of NVIDIA's pip
  # libraries (never a folder of driver stubs).
  eval "$("$torch_python" - <<'PY' 2>/dev/null
import glob, os, shlex, torch
here = os.path.dirname(torch.__file__)
dirs = [os.path.join(here, "lib")]
for lib in glob.glob(os.path.join(os.path.dirname(here), "nvidia", "**", "lib*.so*"), recursive=True):
    d = os.path.dirname(lib)
    if "stubs" not in d and not os.path.exists(os.path.join(d, "libcuda.so.1")) and d not in dirs:
        dirs.append(d)
facts = {
    "torch_version": f"{torch.__version__} cuda {torch.version.cuda} available {torch.cuda.is_available()}",
    "torch_cmake": torch.utils.cmake_prefix_path,
    "torch_abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
    "torch_cuda": torch.version.cuda or "",
    "torch_libs": ":".join(d for d in dirs if os.path.isdir(d)) if torch.version.cuda else "",
}
for k, v in facts.items():
    print(f"{k}={shlex.quote(str(v))}")
PY
  )"
  [ -n "$torch_prefix" ] || torch_prefix=${torch_cmake:-}
  fact "torch" "${torch_version:-import failed} ($torch_python)"
  if [ "$torch_abi" = 0 ]; then
    fact "C++ ABI" "WARNING: this LibTorch uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0); Debian's yaml-cpp and GoogleTest use the new one, so linking them will fail"
  else fact "C++ ABI" "_GLIBCXX_USE_CXX11_ABI=${torch_abi:-?} (the new ABI, like Debian's yaml-cpp and GoogleTest)"; fi
else
  fact "torch" "no python3 imports torch; LibTorch from CMake's default search"
fi
fact "torch cmake prefix" "${torch_prefix:-(none)}"
if [ -n "$torch_cuda" ]; then
  # A CUDA LibTorch from pip finds NVIDIA's pip libraries through RPATH at run time; the linker and our programs
  # find them here too, and symbols that its CUDA libraries take from them are resolved at run time.
  [ -n "$torch_libs" ] && export LD_LIBRARY_PATH=$torch_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fact "torch libraries" "${torch_libs:-?}"
  cuda_link_flags=-Wl,--allow-shlib-undefined
fi
test_python=$(python_with "h5py, numpy, pandas, matplotlib") || test_python=""
fact "python for the tests" "${test_python:-NONE imports h5py, numpy, pandas and matplotlib: the analyze and resume tests will fail}"
fact "compilers" "$(for c in g++ c++ clang++; do have $c && { echo "$(command -v $c) ($($c -dumpfullversion -dumpversion 2>/dev/null))"; break; }; done) nvcc: $(command -v nvcc || echo none)"

cmake_kit_args=()
kit_components=""
step kit "$out/build.log" kit_setup
fact "from the kit" "${kit_components:-?}"

built=0
if step configure "$out/build.log" configure; then
  note="$jobs jobs"
  step build "$out/build.log" build_all && built=1
else
  # What CMake itself logged about the failure.
  for f in "$build"/CMakeFiles/CMakeConfigureLog.yaml "$build"/CMakeFiles/CMakeError.log; do
    [ -f "$f" ] && tail -c 4000000 "$f" >"$out/cmake_error.log" && break
  done
  skipped build "configure failed (build.log, cmake_error.log)"
fi

if [ $built -eq 1 ]; then
  # The tests come first: up to 300 s, leaving 120 s for the benchmarks, but at least 150 s while the budget lasts.
  reserve=120
  [ "$skip_bench" = 1 ] && reserve=10
  limit=$(($(left) - reserve))
  [ $limit -lt 150 ] && limit=$(($(left) - 20)) && [ $limit -gt 150 ] && limit=150
  [ $limit -gt 300 ] && limit=300
  [ $limit -lt 60 ] && limit=60
  note="limit ${limit}s"
  step ctest "$out/ctest.log" run_ctest $limit
  [ -f "$build/Testing/Temporary/LastTest.log" ] && tail -c 15000000 "$build/Testing/Temporary/LastTest.log" >"$out/LastTest.log"
  fact "tests" "$(grep -E 'tests passed, [0-9]+ tests failed out of' "$out/ctest.log" | tail -n 1 || echo 'no ctest summary (timed out?)')"
  fact "tests skipped" "$(grep -c -- '\*\*\*Skipped' "$out/ctest.log" || true)"
  # The GPU tests: every test that names the GPU, CUDA or the device, with its ctest status.
  {
    echo "GPU tests (status from ctest; a GPU test that skips on a GPU machine means LibTorch saw no GPU):"
    grep -E 'Test +#[0-9]+: (Device\.|[^ ]*(gpu|Gpu|cuda|Cuda))' "$out/ctest.log" |
      sed -E 's/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: //; s/ \.{2,}/ /; s/ +[0-9.]+ sec$//'
    echo
    echo "Skipped GoogleTest cases (rank 0's report of the MPI tests included):"
    grep -oE '\[  SKIPPED \] [^ ]+ \([0-9]+ ms\)' "$build/Testing/Temporary/LastTest.log" 2>/dev/null |
      sed -E 's/^\[  SKIPPED \] //; s/ \(.*//' | sort -u
  } >"$out/tests_gpu.txt"
  fact "GPU tests" "$(grep -E ' (Passed|\*\*\*Skipped|\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception)' "$out/tests_gpu.txt" |
    awk '{s = $NF; if ($0 ~ /Passed/) p++; else if ($0 ~ /Skipped/) k++; else f++} END {printf "%d passed, %d skipped, %d failed", p, k, f}')"
  failed=$(sed -n '/The following tests FAILED/,$p' "$out/ctest.log" | grep -E '^[[:space:]]+[0-9]+ - ' | head -n 20)
  [ -n "$failed" ] && fact "failed tests" "$(echo "$failed" | sed -E 's/^[[:space:]]+[0-9]+ - //' | tr '\n' ' ')"
  # The first GoogleTest case that crashed, once more under a debugger (cuda-gdb also debugs host code), for its
  # backtrace.
  crashed=$(echo "$failed" | grep -m 1 -E '\((SEGFAULT|Child aborted)\)' | sed -E 's/^[[:space:]]+[0-9]+ - //; s/ \(.*//')
  debugger=$(command -v cuda-gdb || command -v gdb || true)
  if [ -n "$crashed" ] && [ -n "$debugger" ]; then
    binary=$(grep -l -- "$crashed" "$build"/tests/*_tests.cmake 2>/dev/null | head -n 1 | xargs -r basename | sed 's/\[1\]_tests.cmake$//')
    if [ -n "$binary" ] && [ -x "$build/tests/$binary" ]; then
      echo "=== $crashed under $debugger" >>"$out/ctest.log"
      (cd "$build/tests" && timeout 90 "$debugger" -batch -ex run -ex bt -ex "info sharedlibrary" \
        --args "./$binary" "--gtest_filter=$crashed") >>"$out/ctest.log" 2>&1
      fact "backtrace of" "$crashed (in ctest.log)"
    fi
  fi
else
  skipped ctest "no build"
fi

if [ "$skip_bench" = 1 ]; then
  skipped bench "GPU_CHECK_SKIP_BENCH=1"
elif [ $built -eq 0 ]; then
  skipped bench "no build"
else
  step bench "$out/bench.log" bench
  sed -n '/^=== results$/,$p' "$out/bench.log" | tail -n +2 | sed 's/^/bench: /' >>"$summary"
fi

{
  echo
  printf '%-10s %-8s %7s  %s\n' step status time note
  printf '%s\n' "${rows[@]}"
  echo "total: $(elapsed)s of a ${budget}s budget"
} >>"$summary"
echo
echo "================ gpu_check summary ($out/summary.txt) ================"
cat "$summary"
