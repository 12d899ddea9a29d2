# train_smoke.sh - init -> expand -> train (llama-pro, 1 and 2 ranks) -> eval -> generate on a tiny
# model: the run writes metrics.jsonl with the DESIGN.md fields, trains only the new blocks (the
# frozen tensors of final.h5 are bitwise those of the expanded model), and 2 data-parallel ranks
# give the loss of 1 rank over the same global batch.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
lp_tiny_ini "$T/run.ini" 64
lp_tiny_setup "$T/run.ini" 40 0.2
run "$LLAMAPRO" train --config "$T/run.ini" 2> "$T/train1.log"
grep -q 'step 4/4 | loss' "$T/train1.log" || fail "no progress line: $(cat "$T/train1.log")"
M="$T/run1/metrics.jsonl"
[ "$(grep -c '"grad_norm"' "$M")" = 4 ] || fail "expected 4 step lines in $M"
[ "$(grep -c '"eval": "general"' "$M")" = 3 ] || fail "expected evaluations at steps 0, 2, 4 in $M"
python3 - "$M" <<'PY' || fail "metrics fields"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [r for r in rows if "grad_norm" in r]
for k in ("step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "mfu", "time_s"):
    assert all(k in r for r in steps), k
assert [r["step"] for r in steps] == [1, 2, 3, 4]
assert steps[-1]["tokens"] == 4 * 2 * 2 * 32
ev = [r for r in rows if "eval" in r]
assert [r["step"] for r in ev] == [0, 2, 4], ev
assert all(set(("step", "eval", "loss", "ppl", "tokens")) <= set(r) for r in ev)
PY
# frozen tensors untouched, new blocks (layers 2 and 5) changed
for t in tok_embeddings norm layers/000/wq layers/001/w2 layers/003/w1 layers/004/wo; do
  h5diff -q "$T/exp.h5" "$T/run1/final.h5" "/weights/$t" "/weights/$t" || fail "frozen /weights/$t changed"
done
for t in layers/002/wo layers/005/w2; do
  ! h5diff -q "$T/exp.h5" "$T/run1/final.h5" "/weights/$t" "/weights/$t" >/dev/null || fail "trainable /weights/$t did not change"
done
# data parallel: 2 ranks x 1 microbatch each = 1 rank x 2 microbatches (same global batch)
"$MPIEXEC" -n 2 "$LLAMAPRO" train --config "$T/run.ini" batch.microbatches=1 run.dir="$T/run2" 2> "$T/train2.log" || fail "2-rank train: $(tail -3 "$T/train2.log")"
python3 - "$M" "$T/run2/metrics.jsonl" <<'PY' || fail "1-rank and 2-rank losses differ"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
la = [r["loss"] for r in a if "grad_norm" in r]; lb = [r["loss"] for r in b if "grad_norm" in r]
assert len(la) == len(lb) == 4
for x, y in zip(la, lb):
    assert abs(x - y) <= 1e-5 * abs(x), (la, lb)
ea = [r["loss"] for r in a if "eval" in r]; eb = [r["loss"] for r in b if "eval" in r]
assert len(ea) == len(eb) == 3, (ea, eb)  # steps 0, 2, 4
for x, y in zip(ea, eb):
    assert abs(x - y) <= 1e-5 * abs(x), (ea, eb)
PY
out=$("$LLAMAPRO" eval --model "$T/run1/final.h5" --corpus "$T/corpus.h5:val" --max-tokens 2000) || fail "eval"
echo "$out" | grep -Eq '^loss [0-9.]+ ppl [0-9.]+ tokens [0-9]+$' || fail "eval output: $out"
"$LLAMAPRO" generate --model "$T/run1/final.h5" --prompt "The" --tokens 5 --temperature 0 > /dev/null || fail "generate"
echo "train_smoke: passed"
