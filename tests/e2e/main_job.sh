#!/usr/bin/env bash
# main_job.sh - `sbatch jobs/llama-pro-code.slurm` at smoke size on the local Slurm cluster: the job
# completes, the report has base and final losses of both domains, tokens/s, MFU and PNG plots,
# nothing half-written is left, and the Hugging Face export imports back to the final model's logits.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
lp_cluster_start
lp_tiny_base "$T/base.h5"
lp_smoke_config "$T/smoke.ini" "$T/run"
t0=$(date +%s)
job=$(LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini lp_submit --output="$T/%x-%j.out" jobs/llama-pro-code.slurm)
state=$(lp_wait "$job" 240)
out="$T/llama-pro-code-$job.out"
[ "$state" = COMPLETED ] || fail "job $job ended $state; log: $(tail -20 "$out")"
echo "job $job COMPLETED in $(( $(date +%s) - t0 )) s"
R=$T/run
grep -q "SLURM_RESTART_COUNT=0" "$out" || fail "restart count not logged"
grep -q "srun --mpi=pmix -n 2 -c 1" "$R/log/train.log" || fail "training was not started with srun -c: $(head -1 "$R/log/train.log")"
grep -q "Report: $R/report.md" "$out" || fail "the log does not say where the report is"
for f in expanded.h5 corpus-code.h5 corpus-general.h5 final.h5 report.md loss.png tokens_per_s.png \
         eval/base-general.txt eval/base-code.txt eval/final-general.txt eval/final-code.txt; do
  [ -s "$R/$f" ] || fail "missing $R/$f"
done
left=$(find "$R" -name '*.partial' -o -name '*.tmp' -o -name '.report.*')
[ -z "$left" ] || fail "half-written files left: $left"
for p in loss tokens_per_s; do
  [ "$(head -c 8 "$R/$p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$p.png is not a PNG"
done
python3 - "$R" <<'PY' || fail "report content: $(cat "$R/report.md")"
import re, sys
run = sys.argv[1]
rep = open(f"{run}/report.md").read()
rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^\| (general|code)[^|]*\| ([0-9.]+) \| ([0-9.]+) \|", rep, re.M)}
assert set(rows) == {"general", "code"}, rows
def loss(p): return float(open(f"{run}/eval/{p}.txt").read().split()[1])
assert rows["code"] == (round(loss("base-code"), 4), round(loss("final-code"), 4)), rows
assert loss("final-code") < loss("base-code"), "training on code did not lower the code loss"
for word in ("tokens/s: median", "MFU", "checkpoints:", "wall time:", "partition", "![loss over steps](loss.png)"):
    assert word in rep, word
PY
grep -q "## Hugging Face export" "$R/report.md" && grep -q "$R/hf" "$R/report.md" || fail "the report does not name $R/hf"
[ -f "$R/hf/config.json" ] || fail "no $R/hf/config.json"
ls "$R/hf"/*.safetensors >/dev/null 2>&1 || fail "no safetensors in $R/hf"
run "$LLAMAPRO" import --from hf "$R/hf" --out "$T/back.h5" 2>/dev/null
# same logits: the same loss on the same tokens, and the same greedy continuation
for m in final back; do
  f=$R/final.h5; [ $m = back ] && f=$T/back.h5
  "$LLAMAPRO" eval --model "$f" --corpus "$R/corpus-code.h5:val" --max-tokens 2000 --seq-len 32 > "$T/eval-$m.txt"
  "$LLAMAPRO" generate --model "$f" --prompt-ids 1,450,338 --tokens 12 --temperature 0 --print-ids > "$T/gen-$m.txt"
done
cmp -s "$T/eval-final.txt" "$T/eval-back.txt" || fail "imported export evaluates differently: $(cat "$T"/eval-*.txt)"
cmp -s "$T/gen-final.txt" "$T/gen-back.txt" || fail "imported export generates differently"
echo "export: $R/hf imports back to the final model's logits"
echo "main_job: passed"
