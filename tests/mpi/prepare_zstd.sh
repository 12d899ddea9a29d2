# prepare_zstd.sh - `prepare` reads .jsonl.zst (libzstd, streaming): the same documents as
# .jsonl.gz give an identical corpus (h5diff of /splits), also with several frames and on 2
# ranks; a truncated .zst and a corrupt one exit 1 with one line naming the file and line; the
# corpus records each input file and its document count (provenance attributes).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
command -v zstd > /dev/null || fail "zstd (Debian package zstd, in slurm/env.sh LP_DEBS) not found"
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" > "$T/docs.jsonl"
gzip -c "$T/docs.jsonl" > "$T/docs.jsonl.gz"
zstd -q -19 "$T/docs.jsonl" -o "$T/docs.jsonl.zst"
# several frames back to back (as pzstd and concatenated shards write them)
head -n 25 "$T/docs.jsonl" | zstd -q -c > "$T/multi.jsonl.zst"
tail -n +26 "$T/docs.jsonl" | zstd -q -c >> "$T/multi.jsonl.zst"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.1 --out "$T/gz.h5" "$T/docs.jsonl.gz"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.1 --out "$T/zst.h5" "$T/docs.jsonl.zst"
run $MPIEXEC -n 2 "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.1 --out "$T/multi.h5" "$T/multi.jsonl.zst"
# small batches: a batch boundary falls inside a zstd frame and inside a decoded buffer
LP_PREPARE_BATCH_BYTES=3000 run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.1 --out "$T/small.h5" "$T/docs.jsonl.zst"
for f in zst multi small; do
  h5diff "$T/gz.h5" "$T/$f.h5" /splits || fail "$f.h5 differs from the corpus of the .jsonl.gz"
done
n=$(h5dump -d /splits/train/doc_offsets -H "$T/gz.h5" | grep -o 'DATASPACE.*' | grep -o '[0-9]\+' | head -1)
[ "$n" -gt 40 ] || fail "too few documents in the reference corpus ($n)"
# provenance: the input files and how many documents each gave
h5dump -a /source_docs "$T/multi.h5" | grep -q '(0): 60' || fail "source_docs: $(h5dump -a /source_docs "$T/multi.h5")"
h5dump -a /sources "$T/multi.h5" | grep -q 'multi.jsonl.zst' || fail "sources: $(h5dump -a /sources "$T/multi.h5")"
h5dump -a /source_name "$T/multi.h5" | grep -q '"multi"' || fail "source_name: $(h5dump -a /source_name "$T/multi.h5")"
run "$LLAMAPRO" prepare --quiet --name brown --tokenizer "$TOK" --out "$T/two.h5" "$T/docs.jsonl.gz" "$T/multi.jsonl.zst"
h5dump -a /source_docs "$T/two.h5" | grep -q '(0): 60, 60' || fail "source_docs of two files: $(h5dump -a /source_docs "$T/two.h5")"
h5dump -a /source_name "$T/two.h5" | grep -q '"brown"' || fail "--name: $(h5dump -a /source_name "$T/two.h5")"
# truncated and corrupt files: exit 1, one line naming the file (and line), no output file
size=$(stat -c %s "$T/docs.jsonl.zst")
head -c $((size / 2)) "$T/docs.jsonl.zst" > "$T/cut.jsonl.zst"
expect_fail 1 "cut\.jsonl\.zst:[0-9]+: cannot read \(truncated zstd data" \
  "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/cut.h5" "$T/cut.jsonl.zst"
[ ! -e "$T/cut.h5" ] && [ ! -e "$T/cut.h5.partial" ] || fail "a truncated input left an output file"
cp "$T/docs.jsonl.zst" "$T/bad.jsonl.zst"
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$T/bad.jsonl.zst" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
expect_fail 1 "bad\.jsonl\.zst:[0-9]+: cannot read \(corrupt zstd data" \
  "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/bad.h5" "$T/bad.jsonl.zst"
echo "not zstd" > "$T/plain.jsonl.zst"
expect_fail 1 "plain\.jsonl\.zst:1: cannot read \(corrupt zstd data" \
  "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/p.h5" "$T/plain.jsonl.zst"
echo PASS
