# env.sh - the environment llamapro runs in; sourced by jobs/*.slurm and tests/run.sh.
#
# On a cluster: put your site's `module load` lines in slurm/site.sh (sourced first, not tracked).
# On a Debian 12 machine: installs the Debian packages that are missing (as root), then builds
# llamapro into build/ (incremental; safe to run any number of times). Exports LLAMAPRO (the
# binary) and puts build/ on PATH.
#   LLAMAPRO_BUILD_DIR   build folder (default: build/ in the repository)
#   LLAMAPRO_NO_INSTALL  set to 1 to never call apt-get
#   LP_EXTRA_DEBS        more Debian packages to install with the build's
#   LP_ENV_FUNCTIONS_ONLY set to 1 to only define the functions below (install nothing, build nothing)
# lp_install_debs [PACKAGES...] installs PACKAGES (default: the build's LP_DEBS). The local Slurm
# cluster (slurm/local-cluster.sh) installs LP_SLURM_DEBS this way, so a plain build never needs them.
LP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LP_ROOT
[ -f "$LP_ROOT/slurm/site.sh" ] && . "$LP_ROOT/slurm/site.sh"

LP_DEBS="build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
  libopenblas-openmp-dev libscalapack-openmpi-dev libdnnl-dev libcjson-dev libinih-dev libsentencepiece-dev
  sentencepiece libcmocka-dev zlib1g-dev gnuplot-nox python3 python3-numpy python3-h5py
  libpcre2-dev libutf8proc-dev libzstd-dev zstd ${LP_EXTRA_DEBS:-}"
# the one-node test/demo cluster only; a real cluster has its own Slurm
LP_SLURM_DEBS="slurm-wlm munge"

lp_install_debs() {
  command -v dpkg-query >/dev/null 2>&1 || return 0   # not Debian: the site provides modules
  local missing="" p pkgs=${*:-$LP_DEBS}
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "${LLAMAPRO_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ]; then
    echo "llamapro: missing Debian packages:$missing (install them as root: apt-get install$missing)" >&2
    return 1
  fi
  echo "llamapro: installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null || {
    echo "llamapro: apt-get install$missing failed" >&2; return 1; }
}

lp_build() {
  local dir=${LLAMAPRO_BUILD_DIR:-$LP_ROOT/build}
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$LP_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release >"$dir.configure.log" 2>&1 || {
      cat "$dir.configure.log" >&2; echo "llamapro: cmake configure failed (log above)" >&2; return 1; }
  fi
  cmake --build "$dir" -j "$(nproc)" >"$dir.build.log" 2>&1 || {
    tail -40 "$dir.build.log" >&2; echo "llamapro: build failed (log: $dir.build.log)" >&2; return 1; }
  export LLAMAPRO="$dir/llamapro"
  export PATH="$dir:$PATH"
}

# Open MPI refuses root without these; containers and single-user machines run as root.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
[ "${LP_ENV_FUNCTIONS_ONLY:-0}" = 1 ] || { lp_install_debs && lp_build; }
