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
PY=/usr/bin/python3   # Debian's, with python3-numpy and python3-h5py (LP_DEBS)
run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/m.h5" > /dev/null 2>&1
# one corpus per case (tokens of one window) and the expected "loss ppl tokens"
"$PY" - "$LP_FIXTURES" "$T" <<'PY' || fail "writing the reference corpora"
import sys, h5py, numpy as np
fx, T = sys.argv[1:3]
ref = h5py.File(fx + "/tiny-gqa.reference.h5", "r")
dec = h5py.File(fx + "/tiny-gqa.decode-reference.h5", "r")
seqs = np.asarray(ref["input/sequences"])              # [2, 17]
blog = np.asarray(ref["base/logits"], dtype=np.float64)  # [2, 16, 96]
cases = [(f"seq{i}", seqs[i], blog[i]) for i in range(2)]
dt = np.asarray(dec["tokens"]); cases.append(("dec", dt, np.asarray(dec["logits"])[:-1]))  # 32 tokens, 31 positions
for name, toks, logits in cases:
    tgt = toks[1:]
    z = logits - logits.max(-1, keepdims=True)
    ce = np.log(np.exp(z).sum(-1)) - z[np.arange(len(tgt)), tgt]   # float64 cross-entropy per position
    loss = float(ce.mean())
    with h5py.File(f"{T}/{name}.h5", "w") as f:
        f.attrs.create("format", np.bytes_("llamapro-corpus"))
        for k, v in (("format_version", 1), ("vocab_size", 96), ("bos_id", 1), ("eos_id", 2)):
            f.attrs.create(k, np.int32(v))
        g = f.create_group("splits/val")
        g["tokens"] = toks.astype(np.uint16)
        g["doc_offsets"] = np.array([0, len(toks)], dtype=np.uint64)
    rms = float(np.sqrt((logits ** 2).mean()))
    open(f"{T}/{name}.want", "w").write(f"{loss!r} {np.exp(loss)!r} {len(tgt)} {len(tgt)} {rms!r}\n")
    print(f"{name}: reference loss {loss:.6f} ppl {np.exp(loss):.4f} over {len(tgt)} positions")
# the base loss of the reference file is the mean over both sequences: a check of this computation
w = [float(open(f"{T}/seq{i}.want").read().split()[0]) for i in range(2)]
assert abs(sum(w) / 2 - float(ref["base/loss"][()])) < 1e-6, (w, float(ref["base/loss"][()]))
PY
for name in seq0 seq1 dec; do
  read -r loss ppl n T_ rms < "$T/$name.want"
  for np in 1 2; do
    out=$("$MPIEXEC" --oversubscribe -n $np "$LLAMAPRO" eval --model "$T/m.h5" --corpus "$T/$name.h5:val" --seq-len "$T_") ||
      fail "eval $name on $np ranks"
    echo "$name, $np rank(s): llamapro '$out', reference loss $loss ppl $ppl"
    "$PY" -c 'import sys, math
f = sys.argv[1].split()
assert f[0] == "loss" and f[2] == "ppl" and f[4] == "tokens", f
loss, ppl, n = float(f[1]), float(f[3]), int(f[5])
wl, wp, wn = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
assert n == wn, ("tokens", n, wn)
# float32 forward (logits within 1e-4 of the reference) and 6 printed decimals
assert abs(loss - wl) <= 2e-5, ("loss", loss, wl)
assert abs(ppl - wp) <= 2e-5 * wp + 1e-4, ("ppl", ppl, wp)' "$out" "$loss" "$ppl" "$n" || fail "$name on $np ranks: '$out' vs loss $loss ppl $ppl"
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
