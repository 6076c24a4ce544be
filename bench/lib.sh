# Sourced by bench scripts, from the repository root: lets mpirun run as root where we are root, sets $py to an
# interpreter that imports h5py (PYTHON, else python3, else /usr/bin/python3) and $work to a temporary folder
# removed on exit.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
py=${PYTHON:-python3}
"$py" -c 'import h5py' 2>/dev/null || py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
