#!/usr/bin/env bash
# Downloads, on a Debian 12 machine with its apt archive reachable, the Debian packages that building and testing
# gradfit_dist needs besides a compiler, CMake and LibTorch: OpenMPI, HDF5 (and h5dump/h5import/h5ls), yaml-cpp,
# CLI11, GoogleTest and pkill, with their runtime libraries. They go to .gpukit/debs/ (git-ignored) for a GPU machine
# without network access, where scripts/gpu_check.sh unpacks them into a private prefix (never installs them) and
# uses each one only where that machine lacks it. Prints the kit's size.
#   main/  the packages themselves: used whole, from the kit, wherever the machine lacks the component
#   deps/  their runtime libraries: each used only where the machine has no library of the same name
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.gpukit

main=(
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2  # MPI: mpiexec, headers, libmpi, PMIx
  libhdf5-dev libhdf5-103-1 libhdf5-hl-100 hdf5-tools               # HDF5 C library, headers, h5dump/h5import/h5ls
  libyaml-cpp-dev libyaml-cpp0.7 libcli11-dev libgtest-dev          # YAML, command line, tests
  procps libproc2-0                                                 # pkill, used by the end-to-end tests
)
# The runtime packages of main whose dependencies the kit follows (the -dev packages' own dependencies, such as
# gfortran or libibverbs-dev, are not needed to build a C++ program).
runtime=(openmpi-bin libopenmpi3 libpmix2 libhdf5-103-1 libhdf5-hl-100 hdf5-tools libyaml-cpp0.7 procps libproc2-0)
# Not followed: what every glibc-based Linux with a C++ compiler has, packages that are no libraries, and optional
# pieces (hwloc's plugins pull in X11 and OpenCL; ssh is needed only to start ranks on other nodes).
skip=" libc6 libgcc-s1 libstdc++6 gcc-12-base zlib1g libcrypt1 libzstd1 liblzma5 libbz2-1.0 liblz4-1 libselinux1
  libpcre2-8-0 libtinfo6 libncursesw6 libsystemd0 libudev1 libcap2 libgcrypt20 libgpg-error0 libacl1 libuuid1
  debconf cdebconf dpkg perl perl-base adduser passwd init-system-helpers usrmerge usr-is-merged tar install-info
  libhwloc-plugins openssh-client "
skip=" $(echo $skip) "  # one space between names

# The dependencies of one package, one name a line: the first choice of each alternative, a provider for a virtual one.
direct_deps() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$1" |
    awk '
      /^ [ |](PreDepends|Depends): / {
        alt = (substr($0, 2, 1) == "|"); name = $2; want = 0
        if (!in_group) { if (name ~ /^</) want = 1; else print name }
        in_group = alt; next
      }
      want && /^    [^ ]/ { print $1; want = 0 }'
}

apt-get update -qq
declare -A seen=()
for p in "${main[@]}"; do seen[$p]=main; done
queue=("${runtime[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}
  queue=("${queue[@]:1}")
  while read -r d; do
    [ -n "$d" ] || continue
    [[ "$skip" == *" $d "* ]] && continue
    [ -n "${seen[$d]:-}" ] && continue
    seen[$d]=deps
    queue+=("$d")
  done < <(direct_deps "$p")
done

rm -rf "$kit/debs"
mkdir -p "$kit/debs/main" "$kit/debs/deps"
for p in "${!seen[@]}"; do
  (cd "$kit/debs/${seen[$p]}" && apt-get download -qq "$p" 2>/dev/null) || { echo "gpu_fetch_kit: cannot download $p" >&2; exit 1; }
done
# apt-get download keeps the archive's names: epochs appear as %3a. Plain names are easier to handle elsewhere.
for f in "$kit"/debs/*/*%3a*.deb; do [ -e "$f" ] && mv "$f" "${f//%3a/_}"; done

{
  echo "# gradfit_dist GPU kit: Debian $(cat /etc/debian_version) packages, $(date -u +%F)"
  for f in "$kit"/debs/main/*.deb "$kit"/debs/deps/*.deb; do
    printf '%-5s %-32s %-36s %6d KiB\n' "$(basename "$(dirname "$f")")" "$(dpkg-deb -f "$f" Package)" \
      "$(dpkg-deb -f "$f" Version)" $(($(stat -c %s "$f") / 1024))
  done
} >"$kit/manifest.txt"
cat "$kit/manifest.txt"
echo "gpu_fetch_kit: $(ls "$kit"/debs/main | wc -l) main + $(ls "$kit"/debs/deps | wc -l) dependency packages," \
  "$(du -sh --apparent-size "$kit" | cut -f1) in $kit"
