# ckpt_common.sh - sourced by the checkpoint tests: a tiny init -> expand setup ($T/run.ini,
# $T/exp.h5, $T/corpus.h5) and same_losses A B [TOL]: step losses of two metrics.jsonl agree
# (bitwise when TOL is 0) and there are 12 of them; resume_layouts "ARGS" LABEL: a checkpoint
# written by 2 pipeline stages at step 6 resumes with 1 and with 4 stages to losses and final
# weights bitwise those of the straight run in $T/straight (made with the same ARGS).
lp_tiny_ini "$T/run.ini" 64 "[data]" "val =" "[batch]" "steps = 12" "[optim]" "warmup_steps = 2" \
  "[run]" "dir = $T/straight" "eval_every = 0" "ckpt_every = 3" "keep_last = 2"
lp_tiny_setup "$T/run.ini" 40 0.2
same_losses() {
  python3 - "$1" "$2" "${3:-0}" <<'PY'
import json, sys
def losses(p):
    rows = [json.loads(l) for l in open(p)]
    return [(r["step"], r["loss"]) for r in rows if "grad_norm" in r]
a, b, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
assert [s for s, _ in a] == list(range(1, 13)), a
assert [s for s, _ in b] == list(range(1, 13)), b
for (s, x), (_, y) in zip(a, b):
    assert (x == y) if tol == 0 else abs(x - y) <= tol * abs(x), (s, x, y)
PY
}
resume_layouts() {
  local C=$1 what=$2 pp MPI="$MPIEXEC -q --oversubscribe --bind-to none"
  $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" $C parallel.pp=2 batch.steps=6 run.ckpt_every=6 \
    run.dir="$T/pp2" 2> "$T/pp2.log" || fail "pp=2 first half: $(tail -3 "$T/pp2.log")"
  [ -f "$T/pp2/ckpt/latest" ] || fail "no checkpoint from the pp=2 run"
  for pp in 1 4; do
    cp -r "$T/pp2" "$T/resume$pp"
    sed -i "s#$T/pp2/#$T/resume$pp/#g" "$T/resume$pp/ckpt/latest" 2>/dev/null || true
    $MPI -n $pp "$LLAMAPRO" train --config "$T/run.ini" $C parallel.pp=$pp run.dir="$T/resume$pp" \
      2> "$T/resume$pp.log" || fail "resume with pp=$pp: $(tail -3 "$T/resume$pp.log")"
    grep -q "resum" "$T/resume$pp.log" || fail "pp=$pp did not resume: $(head -5 "$T/resume$pp.log")"
    same_losses "$T/straight/metrics.jsonl" "$T/resume$pp/metrics.jsonl" || fail "${what}pp=2 -> pp=$pp losses differ"
    h5diff -q "$T/straight/final.h5" "$T/resume$pp/final.h5" /weights /weights ||
      fail "${what}pp=2 -> pp=$pp final weights differ"
  done
}
