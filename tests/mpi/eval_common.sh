# eval_common.sh - sourced by the eval tests (after tests/cli/lib.sh): the fixture model and
# corpora whose losses are computed outside llamapro.
#   lp_eval_fixtures : $T/m.h5, the tiny-gqa fixture model (4 layers, vocabulary 96); and one corpus
#     per case, $T/{seq0,seq1,dec}.h5 (split val: the tokens of one window), with $T/NAME.want =
#     "loss ppl positions seq_len rms": the mean cross-entropy and its exp in float64 (numpy) from
#     the fixtures' float64 reference logits and the targets (the 16 positions of each sequence of
#     tiny-gqa.reference.h5, the 31 of tiny-gqa.decode-reference.h5), and the rms of the logits.
#   lp_eval_check OUT NAME : OUT ("loss L ppl P tokens N") within float32 rounding of $T/NAME.want.
#   lp_eval_corpus FILE TOKENS... : a corpus FILE (split val) holding TOKENS (h5py).
PY=/usr/bin/python3   # Debian's, with python3-numpy and python3-h5py (LP_DEBS)
lp_eval_corpus() {
  "$PY" - "$@" <<'PY' || fail "writing corpus $1"
import sys, h5py, numpy as np
toks = np.array([int(t) for t in sys.argv[2:]])
with h5py.File(sys.argv[1], "w") as f:
    f.attrs.create("format", np.bytes_("llamapro-corpus"))
    for k, v in (("format_version", 1), ("vocab_size", 96), ("bos_id", 1), ("eos_id", 2)):
        f.attrs.create(k, np.int32(v))
    g = f.create_group("splits/val")
    g["tokens"] = toks.astype(np.uint16)
    g["doc_offsets"] = np.array([0, len(toks)], dtype=np.uint64)
PY
}
lp_eval_fixtures() {
  run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/m.h5" > /dev/null 2>&1
  "$PY" - "$LP_FIXTURES" "$T" <<'PY' || fail "computing the reference losses"
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
    open(f"{T}/{name}.tokens", "w").write(" ".join(str(int(t)) for t in toks))
    rms = float(np.sqrt((logits ** 2).mean()))
    open(f"{T}/{name}.want", "w").write(f"{loss!r} {np.exp(loss)!r} {len(tgt)} {len(tgt)} {rms!r}\n")
    print(f"{name}: reference loss {loss:.6f} ppl {np.exp(loss):.4f} over {len(tgt)} positions")
# the base loss of the reference file is the mean over both sequences: a check of this computation
w = [float(open(f"{T}/seq{i}.want").read().split()[0]) for i in range(2)]
assert abs(sum(w) / 2 - float(ref["base/loss"][()])) < 1e-6, (w, float(ref["base/loss"][()]))
PY
  local name
  for name in seq0 seq1 dec; do
    # shellcheck disable=SC2046
    lp_eval_corpus "$T/$name.h5" $(cat "$T/$name.tokens")
  done
}
lp_eval_check() {
  local loss ppl n _t _rms
  read -r loss ppl n _t _rms < "$T/$2.want"
  "$PY" -c 'import sys
f = sys.argv[1].split()
assert len(f) == 6 and f[0] == "loss" and f[2] == "ppl" and f[4] == "tokens", f
loss, ppl, n = float(f[1]), float(f[3]), int(f[5])
wl, wp, wn = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
assert n == wn, ("tokens", n, wn)
# float32 forward (logits within 1e-4 of the reference) and 6 printed decimals
assert abs(loss - wl) <= 2e-5, ("loss", loss, wl)
assert abs(ppl - wp) <= 2e-5 * wp + 1e-4, ("ppl", ppl, wp)' "$1" "$loss" "$ppl" "$n" || fail "$2: '$1' vs reference loss $loss ppl $ppl"
}
