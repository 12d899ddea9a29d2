# prepare_ranks.sh - `prepare` gives the same corpus on 1, 2 and 3 ranks; its token ids are the
# sentencepiece library's own (spm_encode); gzip input equals plain input; the split of a
# document does not depend on file order; a model file's embedded tokenizer works like the file.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
MPI="$MPIEXEC --oversubscribe -n"
# A subset of Brown keeps this fast: 60 documents, ~700 KB of text.
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" > "$T/brown60.jsonl"
gzip -c "$T/brown60.jsonl" > "$T/brown60.jsonl.gz"
# Small batches, so that batches, rank ranges and chunk boundaries all cut through the data.
export LP_PREPARE_BATCH_BYTES=150000

run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/c1.h5" "$T/brown60.jsonl"
for np in 2 3; do
  run $MPI $np "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/c$np.h5" "$T/brown60.jsonl"
  h5diff "$T/c1.h5" "$T/c$np.h5" /splits || fail "corpus on $np ranks differs from 1 rank"
done
[ ! -e "$T/c1.h5.partial" ] || fail "partial file left behind"
ntrain=$(h5dump -H -d /splits/train/doc_offsets "$T/c1.h5" | grep -o 'SIMPLE { ( [0-9]*' | grep -o '[0-9]*$')
nval=$(h5dump -H -d /splits/val/doc_offsets "$T/c1.h5" | grep -o 'SIMPLE { ( [0-9]*' | grep -o '[0-9]*$')
[ $((ntrain + nval)) = 62 ] || fail "expected 60 documents in train+val, got $((ntrain - 1)) + $((nval - 1))"
[ "$nval" -gt 1 ] || fail "expected some validation documents with the default fraction 0.05"
h5dump -p -H "$T/c1.h5" | grep -q FLETCHER32 || fail "no Fletcher32 filter on the datasets"
h5dump -H -d /splits/train/tokens "$T/c1.h5" | grep -q H5T_STD_U16LE || fail "tokens are not uint16"

# gzip input = plain input (the recorded source names differ, the splits do not).
run $MPI 2 "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/gz.h5" "$T/brown60.jsonl.gz"
h5diff "$T/c1.h5" "$T/gz.h5" /splits || fail "gzip input gives a different corpus"

# Split membership is a function of the text: with the two halves in the other order, each split
# keeps its documents (so the same counts and token totals).
head -n 30 "$T/brown60.jsonl" > "$T/a.jsonl"; tail -n 30 "$T/brown60.jsonl" > "$T/b.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/ba.h5" "$T/b.jsonl" "$T/a.jsonl"
for s in train val; do
  for d in tokens doc_offsets; do
    n1=$(h5dump -H -d /splits/$s/$d "$T/c1.h5" | grep -o 'SIMPLE { ( [0-9]*')
    n2=$(h5dump -H -d /splits/$s/$d "$T/ba.h5" | grep -o 'SIMPLE { ( [0-9]*')
    [ "$n1" = "$n2" ] || fail "split $s/$d changes size with the file order ($n1 vs $n2)"
  done
done

# Ids equal the sentencepiece library's: one-line documents (spm_encode reads a line per input),
# each BOS (1) + spm_encode ids, all in train (--val-fraction 0), in input order.
jq -r .text "$T/brown60.jsonl" | grep -v '^$' | head -n 400 > "$T/lines.txt"
jq -R -c '{text: .}' "$T/lines.txt" > "$T/lines.jsonl"
spm_encode --model="$TOK" --output_format=id < "$T/lines.txt" | sed 's/^/1 /' | tr ' ' '\n' | grep . > "$T/want.txt"
run $MPI 2 "$LLAMAPRO" prepare --quiet --val-fraction 0 --tokenizer "$TOK" --out "$T/lines.h5" "$T/lines.jsonl"
h5dump -d /splits/train/tokens -y -w 1 -o "$T/got.raw" "$T/lines.h5" > /dev/null
tr -d ' ,' < "$T/got.raw" | grep . > "$T/got.txt"
[ "$(wc -l < "$T/want.txt")" -gt 5000 ] || fail "too few reference ids"
cmp "$T/want.txt" "$T/got.txt" || fail "token ids differ from spm_encode"
# The same with the Llama 2 tokenizer (32000 pieces) on a handful of lines.
LL="$LP_FIXTURES/llama2-tokenizer/tokenizer.model"
head -n 20 "$T/lines.txt" > "$T/l20.txt"; jq -R -c '{text: .}' "$T/l20.txt" > "$T/l20.jsonl"
spm_encode --model="$LL" --output_format=id < "$T/l20.txt" | sed 's/^/1 /' | tr ' ' '\n' | grep . > "$T/want20.txt"
run "$LLAMAPRO" prepare --quiet --val-fraction 0 --tokenizer "$LL" --out "$T/l20.h5" "$T/l20.jsonl"
h5dump -d /splits/train/tokens -y -w 1 -o "$T/got20.raw" "$T/l20.h5" > /dev/null
tr -d ' ,' < "$T/got20.raw" | grep . | cmp - "$T/want20.txt" || fail "Llama 2 token ids differ from spm_encode"

# Plain text files: one document each, BOS + the whole file's ids (a one-line file here).
printf '%s' "$(head -n 1 "$T/lines.txt")" > "$T/one.txt"
run "$LLAMAPRO" prepare --quiet --val-fraction 0 --tokenizer "$TOK" --out "$T/one.h5" "$T/one.txt"
h5dump -d /splits/train/tokens -y -w 1 -o "$T/one.raw" "$T/one.h5" > /dev/null
spm_encode --model="$TOK" --output_format=id < "$T/one.txt" | sed 's/^/1 /' | tr ' ' '\n' | grep . > "$T/one.want"
tr -d ' ,' < "$T/one.raw" | grep . | cmp - "$T/one.want" || fail "text-file document differs from spm_encode"

# --tokenizer MODEL.h5: the tokenizer embedded as the uint8 dataset /tokenizer.
size=$(stat -c %s "$TOK")
printf 'PATH tokenizer\nINPUT-CLASS UIN\nINPUT-SIZE 8\nRANK 1\nDIMENSION-SIZES %s\nOUTPUT-CLASS UIN\nOUTPUT-SIZE 8\n' "$size" > "$T/h5import.cfg"
h5import "$TOK" -c "$T/h5import.cfg" -o "$T/model.h5" || fail "h5import failed"
run "$LLAMAPRO" prepare --quiet --tokenizer "$T/model.h5" --out "$T/m.h5" "$T/brown60.jsonl"
h5diff "$T/c1.h5" "$T/m.h5" /splits || fail "embedded tokenizer gives a different corpus"
h5diff -c "$T/c1.h5" "$T/m.h5" / | grep -q tokenizer_checksum && fail "tokenizer checksums differ"
echo PASS
