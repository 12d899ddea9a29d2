# dry_run.sh - `llamapro train --dry-run` lists every problem of a run in one go, exit 1: a missing
# corpus (a mixture source), a vocabulary mismatch (a val corpus of the 32000-token Llama 2
# tokenizer against the 4096-token model), [parallel] pp = 3 on 2 ranks, and a layout that does
# not fit a node's memory (1000 sequences per microbatch: 0.5 GB of logits alone); nothing is
# trained. It passes (exit 0) on the main job's config (inputs/configs/llama-pro-code.ini) once its
# inputs exist (expand + prepare, on small corpora here), with replay on.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
lp_tiny_ini "$T/run.ini" 64 "[run]" "dir = $T/run1"
lp_tiny_setup "$T/run.ini" 30 0.2
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" | head -n 10 > "$T/few.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$LP_FIXTURES/llama2-tokenizer/tokenizer.model" --val-fraction 0.5 \
  --out "$T/llama2.h5" "$T/few.jsonl"
$MPIEXEC -n 2 "$LLAMAPRO" train --config "$T/run.ini" --dry-run --node-mem-gb 0.5 parallel.pp=3 batch.micro_batch=1000 \
  "data.train=brown:$T/corpus.h5@0.9, code:$T/missing.h5@0.1" "data.val=general:$T/corpus.h5:val, llama:$T/llama2.h5:val" \
  > "$T/out" 2> "$T/err"
rc=$?
[ "$rc" = 1 ] || fail "dry run with problems: exit $rc, expected 1: $(cat "$T/err")"
grep -q "dry run: \[data\] train $T/missing.h5: not found" "$T/err" || fail "missing corpus not reported: $(cat "$T/err")"
grep -q "dry run: \[data\] val $T/llama2.h5: vocabulary of 32000 tokens but the model's has 4096" "$T/err" \
  || fail "vocabulary mismatch not reported: $(cat "$T/err")"
grep -q "dry run: \[parallel\] pp = 3 does not divide the 2 MPI ranks" "$T/err" || fail "pp not reported: $(cat "$T/err")"
grep -q "dry run: memory: .* exceeds the node's 0.5 GB" "$T/err" || fail "memory not reported: $(cat "$T/err")"
grep -q "dry run: 5 problem(s); nothing was trained" "$T/err" || fail "problem count: $(cat "$T/err")"
[ ! -e "$T/run1" ] || fail "a dry run created the run directory"
# the same run without the mistakes passes, memory limit included
run $MPIEXEC -n 2 "$LLAMAPRO" train --config "$T/run.ini" --dry-run --node-mem-gb 0.5 > "$T/out" 2> "$T/err"
grep -q "no problems found" "$T/out" || fail "clean dry run: $(cat "$T/out" "$T/err")"
# the main job's config, on the job's files made small
R=$T/main
mkdir -p "$R"
run "$LLAMAPRO" expand --in "$LP_SOURCE_DIR/inputs/base/base.h5" --out "$R/expanded.h5" --blocks 2 2> /dev/null
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/python-stdlib.jsonl.gz" | head -n 20 > "$R/code.jsonl"
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" | head -n 20 > "$R/general.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$LP_SOURCE_DIR/inputs/base/base.h5" --out "$R/corpus-code.h5" "$R/code.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$LP_SOURCE_DIR/inputs/base/base.h5" --out "$R/corpus-general.h5" "$R/general.jsonl"
run $MPIEXEC -n 2 "$LLAMAPRO" train --config "$LP_SOURCE_DIR/inputs/configs/llama-pro-code.ini" --dry-run \
  model.path="$R/expanded.h5" data.train="code:$R/corpus-code.h5@1" data.replay="general:$R/corpus-general.h5@0.05" \
  data.val="general:$R/corpus-general.h5:val, code:$R/corpus-code.h5:val" run.dir="$R/run" > "$T/out" 2> "$T/err"
grep -q "train source general: .* share 0.0500" "$T/out" || fail "main config: no replay source: $(cat "$T/out")"
grep -q "no problems found" "$T/out" || fail "main config: $(cat "$T/out" "$T/err")"
echo PASS
