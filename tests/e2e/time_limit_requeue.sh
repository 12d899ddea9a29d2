#!/usr/bin/env bash
# time_limit_requeue.sh - a job whose time limit ends mid-training gets USR1 (--signal=B:USR1@50 with
# --time=1), the training program checkpoints and exits 75, the job script requeues itself, the
# next attempt resumes, and the run ends with the loss curve and final model of an uninterrupted
# job, bit for bit.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
lp_cluster_start
lp_tiny_base "$T/base.h5"
# the inputs are made up front, so that the job starts training at once and the signal (sent at
# Slurm's next 30-second timer tick after 10 s) finds it training
mkdir -p "$T/shared"
run "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/shared/expanded.h5" --blocks 2 2>/dev/null
run "$LLAMAPRO" prepare --quiet --tokenizer "$T/base.h5" --out "$T/shared/corpus-code.h5" "$SRC/inputs/corpora/python-stdlib.jsonl.gz"
run "$LLAMAPRO" prepare --quiet --tokenizer "$T/base.h5" --out "$T/shared/corpus-general.h5" "$SRC/inputs/corpora/brown.jsonl.gz"
# Training must outlast the time-limit signal by a wide margin: Slurm looks at time limits only
# about every 30 s, so USR1 (due 10 s into the job) can arrive 40 s in. 12000 tiny steps take
# ~75 s on an idle core (3000 took 19 s and finished first); two jobs of one rank each run side by
# side on the two cores.
steps=${LP_TEST_REQUEUE_STEPS:-12000}
for r in ref int; do
  lp_smoke_config "$T/$r.ini" "$T/$r"
  mkdir -p "$T/$r"; cp "$T/shared"/*.h5 "$T/$r/"
done
sub() {   # name, sbatch options...
  local r=$1; shift
  LP_BASE=$T/base.h5 LP_CONFIG=$T/$r.ini lp_submit --output="$T/$r-%j.out" --ntasks-per-node=1 \
    --cpus-per-task=1 "$@" jobs/llama-pro-code.slurm batch.steps="$steps" run.eval_every=500 run.ckpt_every=100
}
ref=$(sub ref --time=10)
int=$(sub int --time=1 --signal=B:USR1@50)
# the interrupted job: after its first requeue it gets a longer limit, and is made eligible in
# 3 s instead of Slurm's 2 minutes
raised=0
for i in $(seq 600); do
  st=$(lp_job_field "$int" JobState); restarts=$(lp_job_field "$int" Restarts)
  case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|"") break ;; esac
  if [ "$st" = PENDING ] && [ "${restarts:-0}" -ge 1 ] && [ $raised = 0 ]; then
    sleep 2
    scontrol update JobId="$int" TimeLimit=10 StartTime=now+3 || fail "scontrol update $int"
    raised=1
  fi
  sleep 0.5
done
[ "$st" = COMPLETED ] || fail "interrupted job $int ended ${st:-?}: $(tail -20 "$T/int-$int.out")"
state=$(lp_wait "$ref" 300)
[ "$state" = COMPLETED ] || fail "reference job $ref ended $state: $(tail -20 "$T/ref-$ref.out")"
out="$T/int-$int.out"
grep -q 'got SIGUSR1: forwarding it to the training program' "$out" ||
  fail "job $int was not signalled during training (training ended before the time-limit signal? raise LP_TEST_REQUEUE_STEPS): $(tail -20 "$out")"
grep -q "requeueing job $int (restart 1)" "$out" || fail "job $int did not requeue itself"
grep -q 'SLURM_RESTART_COUNT=1' "$out" || fail "no second attempt in $out"
grep -Eq '^train	75	' "$T/int/steps.tsv" || fail "training did not exit 75: $(cat "$T/int/steps.tsv")"
python3 - "$T/ref/metrics.jsonl" "$T/int/metrics.jsonl" "$steps" <<'PY' || fail "loss curves differ"
import json, sys
def curve(p):
    d = {}
    for l in open(p):
        r = json.loads(l)
        if "loss" not in r:   # memory and other report lines
            continue
        d[(r.get("eval", "train"), r["step"])] = r["loss"]   # a resumed run repeats steps: last wins
    return d
a, b = curve(sys.argv[1]), curve(sys.argv[2])
assert a.keys() == b.keys(), (len(a), len(b), sorted(set(a) ^ set(b))[:5])
n_train = sum(k[0] == "train" for k in a)
assert n_train == int(sys.argv[3]) and len(a) > n_train, (n_train, len(a))  # every step, and evaluations
diff = [(k, a[k], b[k]) for k in sorted(a, key=lambda k: (k[1], k[0])) if a[k] != b[k]]
assert not diff, f"{len(diff)} differences, first {diff[:3]}"
print(f"loss curves identical: {len(a)} points")
PY
h5diff -q "$T/ref/final.h5" "$T/int/final.h5" /weights /weights || fail "final weights differ from the uninterrupted job's"
echo "time_limit_requeue: passed"
