# sampler_layouts.sh - training batches do not depend on the rank layout: (pp,dp) = (1,1), (2,1)
# and (1,2) fetch the same sequences for each (step, position), whatever the microbatch size;
# and each sequence is the corpus tokens of a window [w*T, w*T+T], checked against h5dump.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" | head -n 20 > "$T/b20.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/c.h5" "$T/b20.jsonl"
layout() { # NAME PP DP MICRO
  mkdir -p "$T/$1" && (cd "$T/$1" && run $MPIEXEC --oversubscribe -n $(($2 * $3)) "$LP_SAMPLER_LAYOUT" "$T/c.h5" $2 $3 12 40 $4) || fail "layout $1"
}
layout l11 1 1 12; layout l21 2 1 5; layout l12 1 2 4
sort -n -k1,1 -k2,2 "$T/l11/rank0.txt" > "$T/l11.txt"
[ "$(wc -l < "$T/l11.txt")" = 480 ] || fail "expected 40 steps x 12 sequences"
for r in 0 1; do sort -n -k1,1 -k2,2 "$T/l21/rank$r.txt" | cmp - "$T/l11.txt" || fail "(2,1) stage $r differs from (1,1)"; done
cat "$T/l12/rank0.txt" "$T/l12/rank1.txt" | sort -n -k1,1 -k2,2 | cmp - "$T/l11.txt" || fail "(1,2) differs from (1,1)"
# Independent check of the contents: every sequence is some window of the corpus.
h5dump -d /splits/train/tokens -y -w 1 -o "$T/tok.raw" "$T/c.h5" > /dev/null
tr -d ' ,' < "$T/tok.raw" | grep . > "$T/tok.txt"
awk 'NR == FNR { t[NR - 1] = $1; n = NR; next }
     { seq = ""; for (i = 3; i <= NF; i++) seq = seq " " $i; found = 0
       for (w = 0; (w + 1) * 32 < n && !found; w++) { s = ""; for (i = 0; i <= 32; i++) s = s " " t[w * 32 + i]; if (s == seq) found = 1 }
       if (!found) { print "not a window: step " $1 " seq " $2; exit 1 } }' "$T/tok.txt" <(head -n 24 "$T/l11.txt") || fail "sequence is not a corpus window"
# Within the first epoch no window repeats.
W=$(( ($(wc -l < "$T/tok.txt") - 1) / 32 ))
[ "$W" -gt 480 ] || fail "corpus too small for the epoch check ($W windows)"
[ "$(cut -d' ' -f3- "$T/l11.txt" | sort | uniq -d | wc -l)" = 0 ] || fail "a window repeats within an epoch"
echo PASS
