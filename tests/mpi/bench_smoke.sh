# bench_smoke.sh - `llamapro bench` runs the training engine (engine.h, the one `train` runs) on the
# foundation issue's bench configuration (one timed step) and reports tokens/s, GFLOP/s, MFU against
# the ceiling measured on the step's own GEMM shapes (never above 100%), and the per-phase times of
# the pipeline stage's timers; then a tiny shape on 2 ranks as 2 pipeline stages, as train runs.
# Speed itself is shown by `llamapro bench`, never asserted by a test.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
out=$(OMP_NUM_THREADS=1 "$LLAMAPRO" bench --config "$LP_SOURCE_DIR/inputs/configs/bench.ini" --expand 2 \
      --steps 1 --warmup 0 --json "$T/bench.json") || fail "bench failed: $out"
echo "$out"
echo "$out" | grep -q '10 layers (2 trainable, method llama-pro)' || fail "expected 10 layers, 2 trainable"
echo "$out" | grep -Eq 'tokens/s, [0-9.]+ GFLOP/s, MFU [0-9.]+% of [0-9.]+ GFLOP/s ceiling' || fail "no summary line"
echo "$out" | grep -Eq 'per step .*forward [0-9.]+ s, input_grad [0-9.]+ s, weight_grad [0-9.]+ s, optimizer [0-9.]+ s, waiting' \
  || fail "no per-phase line"
python3 - "$T/bench.json" <<'PY' || fail "bench json"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("step_s", "tokens_per_s", "gflops", "mfu", "sgemm_gflops", "flop_per_token", "tokens_per_step", "threads",
          "ceiling_gflops", "steps_s", "phases_s", "gemm_shapes"):
    assert k in d, k
assert d["tokens_per_step"] == 2048 and d["threads"] == 1 and d["layers"] == 10 and d["trainable_layers"] == 2
assert 0 < d["mfu"] <= 1, d["mfu"]                       # the ceiling is the best rate of the step's own GEMMs
assert abs(d["gflops"] / d["ceiling_gflops"] - d["mfu"]) < 1e-3
assert abs(d["tokens_per_s"] * d["step_s"] - 2048) < 1
# FLOPs per token computed independently (2 * params touched per token, per kind of work):
# dim 512, hidden 1376, 8 + 2 layers, vocab 4096, T 256; new blocks 4 and 9 (after each group of 4) ->
# backward from layer 4
C, F, V, T, L = 512, 1376, 4096, 256, 10
lin = 2 * (C * 3 * C + C * C + 3 * C * F)                  # per token: qkv, wo, w1|w3, w2
att = 2 * 8 * 64 * (T + 1)                                # causal half of q k^T and p v, per token
fwd, head = L * (lin + att) + 2 * C * V, 2 * C * V
bin_ = (L - 4) * (lin + 2 * att) + head
bwt = 2 * lin
assert abs(d["flop_per_token"] - (fwd + bin_ + bwt)) <= 1e-6 * d["flop_per_token"], (d["flop_per_token"], fwd + bin_ + bwt)
# the ceiling probed the step's big shapes, all three kinds of work
kinds = {s["phase"] for s in d["gemm_shapes"]}
assert kinds == {"forward", "input-grad", "weight-grad"}, kinds
assert any(s["trans"] == "TN" and s["k"] == 2048 for s in d["gemm_shapes"])
assert max(s["gflops"] for s in d["gemm_shapes"]) <= d["ceiling_gflops"] + 1e-6
ph = d["phases_s"]
assert ph["forward"] > 0 and ph["input_grad"] > 0 and ph["weight_grad"] > 0 and ph["optimizer"] > 0
assert sum(ph.values()) <= d["step_s"] * 1.05
PY
# the same engine under MPI: 2 ranks as 2 pipeline stages, all tensors trained (no --expand)
tiny="model.dim=64 model.hidden_dim=128 model.n_layers=4 model.n_heads=4 model.n_kv_heads=2 model.vocab_size=256
      model.max_seq_len=32 data.seq_len=32 batch.micro_batch=2 batch.microbatches=4 parallel.pp=2"
out=$("$MPIEXEC" -n 2 "$LLAMAPRO" bench --config "$LP_SOURCE_DIR/inputs/configs/bench.ini" $tiny --steps 2 \
      --json "$T/pp2.json" 2>&1) || fail "bench on 2 ranks failed: $out"
echo "$out"
echo "$out" | grep -q '4 layers (4 trainable, method full)' || fail "expected 4 layers, all trainable"
echo "$out" | grep -q '2 ranks (pp 2 x tp 1 x dp 1' || fail "expected 2 pipeline stages"
echo "$out" | grep -q '^bench: stage 1:' || fail "no per-stage phase line"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["pp"]==2 and 0<d["mfu"]<=1 and d["tokens_per_step"]==256' \
  "$T/pp2.json" || fail "pp 2 bench json"
echo "bench_smoke: passed"
