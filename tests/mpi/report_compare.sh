# report_compare.sh - jobs/report.sh RUN --compare OTHER --label bf16,fp32 (issue 12's quality line:
# the bf16 run's general and code val losses against the fp32 run's, both runs' loss curves in one
# figure), on two small runs of the same config in precision bf16 and fp32: compare.png is a
# complete PNG linked from the report, and each val set's line carries the relative difference of
# the final val losses, checked here against the runs' metrics.jsonl. Then the report on a full
# disk: exit 1, one line, the previous report and plots untouched, no temporary files left.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
command -v gnuplot > /dev/null || fail "gnuplot missing (slurm/env.sh installs gnuplot-nox)"
grep -q avx512f /proc/cpuinfo || { echo "SKIPPED: precision bf16 needs an AVX-512 CPU for oneDNN's bf16 matmul"; exit 77; }
R="$LP_SOURCE_DIR/jobs/report.sh"
lp_tiny_ini "$T/run.ini" 64 "[data]" "val = general:$T/corpus.h5:val, code:$T/corpus.h5:val" "[batch]" "steps = 6" \
  "[run]" "eval_every = 3"
lp_tiny_setup "$T/run.ini" 40 0.2
run "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/bf16" run.precision=bf16 2> /dev/null
run "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/fp32" 2> /dev/null
run bash "$R" "$T/bf16" --compare "$T/fp32" --label bf16,fp32 > /dev/null
M="$T/bf16/report.md"
[ "$(tail -c 8 "$T/bf16/compare.png" | head -c 4)" = IEND ] || fail "compare.png missing or incomplete"
grep -q '!\[loss of the runs compared\](compare.png)' "$M" || fail "the report does not show compare.png"
grep -q '^| bf16 | one corpus |' "$M" && grep -q '^| fp32 | one corpus |' "$M" || fail "no labelled rows: $(grep -A4 'Runs compared' "$M")"
for n in general code; do
  want=$(python3 - "$T/bf16/metrics.jsonl" "$T/fp32/metrics.jsonl" "$n" <<'PY'
import json, sys
def final(p, n):
    return [r for r in map(json.loads, open(p)) if r.get("eval") == n][-1]["loss"]
a, b = final(sys.argv[1], sys.argv[3]), final(sys.argv[2], sys.argv[3])
rel = 100 * (a - b) / b
print(f"{a:.4f}, fp32 {b:.4f}: relative difference {rel:+.2f}% ({'within' if abs(rel) <= 1 else 'NOT within'} 1%)")
PY
)
  grep -qF -- "- $n final val loss: bf16 $want" "$M" || fail "$n line: want '$want', report: $(grep 'final val loss' "$M")"
done
expect_fail 1 "--label: 3 label\(s\) for 2 run\(s\)" bash "$R" "$T/bf16" --compare "$T/fp32" --label a,b,c

# a full disk: needs root for a small tmpfs
if [ "$(id -u)" = 0 ] && mkdir -p "$T/mnt" && mount -t tmpfs -o size=2m tmpfs "$T/mnt" 2>/dev/null; then
  trap 'umount -l "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
  mkdir "$T/mnt/run"; cp "$T/fp32/metrics.jsonl" "$T/mnt/run/"
  run bash "$R" "$T/mnt/run" > /dev/null
  cp "$T/mnt/run/report.md" "$T/report.before"; cp "$T/mnt/run/loss.png" "$T/loss.before"
  dd if=/dev/zero of="$T/mnt/fill" bs=4k 2> /dev/null
  expect_fail 1 "report.sh: $T/mnt/run: no space left on its filesystem" bash "$R" "$T/mnt/run"
  cmp -s "$T/report.before" "$T/mnt/run/report.md" && cmp -s "$T/loss.before" "$T/mnt/run/loss.png" ||
    fail "the failed report changed report.md or loss.png"
  ! ls -d "$T/mnt/run"/.report.* > /dev/null 2>&1 || fail "temporary files left: $(ls -a "$T/mnt/run")"
else
  echo "note: full-disk case not run (needs root and a tmpfs)"
fi
echo "report_compare: passed"
