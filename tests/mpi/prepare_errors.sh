# prepare_errors.sh - bad input exits 1 with one line naming the file (and line) and what was
# expected, and leaves no output file behind, partial or not.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
good='{"text": "A good document."}'
bad_case() { # NAME PATTERN FILE...
  local name=$1 pat=$2; shift 2
  expect_fail 1 "$pat" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/$name.h5" "$@"
  [ ! -e "$T/$name.h5" ] && [ ! -e "$T/$name.h5.partial" ] || fail "$name: output file left behind"
}
printf '%s\n%s\n{"text": "unterminated\n%s\n' "$good" "$good" "$good" > "$T/badjson.jsonl"
bad_case badjson 'badjson.jsonl:3: invalid JSON' "$T/badjson.jsonl"
printf '%s\n{"body": "x"}\n' "$good" > "$T/nokey.jsonl"
bad_case nokey 'nokey.jsonl:2: no string field "text"' "$T/nokey.jsonl"
printf '%s\n{"text": 42}\n' "$good" > "$T/notstr.jsonl"
bad_case notstr 'notstr.jsonl:2: not a string field "text"' "$T/notstr.jsonl"
printf '%s\n\n{"text": "caf\xe9"}\n' "$good" > "$T/latin1.jsonl"
bad_case latin1 'latin1.jsonl:3: invalid UTF-8' "$T/latin1.jsonl"
printf 'line one\nline \xff two\n' > "$T/latin1.txt"
bad_case latin1txt 'latin1.txt:2: invalid UTF-8' "$T/latin1.txt"
: > "$T/empty.jsonl"
bad_case empty 'empty.jsonl: no documents' "$T/empty.jsonl"
printf '\n  \n' > "$T/blank.jsonl"
bad_case blank 'blank.jsonl: no documents' "$T/blank.jsonl"
printf '{"text": ""}\n' > "$T/emptytext.jsonl"
bad_case emptytext 'no documents with text' "$T/emptytext.jsonl"
bad_case missing 'nonexistent.jsonl: cannot open' "$T/nonexistent.jsonl"
printf '%s\n' "$good" > "$T/good.jsonl"
for i in $(seq 2000); do printf '{"text": "document number %d"}\n' $i; done | gzip -c | head -c 3000 > "$T/trunc.jsonl.gz"
bad_case truncated 'trunc.jsonl.gz:[0-9]+: cannot read' "$T/good.jsonl" "$T/trunc.jsonl.gz"
# Other mistakes: flags and the tokenizer.
bad_case nofiles 'no input files'
expect_fail 1 'nonexistent.model: cannot open' "$LLAMAPRO" prepare --tokenizer "$T/nonexistent.model" --out "$T/x.h5" "$T/good.jsonl"
expect_fail 1 'good.jsonl: not a SentencePiece model' "$LLAMAPRO" prepare --tokenizer "$T/good.jsonl" --out "$T/x.h5" "$T/good.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/ok.h5" "$T/good.jsonl"
expect_fail 1 'ok.h5: no /tokenizer dataset' "$LLAMAPRO" prepare --tokenizer "$T/ok.h5" --out "$T/x.h5" "$T/good.jsonl"
expect_fail 1 'val-fraction.*expected a number' "$LLAMAPRO" prepare --val-fraction 1.5 --tokenizer "$TOK" --out "$T/x.h5" "$T/good.jsonl"
expect_fail 1 'nodir/x.h5.partial: cannot create' "$LLAMAPRO" prepare --tokenizer "$TOK" --out "$T/nodir/x.h5" "$T/good.jsonl"
expect_fail 1 'text-key' "$LLAMAPRO" prepare --tokenizer "$TOK" --text-key body --out "$T/x.h5" "$T/good.jsonl"
[ ! -e "$T/x.h5" ] && [ ! -e "$T/x.h5.partial" ] || fail "output file left behind"
# Under MPI the bad line may be on any rank: still exit 1, the first bad line reported, no file.
for i in $(seq 200); do printf '%s\n' "$good"; done > "$T/late.jsonl"
printf '{"text": "ok" \n' >> "$T/late.jsonl"
for i in $(seq 200); do printf '{"text": "doc %d"}\n' $i; done >> "$T/late.jsonl"
printf '{"txt": "x"}\n' >> "$T/late.jsonl"
err=$(LP_PREPARE_BATCH_BYTES=2000 $MPIEXEC --oversubscribe -n 2 "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/mpi.h5" "$T/late.jsonl" 2>&1); rc=$?
[ "$rc" = 1 ] || fail "expected exit 1 under mpiexec, got $rc: $err"
printf '%s' "$err" | grep -q 'late.jsonl:201: invalid JSON' || fail "first bad line not reported: $err"
[ ! -e "$T/mpi.h5" ] && [ ! -e "$T/mpi.h5.partial" ] || fail "mpi: output file left behind"
echo PASS
