#!/usr/bin/env bash
# The habits CI holds the code to: C++ exactly as clang-format writes it (the checked-in .clang-format), Python
# passing pycodestyle at 120 columns. Installs both from Debian when missing (root or sudo). Lists what differs and
# exits 1 when either check fails; reformat with `clang-format -i FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v clang-format >/dev/null || missing+=(clang-format)
command -v pycodestyle >/dev/null || missing+=(pycodestyle)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "check_style: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
status=0
mapfile -t cxx < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
clang-format --dry-run --Werror "${cxx[@]}" || { echo "check_style: C++ that clang-format would change (above)"; status=1; }
mapfile -t python < <(git ls-files '*.py')
pycodestyle --max-line-length=120 "${python[@]}" || { echo "check_style: Python that pycodestyle rejects (above)"; status=1; }
[ "$status" -ne 0 ] || echo "check_style: ${#cxx[@]} C++ and ${#python[@]} Python files as clang-format and pycodestyle want them"
exit "$status"
