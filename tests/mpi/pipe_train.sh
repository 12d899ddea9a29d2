# pipe_train.sh - `llamapro train` with [parallel] pp > 1: the same losses, evaluations and final
# weights as pp = 1 (bitwise), the per-stage timing fields in metrics.jsonl, bad layouts (one line
# from rank 0, exit 1 on every rank, no hang), a stage of frozen layers holding no gradient or
# optimizer memory and peaking below a stage of as many trainable layers, and the bubble of pp = 2,
# M = 8 measured and predicted in every step's metrics. How close the two are is a timing, which
# the scaling study reports (jobs/scaling-report.sh); a test on a shared machine only prints it.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
export OMP_NUM_THREADS=1
mpi() { "$MPIEXEC" -q --oversubscribe --bind-to none "$@"; }
lp_tiny_ini "$T/run.ini" 128 "[batch]" "microbatches = 4" "steps = 3"
lp_tiny_setup "$T/run.ini" 200 0.1

# 1. pp = 2 (both schedules) = pp = 1, bitwise: step and eval losses, grad norms, final weights
run "$LLAMAPRO" train --config "$T/run.ini" 2> "$T/p1.log"
for s in 1f1b gpipe; do
  mpi -n 2 "$LLAMAPRO" train --config "$T/run.ini" parallel.pp=2 parallel.schedule=$s run.dir="$T/run2$s" 2> "$T/p2$s.log" || fail "pp 2 $s: $(tail -3 "$T/p2$s.log")"
  python3 - "$T/run1/metrics.jsonl" "$T/run2$s/metrics.jsonl" <<'PY' || fail "pp 2 $s differs from pp 1"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
key = lambda r: [(x["step"], x["loss"], x.get("grad_norm")) for x in r if "loss" in x]
assert key(a) == key(b) and len(key(a)) == 6, (key(a), key(b))  # 3 steps, 3 evaluations
steps = [x for x in b if "grad_norm" in x]
for k in ("stage_fwd_s", "stage_bin_s", "stage_bwt_s", "stage_wait_s", "stage_opt_s", "stage_idle_s"):
    assert all(len(x[k]) == 2 for x in steps), k
assert all(0 <= x["bubble"] <= 1 and 0 <= x["bubble_pred"] <= 1 for x in steps)
PY
  h5diff -q "$T/run1/final.h5" "$T/run2$s/final.h5" || fail "pp 2 $s final model differs from pp 1"
done
grep -q "partition (cost model, 1f1b, 4 microbatches)" "$T/p21f1b.log" || fail "no partition printed: $(cat "$T/p21f1b.log")"
# tied embeddings: both ends hold a copy of the (frozen) matrix
sed 's/^n_heads = 4/n_heads = 4\ntie_embeddings = 1/' "$T/run.ini" > "$T/tied.ini"
run "$LLAMAPRO" init --config "$T/tied.ini" --out "$T/tbase.h5" --tokenizer "$TOK" 2>/dev/null
run "$LLAMAPRO" expand --in "$T/tbase.h5" --out "$T/texp.h5" --blocks 2 2>/dev/null
run "$LLAMAPRO" train --config "$T/tied.ini" model.path="$T/texp.h5" data.val= batch.steps=2 run.dir="$T/tied1" 2>/dev/null
mpi -n 2 "$LLAMAPRO" train --config "$T/tied.ini" model.path="$T/texp.h5" data.val= batch.steps=2 parallel.pp=2 run.dir="$T/tied2" 2>/dev/null || fail "tied pp 2"
h5diff -q "$T/tied1/final.h5" "$T/tied2/final.h5" || fail "tied embeddings: pp 2 final model differs from pp 1"

# 2. bad layouts: exit 1, one line from rank 0 naming the field, on every rank
lp_bad_train 3 '\[parallel\] pp = 2 does not divide the 3 MPI ranks' parallel.pp=2
lp_bad_train 2 '\[parallel\] partition = 2,2,2 has 3 entries, expected one layer count per stage \(pp = 2\)' parallel.pp=2 parallel.partition=2,2,2
lp_bad_train 2 '\[parallel\] partition = 3,2 covers 5 layers, expected each of the model.s 6 layers exactly once' parallel.pp=2 parallel.partition=3,2
lp_bad_train 2 '\[parallel\] partition = 3,4 covers 7 layers' parallel.pp=2 parallel.partition=3,4
lp_bad_train 2 "\[parallel\] partition = 0,6: '0' is not a positive layer count" parallel.pp=2 parallel.partition=0,6
lp_bad_train 2 "\[method\] unfreeze: tied embeddings cannot train with \[parallel\] pp = 2" parallel.pp=2 model.path="$T/texp.h5" method.unfreeze=embeddings
sed 's/^n_layers = 4/n_layers = 2/' "$T/run.ini" > "$T/two.ini"
run "$LLAMAPRO" init --config "$T/two.ini" --out "$T/base2.h5" --tokenizer "$TOK" 2>/dev/null
run "$LLAMAPRO" expand --in "$T/base2.h5" --out "$T/exp3.h5" --blocks 1 2>/dev/null
lp_bad_train 4 "\[parallel\] pp = 4 exceeds the model.s 3 layers" parallel.pp=4 model.path="$T/exp3.h5"

# 3. memory: new blocks on top (layers 4, 5); pp = 3 x 2 layers: stage 0 (2 frozen + embedding)
#    against stage 2 (2 trainable + LM head of the same size)
sed -e 's/^dim = 64/dim = 256/; s/^hidden_dim = 128/hidden_dim = 768/; s/^n_heads = 4/n_heads = 8/; s/^n_kv_heads = 2/n_kv_heads = 4/' \
    -e "s|^path = .*|path = $T/bexp.h5|; /^val = /d; s/^eval_every = 2/eval_every = 0/" "$T/run.ini" > "$T/big.ini"
run "$LLAMAPRO" init --config "$T/big.ini" --out "$T/bbase.h5" --tokenizer "$TOK" 2>/dev/null
run "$LLAMAPRO" expand --in "$T/bbase.h5" --out "$T/btop.h5" --blocks 2 --position top 2>/dev/null
mpi -n 3 "$LLAMAPRO" train --config "$T/big.ini" model.path="$T/btop.h5" parallel.pp=3 parallel.partition=2,2,2 \
    batch.steps=2 batch.microbatches=2 run.dir="$T/mem" 2> "$T/mem.log" || fail "pp 3 memory run: $(tail -3 "$T/mem.log")"
grep '^memory stage' "$T/mem.log" | tail -3
python3 - "$T/mem/metrics.jsonl" <<'PY' || fail "memory of frozen and trainable stages: $(grep '^memory' "$T/mem.log")"
import json, sys
m = {r["memory_stage"]: r for r in map(json.loads, open(sys.argv[1])) if "memory_stage" in r}
assert sorted(m) == [0, 1, 2]
for s in (0, 1):
    assert m[s]["trainable_layers"] == 0 and m[s]["grads_bytes"] == 0 and m[s]["optim_bytes"] == 0, m[s]
assert m[2]["trainable_layers"] == 2 and m[2]["grads_bytes"] > 0 and m[2]["optim_bytes"] == 2 * m[2]["grads_bytes"], m[2]
print("VmHWM frozen stage 0: %.1f MB, trainable stage 2: %.1f MB" % (m[0]["vmhwm_bytes"] / 1e6, m[2]["vmhwm_bytes"] / 1e6))
assert m[0]["vmhwm_bytes"] < m[2]["vmhwm_bytes"], (m[0], m[2])
PY

# 4. bubble: pp = 2, M = 8: measured (idle share of the pipeline phase) and predicted, printed
run "$LLAMAPRO" expand --in "$T/bbase.h5" --out "$T/bexp.h5" --blocks 2 2>/dev/null
mpi -n 2 "$LLAMAPRO" train --config "$T/big.ini" parallel.pp=2 batch.microbatches=8 data.seq_len=128 batch.steps=6 \
    run.dir="$T/bubble" 2> "$T/bubble.log" || fail "bubble run: $(tail -3 "$T/bubble.log")"
grep -A2 '^partition' "$T/bubble.log"
python3 - "$T/bubble/metrics.jsonl" <<'PY' || fail "bubble fields missing or out of range"
import json, sys
steps = [r for r in map(json.loads, open(sys.argv[1])) if "grad_norm" in r][1:]
meas = min(r["bubble"] for r in steps); pred = steps[0]["bubble_pred"]
print("bubble measured %.3f (min of steps 2-6: %s), predicted %.3f" % (meas, " ".join("%.3f" % r["bubble"] for r in steps), pred))
# two stages over 8 microbatches always leave some idle time: at least the fill and drain of one
# microbatch on a stage, (p - 1) / (M + p - 1) = 1/9 for equal stages, more for unequal ones
assert len(steps) == 5 and 0 < meas < 1 and 1 / 9 - 1e-9 <= pred < 1, (meas, pred)
PY
echo "pipe_train: passed"
