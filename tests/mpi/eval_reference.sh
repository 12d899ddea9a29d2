# eval_reference.sh - `llamapro eval` against losses computed outside llamapro: the mean
# cross-entropy and its exp (ppl), in float64 here (numpy), from the float64 reference logits of
# the fixtures and the targets: the 16 positions of each sequence of tiny-gqa.reference.h5, and the
# 31 positions of tiny-gqa.decode-reference.h5 (past position 15). On 1 and 2 ranks (the second
# rank has no window). The corpora are written here with h5py, token ids taken from the fixtures.
# And a model expanded with `expand --position interleave|top|bottom` evaluates as its base.
# `--precision bf16` (frozen weights in bf16 only): within the bf16 loss allowance derived in
# tests/unit/test_precision_bf16.c, 2 * 2 e(G) * rms(z) with e(G) = sqrt(G) sqrt(2/3) 2^-9 for the
# G = 4 L + 1 = 17 chained GEMMs of the 4-block model and rms(z) of the reference logits.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/eval_common.sh" || exit 1
lp_eval_fixtures
for name in seq0 seq1 dec; do
  read -r loss ppl n T_ rms < "$T/$name.want"
  for np in 1 2; do
    out=$("$MPIEXEC" --oversubscribe -n $np "$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/$name.h5:val" --seq-len "$T_") ||
      fail "eval $name on $np ranks"
    echo "$name, $np rank(s): llamapro '$out', reference loss $loss ppl $ppl"
    lp_eval_check "$out" "$name"
  done
  f32=$("$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/$name.h5:val" --seq-len "$T_" --precision fp32) || fail "eval --precision fp32"
  bf=$("$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/$name.h5:val" --seq-len "$T_" --precision bf16) || fail "eval --precision bf16"
  echo "$name --precision bf16: '$bf' (fp32 '$f32'), reference loss $loss"
  "$PY" -c 'import sys, math
b, f = sys.argv[1].split(), sys.argv[2].split()
wl, rms, L = float(sys.argv[3]), float(sys.argv[4]), 4
G = 4 * L + 1
tol = 2 * 2 * math.sqrt(G) * math.sqrt(2 / 3) * 2 ** -9 * rms
lb, lf = float(b[1]), float(f[1])
print(f"  bf16 - reference {lb - wl:+.3g}, bf16 - fp32 {lb - lf:+.3g}, allowed {tol:.3g}")
assert b[5] == f[5], ("tokens", b, f)
assert abs(lb - wl) <= tol and abs(lb - lf) <= tol, (lb, lf, wl, tol)
assert lb != lf, "bf16 loss equals fp32 to 6 decimals: bf16 not used?"' "$bf" "$f32" "$loss" "$rms" ||
    fail "$name: eval --precision bf16 '$bf' vs fp32 '$f32', reference $loss"
done
expect_fail 1 "--precision: expected fp32 or bf16, got 'fp16'" "$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/seq0.h5:val" --precision fp16
# `expand --position interleave|top|bottom`: the new blocks are identities, so the expanded model
# evaluates to the base's loss to the last printed digit, on the reference corpus past position 15
base=$("$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/dec.h5:val" --seq-len 31) || fail "eval base"
for pos in interleave top bottom; do
  run "$LLAMAPRO" expand --in "$T/m.h5" --out "$T/x-$pos.h5" --blocks 2 --position $pos > /dev/null 2>&1
  out=$("$LLAMAPRO" eval --model "$T/x-$pos.h5" --corpus "$T/dec.h5:val" --seq-len 31) || fail "eval $pos"
  [ "$out" = "$base" ] || fail "expand --position $pos: '$out', base '$base'"
  "$LLAMAPRO" info "$T/x-$pos.h5" | grep -q "n_layers 6" || fail "expand --position $pos: not 6 layers"
done
echo "expand --position interleave/top/bottom: '$base' as the base"
echo "eval_reference: passed"
