#!/usr/bin/env bash
# math_job.sh - `sbatch jobs/llama-pro-math.slurm` at smoke size: synthetic arithmetic corpus,
# training, and a report with the general and math losses and the arithmetic accuracy of base and final.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
lp_cluster_start
lp_tiny_base "$T/base.h5"
lp_smoke_config "$T/smoke.ini" "$T/run"
job=$(LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini LP_MATH_DOCS=2000 lp_submit --output="$T/%x-%j.out" jobs/llama-pro-math.slurm)
state=$(lp_wait "$job" 240)
out="$T/llama-pro-math-$job.out"
[ "$state" = COMPLETED ] || fail "job $job ended $state; log: $(tail -20 "$out")"
R=$T/run
"$LLAMAPRO" info "$R/corpus-math.h5" | grep -q '/splits/test/tokens' || fail "no test split in the math corpus"
grep -q '| math (domain) |' "$R/report.md" || fail "no math row: $(cat "$R/report.md")"
grep -q '| general |' "$R/report.md" || fail "no general row"
grep -q 'Arithmetic accuracy (`llamapro eval --task arithmetic`): base: .*; final: ' "$R/report.md" || fail "no accuracy in the report"
for m in base final; do
  [ -s "$R/eval/$m-arithmetic.txt" ] || fail "no $R/eval/$m-arithmetic.txt"
done
[ -s "$R/loss.png" ] || fail "no loss plot"
echo "math_job: passed"
