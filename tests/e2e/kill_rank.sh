#!/usr/bin/env bash
# kill_rank.sh - kill -9 of one MPI rank during training ends the job within 30 s, and its log names
# the rank. With LP_KILL_RESUME=1 (kill_rank_resume.sh), then: submitting the job again resumes from
# the last checkpoint and finishes.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
resume=${LP_KILL_RESUME:-0}
lp_cluster_start
lp_tiny_base "$T/base.h5"
lp_smoke_config "$T/smoke.ini" "$T/run"
R=$T/run
ckpt=$resume
submit() {
  LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini lp_submit --output="$T/%x-%j.out" jobs/llama-pro-code.slurm \
    batch.steps=400 run.eval_every=100 run.ckpt_every=10 "$@"
}
job=$(submit)
out="$T/llama-pro-code-$job.out"
# wait for training to be under way (and, with checkpoints, for the first one)
started=0
for i in $(seq 240); do
  n=$(grep -c '"grad_norm"' "$R/metrics.jsonl" 2>/dev/null || true)
  if [ "${n:-0}" -ge 3 ] && { [ $ckpt = 0 ] || ls "$R"/ckpt/*.h5 >/dev/null 2>&1; }; then started=1; break; fi
  st=$(lp_job_field "$job" JobState)
  case "$st" in PENDING|CONFIGURING|RUNNING) ;; *) fail "job $job is ${st:-gone} before the kill: $(tail -20 "$out" 2>&1)" ;; esac
  sleep 0.5
done
[ $started = 1 ] || fail "training not under way after 120 s (job $(lp_job_field "$job" JobState), reason $(lp_job_field "$job" Reason)): $(tail -5 "$out" 2>/dev/null)"
# the process of global task (rank) 1 of the training step
victim=""
while read -r pid _job step _local global; do
  # by its command line: llamapro re-executes itself (/proc/self/exe), so its comm is "exe"
  [ "$global" = 1 ] && [[ "$(tr '\0' '\n' < /proc/"$pid"/cmdline 2>/dev/null | head -1)" == *llamapro ]] && victim=$pid
done < <(scontrol listpids "$job" 2>/dev/null | tail -n +2)
[ -n "$victim" ] || fail "no llamapro process of rank 1 found: $(scontrol listpids "$job")"
t0=$(date +%s)
kill -9 "$victim"
state=$(lp_wait "$job" 60)
dt=$(( $(date +%s) - t0 ))
echo "killed rank 1 (pid $victim): job $job $state after $dt s"
[ "$dt" -le 30 ] || fail "the job took $dt s (> 30) to end after a rank died"
[ "$state" = FAILED ] || fail "job state $state, expected FAILED"
grep -Eq 'train failed with exit status [0-9]+: rank 1 ended first \(task 1: Killed' "$out" ||
  fail "the log does not name the dead rank: $(tail -8 "$out")"
if [ "$resume" = 0 ]; then echo "kill_rank: passed"; exit 0; fi
# the last complete checkpoint (DESIGN.md: run/ckpt/step-*.h5)
last=$(ls "$R"/ckpt/ | grep -E '^step-[0-9]+\.h5$' | sort -t- -k2 -n | tail -1)
[ -n "$last" ] || fail "no checkpoint step-*.h5 in $R/ckpt: $(ls "$R/ckpt")"
job2=$(submit)
state=$(lp_wait "$job2" 300)
out2="$T/llama-pro-code-$job2.out"
[ "$state" = COMPLETED ] || fail "resubmitted job $job2 ended $state: $(tail -20 "$out2")"
grep -q "resuming from $R/ckpt/$last" "$out2" ||
  fail "the second job did not resume from $last: $(grep -h -i 'resum' "$out2")"
# and the run has every step once (a resumed run may repeat the steps after its checkpoint)
python3 - "$R/metrics.jsonl" <<'PY2' || fail "steps missing from metrics.jsonl after the resume"
import json, sys
steps = {json.loads(l)["step"] for l in open(sys.argv[1]) if '"grad_norm"' in l}
assert steps == set(range(1, 401)), sorted(set(range(1, 401)) - steps)[:10]
PY2
[ -s "$R/final.h5" ] && [ -s "$R/report.md" ] || fail "no final model or report after the resubmission"
echo "kill_rank_resume: resumed from $last"
echo "kill_rank_resume: passed"
