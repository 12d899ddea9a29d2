# prepare_synthetic.sh - the synthetic arithmetic corpus: every document is a correct problem in
# the documented format (checked by decoding with spm_decode and recomputing with bash), the test
# split is held out, the corpus depends on the seed only (not on the rank count).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
SYN=(prepare --quiet --synthetic arithmetic --docs 3000 --tokenizer "$TOK" --val-fraction 0.1 --test-fraction 0.1)
run "$LLAMAPRO" "${SYN[@]}" --seed 5 --out "$T/s1.h5"
run $MPIEXEC --oversubscribe -n 2 "$LLAMAPRO" "${SYN[@]}" --seed 5 --out "$T/s2.h5"
h5diff "$T/s1.h5" "$T/s2.h5" /splits || fail "synthetic corpus differs between 1 and 2 ranks"
run "$LLAMAPRO" "${SYN[@]}" --seed 6 --out "$T/s3.h5"
cmp -s <(h5dump -d /splits/train/tokens "$T/s1.h5" | tail -n +3) <(h5dump -d /splits/train/tokens "$T/s3.h5" | tail -n +3) &&
  fail "seeds 5 and 6 give the same corpus"
total=0
for s in train val test; do
  # Decode each document: split the token stream at BOS (1) into lines of ids.
  h5dump -d /splits/$s/tokens -y -w 1 -o "$T/$s.raw" "$T/s1.h5" > /dev/null
  tr -d ' ,' < "$T/$s.raw" | grep . | awk 'NR > 1 && $1 == 1 { print line; line = "" } $1 != 1 { line = line (line == "" ? "" : " ") $1 } END { print line }' > "$T/$s.ids"
  spm_decode --model="$TOK" --input_format=id < "$T/$s.ids" > "$T/$s.txt"
  n=$(wc -l < "$T/$s.txt"); total=$((total + n))
  [ "$n" -gt 100 ] || fail "split $s has only $n documents"
  while IFS= read -r line; do
    [[ "$line" =~ ^Q:\ ([0-9]{1,4})([-+*])([0-9]{1,4})=\?\ A:\ (-?[0-9]+)$ ]] || fail "bad format in $s: '$line'"
    a=${BASH_REMATCH[1]} op=${BASH_REMATCH[2]} b=${BASH_REMATCH[3]} r=${BASH_REMATCH[4]}
    [[ ${#a} -gt 1 && $a == 0* || ${#b} -gt 1 && $b == 0* ]] && fail "leading zero: '$line'"
    [ $((10#$a $op 10#$b)) = "$r" ] || fail "wrong answer: '$line'"
  done < "$T/$s.txt"
done
[ "$total" = 3000 ] || fail "expected 3000 documents over the splits, got $total"
# Held out: no problem of the test split appears in train.
sort -u "$T/test.txt" > "$T/test.u"; sort -u "$T/train.txt" > "$T/train.u"
[ -z "$(comm -12 "$T/test.u" "$T/train.u")" ] || fail "test problems leak into train"
# All three operations and all four operand lengths occur.
for op in '+' '-' '*'; do grep -qF "$op" "$T/train.txt" || fail "no '$op' problems"; done
for d in 1 2 3 4; do grep -qE "^Q: [0-9]{$d}[-+*]" "$T/train.txt" || fail "no $d-digit operands"; done
echo PASS
