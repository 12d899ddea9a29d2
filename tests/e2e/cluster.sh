# cluster.sh - sourced by the e2e tests: a fresh one-node Slurm cluster (slurm/local-cluster.sh) with
# its state in the test's temp dir, stopped on exit whatever happens; a tiny base model and run
# config for smoke-sized jobs; helpers to submit and wait.
#   SRC (the repository), $T, fail, run        from tests/cli/lib.sh
#   lp_cluster_prereq                          root and Slurm installed, else skip (exit 77)
#   lp_cluster_start [--nodes N]               start it (free ports); SLURM_CONF exported
#   lp_tiny_base FILE                          a 4-layer model with the embedded tokenizer
#   lp_smoke_config FILE RUN_DIR [key=value...] a run config for a few-second training
#   lp_submit ARGS...                          sbatch --parsable from the repository; prints the job id
#   lp_wait JOB SECONDS [fast_requeue]         wait until the job has left the queue; prints its final state
#   lp_job_field JOB FIELD                     a field of `scontrol show job`
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
SRC=$LP_SOURCE_DIR
export LP_SLURM_DIR=$T/slurm
chmod 755 "$T"   # munged (user munge) keeps its socket in there
# the jobs build llamapro through slurm/env.sh: point it at the tree ctest runs from (a no-op build)
export LLAMAPRO_BUILD_DIR=${LLAMAPRO%/*}
lp_e2e_cleanup() {
  local rc=$?
  if [ -f "$LP_SLURM_DIR/slurm.conf" ]; then
    if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
      echo "--- slurmctld log (tail)" >&2; tail -15 "$LP_SLURM_DIR/log/slurmctld.log" >&2 || true
      echo "--- slurmd log (tail)" >&2; tail -n 15 "$LP_SLURM_DIR"/log/slurmd*.log >&2 || true
    fi
    bash "$SRC/slurm/local-cluster.sh" stop || echo "WARNING: local cluster did not stop cleanly" >&2
  fi
  rm -rf "$T"
  exit "$rc"
}
trap lp_e2e_cleanup EXIT

lp_cluster_prereq() {
  # slurmd must start job steps as the submitting user: only root can run the local cluster
  [ "$(id -u)" = 0 ] || { echo "SKIPPED: the local Slurm cluster needs root"; exit 77; }
  # Slurm is a prerequisite outside the project: a skip only when Debian's packages cannot be installed
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    (LP_ENV_FUNCTIONS_ONLY=1 . "$SRC/slurm/env.sh" && lp_install_debs $LP_SLURM_DEBS) ||
      { echo "SKIPPED: Slurm is not installed and Debian's slurm-wlm/munge could not be installed"; exit 77; }
  fi
}

lp_cluster_start() {
  lp_cluster_prereq
  bash "$SRC/slurm/local-cluster.sh" start "$@" || fail "local Slurm cluster did not start"
  export SLURM_CONF=$LP_SLURM_DIR/slurm.conf
}

lp_tiny_base() {
  { lp_tiny_model; printf '[run]\nseed = 1\n'; } > "$T/tiny.ini"
  run "$LLAMAPRO" init --config "$T/tiny.ini" --out "$1" --tokenizer "$SRC/inputs/tokenizer/tokenizer.model" 2>/dev/null
}

lp_smoke_config() {
  local f=$1 dir=$2; shift 2
  cat > "$f" <<INI
; smoke size: a tiny model, 32-token sequences, a few steps
[method]
name = llama-pro
[data]
seq_len = 32
[batch]
micro_batch = 2
microbatches = 1
steps = 8
[optim]
lr = 1e-3
warmup_steps = 1
[run]
dir = $dir
eval_every = 4
eval_tokens = 2000
ckpt_every = 4
keep_last = 2
INI
}

lp_submit() {
  (cd "$SRC" && sbatch --parsable "$@") || fail "sbatch $*"
}

lp_job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# Requeued jobs wait ~2 minutes (Slurm sets their begin time); with fast_requeue the test makes
# them eligible after 3 s, as an operator could (scontrol update StartTime=...). Not at once: a
# batch job restarted in the second of its requeue fails with "Job credential revoked".
lp_wait() {
  local job=$1 secs=$2 fast=${3:-} state="" i reason
  for i in $(seq $(( secs * 2 ))); do
    state=$(lp_job_field "$job" JobState)
    case "$state" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) echo "$state"; return 0 ;;
      PENDING)
        reason=$(lp_job_field "$job" Reason)
        if [ -n "$fast" ] && [ "$reason" = BeginTime ] &&
           [ "$(date -d "$(lp_job_field "$job" EligibleTime)" +%s)" -gt $(( $(date +%s) + 5 )) ]; then
          scontrol update JobId="$job" StartTime=now+3 || true
        fi ;;
      "") echo "GONE"; return 0 ;;
    esac
    sleep 0.5
  done
  reason=$(lp_job_field "$job" Reason)
  scancel "$job" 2>/dev/null || true
  fail "job $job still $state (reason $reason) after $secs s"
}
