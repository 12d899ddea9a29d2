# ckpt_common.sh - sourced by the checkpoint tests: a tiny init -> expand setup ($T/run.ini,
# $T/exp.h5, $T/corpus.h5) and same_losses A B [TOL]: step losses of two metrics.jsonl agree
# (bitwise when TOL is 0) and there are 12 of them.
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
