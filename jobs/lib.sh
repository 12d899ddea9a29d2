# lib.sh - what the LLaMA Pro jobs (jobs/llama-pro-*.slurm) share: where they run, how they start
# MPI ranks (srun under Slurm, mpirun outside), signal forwarding and requeueing, skip-if-done steps.
# Sourced with `set -euo pipefail` in effect; defines functions and these variables:
#   LP_ROOT     the repository (slurm/env.sh sets it)
#   RUN         the run directory ([run] dir of the config, or a run.dir=... argument)
#   LP_RANKS, LP_THREADS, LP_LAUNCHER (srun|mpirun)
#
# Environment a user or a test may set (all optional):
#   LP_BASE          base model (default inputs/base/base.h5)
#   LP_BLOCKS        new blocks to insert (default 2: 8 -> 10 layers, the paper's 1 new per 4)
#   LP_RANKS, LP_THREADS   outside Slurm: MPI ranks and threads per rank (default: fill the cores)
#   LP_SRUN_MPI      srun --mpi= plugin (default pmix: Debian's Open MPI is built with PMIx)
#   LP_COMPARE_RUNS  run directories of the same job to compare in the report (jobs/report.sh)
#   LP_COMPARE_LABELS  names of this run and of LP_COMPARE_RUNS for the report (e.g. bf16,fp32)
#   DRY_RUN=1        check instead of training: only the steps the job lists in LP_DRY_RUN_STEPS
#                    (cheap ones that make training's inputs) run; the others say what they would
#                    do; training becomes `llamapro train --dry-run` on the job's ranks, and the job
#                    ends with its verdict (exit 0: would run; 1: every problem listed)
#   LLAMAPRO_BUILD_DIR, LLAMAPRO_NO_INSTALL   see slurm/env.sh

lp_say() { echo "[$(date +%H:%M:%S)] ${LP_JOB_NAME:-job}: $*" >&2; }
lp_die() { lp_say "ERROR: $*"; exit 1; }

# lp_cfg SECTION KEY DEFAULT: the value in the config file, unless an argument section.key=value
# overrides it (the same precedence as `llamapro train`).
lp_cfg() {
  local a v
  for a in "${LP_ARGS[@]+"${LP_ARGS[@]}"}"; do
    case "$a" in "$1.$2="*) v=${a#*=} ;; esac
  done
  if [ -z "${v+x}" ]; then
    v=$(awk -v sec="$1" -v key="$2" '
      { sub(/[;#].*/, "") }
      /^[ \t]*\[/ { gsub(/[][ \t]/, ""); cur = $0; next }
      cur == sec && index($0, "=") { k = substr($0, 1, index($0, "=") - 1); gsub(/[ \t]/, "", k)
        if (k == key) { val = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", val); found = 1 } }
      END { if (found) print val }' "$LP_CONFIG")
  fi
  echo "${v:-$3}"
}

# lp_job_init SCRIPT CONFIG ARGS...: environment, build, run directory, rank and thread counts.
# ARGS are the job's section.key=value arguments (passed on to llamapro train).
lp_job_init() {
  LP_JOB_START=$(date +%s)
  LP_CONFIG=$2; shift 2
  LP_ARGS=("$@")
  [ -f "$LP_CONFIG" ] || lp_die "config $LP_CONFIG not found"
  . slurm/env.sh || lp_die "slurm/env.sh failed: the environment or the build is not ready (messages above)"
  export PATH="${LLAMAPRO%/*}:$PATH"
  LP_BASE=${LP_BASE:-inputs/base/base.h5}
  [ -n "${LP_NO_BASE:-}" ] || [ -f "$LP_BASE" ] || lp_die "base model $LP_BASE not found: it is made by jobs/pretrain-base.slurm (run that first), or set LP_BASE=MODEL.h5"
  RUN=$(lp_cfg run dir run)
  mkdir -p "$RUN/log" "$RUN/eval"
  local pp cores
  pp=$(lp_cfg parallel pp 1)
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    LP_LAUNCHER=srun
    LP_RANKS=${SLURM_NTASKS:-1}
    LP_THREADS=${SLURM_CPUS_PER_TASK:-1}
    # requeued jobs start again from the top; this says which attempt the log lines belong to
    lp_say "Slurm job $SLURM_JOB_ID on ${SLURM_JOB_NODELIST:-?}, SLURM_RESTART_COUNT=${SLURM_RESTART_COUNT:-0}"
  else
    LP_LAUNCHER=mpirun
    # not plain nproc: it answers OMP_NUM_THREADS when that is set
    cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
    # data-parallel ranks with one thread each measured faster than threads for these small
    # matrices; ranks must be a multiple of the pipeline stages
    LP_RANKS=${LP_RANKS:-$(( cores / pp * pp ))}
    [ "$LP_RANKS" -ge "$pp" ] || LP_RANKS=$pp
    LP_THREADS=${LP_THREADS:-$(( cores / LP_RANKS ))}
    [ "$LP_THREADS" -ge 1 ] || LP_THREADS=1
    LP_OVERSUBSCRIBED=0
    if [ $(( LP_RANKS * LP_THREADS )) -gt "$cores" ]; then
      lp_say "warning: $LP_RANKS ranks x $LP_THREADS threads > $cores cores: oversubscribed (slow), ranks not bound"
      LP_OVERSUBSCRIBED=1
    fi
    lp_say "no Slurm job: running here with mpirun, $LP_RANKS ranks x $LP_THREADS threads on $cores cores"
  fi
  [ $(( LP_RANKS % pp )) = 0 ] || lp_die "$LP_RANKS MPI ranks is not a multiple of [parallel] pp = $pp (ranks = pp x dp)"
  # one OpenMP thread per core the launcher gave the rank; threads stay on their cores
  export OMP_NUM_THREADS=$LP_THREADS OMP_PLACES=cores OMP_PROC_BIND=close
  # unbound ranks sharing cores: binding threads would stack every rank on the first cores
  [ "${LP_OVERSUBSCRIBED:-0}" = 0 ] || export OMP_PROC_BIND=false
  # every attempt (first run, each requeue) is one line of steps.tsv: its wall time, exit status
  trap 'lp_on_exit $?' EXIT
  trap 'lp_on_signal USR1' USR1
  trap 'lp_on_signal TERM' TERM
  # Ctrl-C outside Slurm: background commands of a script ignore SIGINT, so it is passed on here
  trap 'lp_on_signal INT' INT
  LP_STOP=""
  LP_CHILD=""
  LP_CHILD_TAKES_SIGNALS=0
  printf '%s\n' "job=$LP_JOB_NAME" "config=$LP_CONFIG" "base=$LP_BASE" "launcher=$LP_LAUNCHER" \
    "ranks=$LP_RANKS" "threads=$LP_THREADS" "pp=$pp" "slurm_job=${SLURM_JOB_ID:-}" \
    "restarts=${SLURM_RESTART_COUNT:-0}" > "$RUN/job.env.tmp"
  mv "$RUN/job.env.tmp" "$RUN/job.env"
}

# USR1 (Slurm's warning before the time limit, --signal=B:USR1@...) or TERM (scancel, preemption):
# the training program checkpoints and exits 75 on either. Other steps are short and do not
# handle them, so they are left to finish and the job stops after them.
lp_on_signal() {
  LP_STOP=$1
  if [ "$1" = INT ] && [ "$LP_CHILD_TAKES_SIGNALS" != 1 ]; then
    # an interrupted step leaves no output (files are written under temporary names)
    lp_say "got SIGINT: stopping now"
    [ -z "$LP_CHILD" ] || kill -TERM "$LP_CHILD" 2>/dev/null || true
    return 0
  fi
  if [ "$LP_CHILD_TAKES_SIGNALS" != 1 ] || [ -z "$LP_CHILD" ]; then
    lp_say "got SIG$1: stopping after the current step"; return 0
  fi
  lp_say "got SIG$1: forwarding it to the training program (checkpoint, then exit 75)"
  if [ "$LP_LAUNCHER" = srun ]; then
    # srun forwards USR1 and TERM to every task (SIGINT to srun means something else: status)
    kill -"${1/INT/TERM}" "$LP_CHILD" 2>/dev/null || true
  else
    # mpirun forwards USR1 to the ranks but answers TERM by killing them, checkpoint or not
    kill -USR1 "$LP_CHILD" 2>/dev/null || true
  fi
}

# lp_launch NAME RANKS CMD...: run CMD on RANKS MPI ranks; its stderr (progress, errors) also goes
# to $RUN/log/NAME.log, its stdout to ours. Returns CMD's exit status. CMD runs in the background
# and the shell waits for it, because bash runs traps only between commands: a foreground srun
# would hold the USR1 trap back until training ended.
lp_launch() {
  local name=$1 n=$2 rc=0 fd tee_pid; shift 2
  local log="$RUN/log/$name.log"
  local -a cmd
  if [ "$LP_LAUNCHER" = srun ]; then
    # -c: srun no longer inherits --cpus-per-task (Slurm 22.05); -K: one dead rank ends the step
    # instead of leaving the others blocked in a collective
    cmd=(srun --mpi="${LP_SRUN_MPI:-pmix}" -n "$n" -c "$LP_THREADS" --cpu-bind=cores --kill-on-bad-exit=1 "$@")
  elif [ "${LP_OVERSUBSCRIBED:-0}" = 1 ]; then
    cmd=(mpirun -n "$n" --oversubscribe --bind-to none -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND "$@")
  else
    # each rank bound to its own LP_THREADS cores (OMP_PROC_BIND=close would otherwise put every
    # rank's first thread on core 0)
    cmd=(mpirun -n "$n" --map-by "slot:PE=$LP_THREADS" --bind-to hwthread --use-hwthread-cpus
         -x OMP_NUM_THREADS -x OMP_PLACES -x OMP_PROC_BIND "$@")
  fi
  echo "== $(date '+%F %T') attempt ${SLURM_RESTART_COUNT:-0}: ${cmd[*]}" >> "$log"
  exec {fd}> >(tee -a "$log" >&2)
  tee_pid=$!
  "${cmd[@]}" 2>&$fd &
  LP_CHILD=$!
  # wait returns early (status > 128) when a trapped signal arrives; then wait again
  wait "$LP_CHILD" || rc=$?
  while [ "$rc" -gt 128 ] && kill -0 "$LP_CHILD" 2>/dev/null; do rc=0; wait "$LP_CHILD" || rc=$?; done
  LP_CHILD=""
  # the log is complete before anyone reads it
  exec {fd}>&-
  wait "$tee_pid" 2>/dev/null || true
  return "$rc"
}

# lp_step NAME OUTPUT CMD...: run CMD unless OUTPUT exists (so a requeued job continues where it
# stopped); CMD must create OUTPUT atomically. Times go to $RUN/steps.tsv for the report.
lp_step() {
  local name=$1 out=$2 t0 rc=0 ms; shift 2
  if [ -e "$out" ]; then lp_say "$name: $out exists, skipped"; return 0; fi
  if [ "${DRY_RUN:-0}" = 1 ] && [ "$name" != train ] && [[ " ${LP_DRY_RUN_STEPS:-} " != *" $name "* ]]; then
    lp_say "dry run: would run $name -> $out"; return 0
  fi
  lp_say "$name -> $out"
  t0=$(date +%s%N)
  "$@" || rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # step, exit status, seconds, attempt (SLURM_RESTART_COUNT), when it ended
  printf '%s\t%s\t%d.%03d\t%s\t%s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) \
    "${SLURM_RESTART_COUNT:-0}" "$(date -u +%FT%TZ)" >> "$RUN/steps.tsv"
  if [ "$rc" = 0 ]; then
    [ -e "$out" ] || lp_die "$name finished but did not write $out"
  elif [ "$rc" = 75 ]; then
    lp_stop_and_requeue "$name"
  elif [ "$name" != train ] && { [ "$rc" = 143 ] || { [ -n "$LP_STOP" ] && [ "$LP_STOP" != INT ]; }; }; then
    # the time limit or a preemption: Slurm sends SIGTERM to every process of the job, so a step
    # that does not checkpoint dies with it (its output is written atomically: none is left).
    # Like a training step's checkpoint, the requeued job runs it again.
    LP_STOP=${LP_STOP:-TERM}
    lp_stop_and_requeue "$name" "stopped by SIG$LP_STOP before it finished (exit $rc); it runs again"
  else
    lp_failed "$name" "$rc"
  fi
  [ -z "$LP_STOP" ] || lp_stop_and_requeue "$name"
}

lp_failed() {
  local name=$1 rc=$2 who rank node
  # name the rank that died first (the launcher then stops the others) and its node: srun says
  # "NODE: task N: Killed", mpirun "process rank N with PID ... on node NODE exited on signal 9 (Killed)"
  who=$(grep -E -o '([^ :]+: )?task [0-9]+: [A-Za-z ]+|rank [0-9]+ with PID [0-9]+ on node [^ ]+ exited on signal [0-9]+( \([A-Za-z]+\))?' \
    "$RUN/log/$name.log" 2>/dev/null | head -1 || true)
  node=$(echo "$who" | sed -n -E 's/^([^ :]+): task .*/\1/p')
  [ -z "$node" ] || who=${who#"$node: "}
  [ "$rc" -gt 128 ] && [ -n "$LP_STOP" ] && [ "$name" = train ] &&
    lp_die "$name: stopped by SIG$LP_STOP without a checkpoint (exit $rc): this llamapro build does not checkpoint on signals; the next run starts training again"
  [ "$LP_STOP" != INT ] || lp_die "$name: interrupted (SIGINT); finished steps are kept, run again to continue"
  rank=$(echo "$who" | grep -E -o '(task|rank) [0-9]+' | grep -E -o '[0-9]+' || true)
  lp_die "$name failed with exit status $rc${who:+: rank $rank ended first ($who)${node:+ on node $node}}; log: $RUN/log/$name.log." \
    "Finished steps are kept: submitting the job again continues from here."
}

# lp_stop_and_requeue STEP [WHAT]: after a checkpoint (exit 75) or a signal: under Slurm requeue
# this job (it restarts at the top and skips the finished steps; training resumes from the
# checkpoint), outside ask to run again. WHAT says what happened to STEP.
lp_stop_and_requeue() {
  local what="stopped with a checkpoint"
  [ "$1" = train ] || what="stopped after this step (SIG${LP_STOP:-?})"
  [ -z "${2:-}" ] || what=$2
  if [ -n "${SLURM_JOB_ID:-}" ] && [ "${LP_STOP:-}" != INT ]; then
    lp_say "$1: $what; requeueing job $SLURM_JOB_ID (restart $(( ${SLURM_RESTART_COUNT:-0} + 1 )))"
    scontrol requeue "$SLURM_JOB_ID" || lp_die "scontrol requeue $SLURM_JOB_ID failed: submit the job again to continue"
  else
    lp_say "$1: $what; run the same command again to continue"
  fi
  exit 75
}

# lp_eval OUT MODEL CORPUS[:split]: `llamapro eval` with the training run's evaluation settings
# (the first [run] eval_tokens tokens, windows of [data] seq_len, [run] precision) on its layout
# ([parallel] pp stages x dp replicas on the job's ranks: a model that needs pp stages to train is
# evaluated on them too), so the numbers compare with the eval lines of metrics.jsonl. OUT gets
# the one-line result, written atomically.
lp_eval() {
  local out=$1 model=$2 corpus=$3
  lp_launch "eval-$(basename "$out" .txt)" "$LP_RANKS" llamapro eval --model "$model" --corpus "$corpus" \
    --max-tokens "$(lp_cfg run eval_tokens 65536)" --seq-len "$(lp_cfg data seq_len 256)" \
    --pp "$(lp_cfg parallel pp 1)" --precision "$(lp_cfg run precision fp32)" > "$out.tmp" || return
  cat "$out.tmp" >> "$RUN/log/eval-$(basename "$out" .txt).log"
  lp_say "$(basename "$out" .txt): $(cat "$out.tmp")"
  grep -Eq '^loss [0-9.]+ ppl [0-9.]+ tokens [0-9]+$' "$out.tmp" ||
    { lp_say "llamapro eval printed something else than 'loss L ppl P tokens N': $(cat "$out.tmp")"; return 1; }
  mv "$out.tmp" "$out"
}

# lp_train ARGS...: the training step; the only one that checkpoints on a signal.
lp_train() {
  local rc=0
  if [ "${DRY_RUN:-0}" = 1 ]; then
    # LP_DRY_RUN_ARGS: e.g. --ranks N --node-mem-gb X, to check an allocation other than this one
    # shellcheck disable=SC2086
    lp_launch train-dry-run "$LP_RANKS" llamapro train --config "$LP_CONFIG" --dry-run ${LP_DRY_RUN_ARGS:-} "$@" || rc=$?
    [ "$rc" = 0 ] || lp_die "dry run: training would fail (problems above, also in $RUN/log/train-dry-run.log)"
    lp_say "dry run: no problems found; nothing was trained"
    exit 0
  fi
  LP_CHILD_TAKES_SIGNALS=1
  lp_launch train "$LP_RANKS" llamapro train --config "$LP_CONFIG" "$@" || rc=$?
  LP_CHILD_TAKES_SIGNALS=0
  return "$rc"
}

# lp_export: Hugging Face export of the final model (into hf.tmp, renamed when complete).
lp_export() {
  local tmp="$RUN/hf.tmp"
  rm -rf "$tmp"
  lp_launch export 1 llamapro export --in "$RUN/final.h5" --to hf "$tmp" && mv "$tmp" "$RUN/hf"
}

lp_on_exit() {
  printf 'attempt\t%s\t%d\t%s\t%s\n' "$1" $(( $(date +%s) - LP_JOB_START )) "${SLURM_RESTART_COUNT:-0}" \
    "$(date -u +%FT%TZ)" >> "$RUN/steps.tsv" 2>/dev/null || true
}

# lp_finish: the report, then where it is.
lp_finish() {
  # LP_COMPARE_RUNS="DIR ...": other runs of the job (e.g. another replay share) compared in the report
  # shellcheck disable=SC2086
  LP_ATTEMPT_START=$LP_JOB_START bash "$LP_ROOT/jobs/report.sh" "$RUN" ${LP_COMPARE_RUNS:-} \
    ${LP_COMPARE_LABELS:+--label "$LP_COMPARE_LABELS"} || lp_die "jobs/report.sh $RUN failed"
  lp_say "done. Report: $(cd "$RUN" && pwd)/report.md"
}

# lp_eval_task OUT MODEL TASK CORPUS[:split]: a task metric (`llamapro eval --task TASK`, e.g.
# arithmetic accuracy); OUT gets its output, written atomically.
lp_eval_task() {
  local out=$1 model=$2 task=$3 corpus=$4
  lp_launch "eval-$(basename "$out" .txt)" "$LP_RANKS" llamapro eval --model "$model" --task "$task" \
    --corpus "$corpus" > "$out.tmp" || return
  [ -s "$out.tmp" ] || { lp_say "llamapro eval --task $task printed nothing"; return 1; }
  lp_say "$(basename "$out" .txt): $(cat "$out.tmp")"
  mv "$out.tmp" "$out"
}
