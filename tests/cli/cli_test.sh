#!/usr/bin/env bash
# End-to-end checks of gradfit_dist. Usage: cli_test.sh CASE (run by ctest from the repository root, with
# GRADFIT_BIN, MPIEXEC, MPIEXEC_FLAGS, H5DUMP and H5IMPORT set). CASE names a function case_CASE in one of the files
# of cases/ (one file per concern); it runs in a fresh folder $work, with the helpers of lib.sh.
set -u
case_name=$1
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# OpenMPI's session directories under this case's own folder: two cases starting MPI at once (ctest -j) can race to
# create the shared /tmp/ompi.<host>.<uid>, and the loser fails in MPI_Init ("mkdir ... File exists").
mkdir -p "$work/ompi" && export OMPI_MCA_orte_tmpdir_base="$work/ompi"

source "$here/lib.sh"
for cases in "$here"/cases/*.sh; do
  source "$cases"
done
declare -F "case_$case_name" >/dev/null || fail "unknown case $case_name"
"case_$case_name"
echo "PASS: $case_name"
