# mixture.sh - weighted mixtures of corpora ([data] train = name:path@w, ...; mixture.h): two
# synthetic corpora whose tokens name their corpus and window (mixture_main.c make), mixed 0.7/0.3:
# over 1000 global batches of 12 the shares are within 1% of the weights (and every batch within
# one sequence); every sequence is a window of the source lp_mixture_source_of names; each source's
# sequences, by cursor, visit every window once per epoch in a fresh order per epoch (the small
# source is repeated ~10 times); (pp,dp) = (1,1), (2,1), (1,2) fetch bitwise the same batches.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
: "${LP_MIXTURE:?run through ctest}"
run "$LP_MIXTURE" make "$T/a.h5" 0 20000
run "$LP_MIXTURE" make "$T/b.h5" 30000 3000
SPEC="code:$T/a.h5@0.7, general:$T/b.h5:train@0.3"
layout() { # NAME PP DP MICRO
  mkdir -p "$T/$1" && (cd "$T/$1" && run $MPIEXEC --oversubscribe -n $(($2 * $3)) "$LP_MIXTURE" layout "$SPEC" $2 $3 12 1000 $4) \
    || fail "layout $1"
}
layout l11 1 1 12; layout l21 2 1 5; layout l12 1 2 4
sort -n -k1,1 -k2,2 "$T/l11/rank0.txt" > "$T/l11.txt"
for r in 0 1; do sort -n -k1,1 -k2,2 "$T/l21/rank$r.txt" | cmp -s - "$T/l11.txt" || fail "(2,1) stage $r differs from (1,1)"; done
cat "$T/l12/rank0.txt" "$T/l12/rank1.txt" | sort -n -k1,1 -k2,2 | cmp -s - "$T/l11.txt" || fail "(1,2) differs from (1,1)"
python3 - "$T/l11.txt" <<'PY' || fail "mixture contents"
import sys
T, G, steps = 8, 12, 1000
W = [(20000 - 1) // T, (3000 - 1) // T]     # windows of each corpus
off = [0, 30000]
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
assert len(rows) == steps * G, len(rows)
per_batch = {}
seqs = [dict(), dict()]                      # cursor -> window, per source
for k, j, s, c, *tok in rows:
    src = 1 if tok[0] >= 30000 else 0        # the tokens say which corpus ...
    assert src == s, ("source_of disagrees with the tokens", k, j, s, tok[0])
    assert all(b - a == 1 for a, b in zip(tok, tok[1:])), ("not a window", k, j, tok)
    assert (tok[0] - off[s]) % T == 0, ("not a window start", k, j, tok[0])
    w = (tok[0] - off[s]) // T               # ... and which window
    assert w < W[s], (k, j, w)
    assert c not in seqs[s], ("cursor used twice", s, c)
    seqs[s][c] = w
    per_batch[k] = per_batch.get(k, 0) + s
nb = sum(len(x) for x in seqs)
share = [len(seqs[0]) / nb, len(seqs[1]) / nb]
print("realised shares over %d batches: %.4f / %.4f" % (steps, share[0], share[1]))
assert abs(share[0] - 0.7) <= 0.01 and abs(share[1] - 0.3) <= 0.01, share
assert all(v in (3, 4) for v in per_batch.values()), sorted(set(per_batch.values()))
for s in (0, 1):
    n = len(seqs[s])
    assert sorted(seqs[s]) == list(range(n)), "cursors of source %d are not 0..n-1" % s
    epochs = n // W[s]
    assert epochs >= (3 if s == 0 else 9), (s, n, W[s])
    orders = [[seqs[s][e * W[s] + i] for i in range(W[s])] for e in range(epochs)]
    for e, o in enumerate(orders):
        assert sorted(o) == list(range(W[s])), ("epoch %d of source %d is not a permutation" % (e, s))
    assert orders[0] != orders[1], "epochs repeat the same order"
    rest = [seqs[s][c] for c in range(epochs * W[s], n)]
    assert len(set(rest)) == len(rest), "a window repeats inside the last partial epoch"
PY
# A malformed entry is refused naming it.
expect_fail 1 "\[data\] train: source 'b:.*/b.h5': weight .x. is not a number >= 0" \
  "$LP_MIXTURE" layout "a:$T/a.h5@0.5, b:$T/b.h5@x" 1 1 12 1 12
echo PASS
