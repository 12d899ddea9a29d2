# bench_smoke.sh - the foundation issue's bench configuration runs (one timed step) and reports
# tokens/s, GFLOP/s and MFU against an sgemm rate measured in the same run. Speed itself is shown
# by `llamapro bench`, never asserted by a test.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
out=$(OMP_NUM_THREADS=1 "$LLAMAPRO" bench --config "$LP_SOURCE_DIR/inputs/configs/bench.ini" --expand 2 \
      --steps 1 --warmup 0 --json "$T/bench.json") || fail "bench failed: $out"
echo "$out"
echo "$out" | grep -q '10 layers (2 trainable)' || fail "expected 10 layers, 2 trainable"
echo "$out" | grep -Eq 'tokens/s, [0-9.]+ GFLOP/s, MFU [0-9.]+% of [0-9.]+ GFLOP/s sgemm' || fail "no summary line"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["tokens_per_step"]==2048 and 0<d["mfu"]<2' "$T/bench.json" || fail "bench json"
