# paper_dry_run.sh - the jobs' DRY_RUN=1. The paper's job (jobs/llama-pro-paper.slurm) without its
# site inputs: exit 1, every missing site file listed, then the dry run of training lists the files
# the job would have made, and checks the #SBATCH allocation's layout (512 ranks) with no layout or
# memory problem; with part of the site present only the rest is listed. The main job with DRY_RUN=1
# makes its inputs (small corpora here), trains nothing and passes.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
export LLAMAPRO_BUILD_DIR=${LLAMAPRO%/*}
unset SLURM_JOB_ID SLURM_SUBMIT_DIR SLURM_NTASKS SLURM_CPUS_PER_TASK SLURM_RESTART_COUNT SLURM_MEM_PER_NODE
cd "$T"
DRY_RUN=1 LP_SITE=$T/site bash "$LP_SOURCE_DIR/jobs/llama-pro-paper.slurm" run.dir="$T/paper" > "$T/p.log" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "paper dry run: exit $rc, expected 1: $(tail -5 "$T/p.log")"
[ "$(grep -c 'missing site input' "$T/p.log")" = 7 ] || fail "missing site inputs: $(grep missing "$T/p.log")"
grep -q "missing site input: $T/site/proof-pile-2/arxiv/train/\*.jsonl.zst (the arxiv corpus)" "$T/p.log" || fail "arxiv not named"
grep -q "dry run: \[model\] path $T/paper/expanded.h5: not found" "$T/p.log" || fail "model: $(cat "$T/p.log")"
grep -q "dry run: layout 512 ranks = pp 1 x dp 512 .*global batch 1024 sequences x 4096 tokens" "$T/p.log" \
  || fail "layout line: $(grep layout "$T/p.log")"
grep -q "dry run: 7 problem(s); nothing was trained" "$T/p.log" || fail "problems: $(grep 'dry run' "$T/p.log")"
! grep -q "pp = .* does not divide\|dry run: memory" "$T/p.log" || fail "layout or memory problem for the #SBATCH allocation"
[ ! -e "$T/paper/final.h5" ] && [ ! -e "$T/paper/llama2-7b.h5" ] || fail "the dry run made files"
mkdir -p "$T/site/Llama-2-7b-hf" "$T/site/stack-python"
touch "$T/site/Llama-2-7b-hf/"{config.json,tokenizer.model,model.safetensors.index.json} "$T/site/stack-python/a.jsonl.zst"
DRY_RUN=1 LP_SITE=$T/site bash "$LP_SOURCE_DIR/jobs/llama-pro-paper.slurm" run.dir="$T/paper" > "$T/p2.log" 2>&1
[ "$(grep -c 'missing site input' "$T/p2.log")" = 3 ] || fail "partial site: $(grep missing "$T/p2.log")"
# the main job: inputs made, training checked, nothing trained
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" | head -n 30 > "$T/general.jsonl"
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/python-stdlib.jsonl.gz" | head -n 30 > "$T/code.jsonl"
DRY_RUN=1 LP_CODE_SRC=$T/code.jsonl LP_GENERAL_SRC=$T/general.jsonl bash "$LP_SOURCE_DIR/jobs/llama-pro-code.slurm" \
  run.dir="$T/main" > "$T/m.log" 2>&1 || fail "main job dry run: $(tail -20 "$T/m.log")"
grep -q "dry run: train source general: .*share 0.0500" "$T/m.log" || fail "main job: no replay: $(grep 'dry run' "$T/m.log")"
grep -q "dry run: no problems found; nothing was trained" "$T/m.log" || fail "main job: $(tail -5 "$T/m.log")"
[ -e "$T/main/corpus-code.h5" ] && [ ! -e "$T/main/final.h5" ] && [ ! -e "$T/main/eval/base-code.txt" ] || fail "main job dry run steps"
echo PASS
