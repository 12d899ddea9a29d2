#!/bin/bash
# compare.sh - the README's Performance table in one run: llamapro bench (fp32, bf16) and the PyTorch
# peer (fp32, bf16 autocast) on the bench configuration, back to back, ROUNDS times (default 3), then
# the median and range of each. Needs a built llamapro ($LLAMAPRO or build/llamapro) and, for the
# peer, /usr/bin/python3 with python3-torch. Never run by the test suite (it takes minutes).
#   bash bench/compare.sh [ROUNDS] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3} threads=${2:-2}
bin=${LLAMAPRO:-$here/build/llamapro}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=$threads
have_torch=0
/usr/bin/python3 -c "import torch" 2>/dev/null && have_torch=1
for r in $(seq "$rounds"); do
  for p in fp32 bf16; do
    "$bin" bench --config "$here/inputs/configs/bench.ini" --expand 2 --steps 5 run.precision=$p --json "$out/lp-$p-$r.json" \
      > "$out/lp-$p-$r.log"
    tail -1 "$out/lp-$p-$r.log" | sed "s/^/round $r llamapro $p: /"
  done
  if [ $have_torch = 1 ]; then
    /usr/bin/python3 "$here/bench/pytorch_peer.py" --threads "$threads" --steps 5 | tee "$out/pt-$r.log" | sed "s/^/round $r /"
  fi
done
grep -h "precision\|ISA" "$out"/lp-bf16-1.log || true
/usr/bin/python3 - "$out" "$rounds" "$have_torch" <<'PY'
import json, re, statistics, sys, glob
out, rounds, torch = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
rows = {}
for p in ("fp32", "bf16"):
    rows["llamapro " + p] = [json.load(open(f"{out}/lp-{p}-{r}.json"))["tokens_per_s"] for r in range(1, rounds + 1)]
if torch:
    for label, key in (("PyTorch fp32", "fp32:"), ("PyTorch bf16 autocast", "bf16 autocast:")):
        v = []
        for r in range(1, rounds + 1):
            for line in open(f"{out}/pt-{r}.log"):
                if key in line:
                    v.append(float(re.search(r": (\d+) tokens/s", line).group(1)))
        rows[label] = v
med = {k: statistics.median(v) for k, v in rows.items()}
print("| run | tokens/s (median of %d rounds) | range |" % rounds)
print("|---|---|---|")
for k in ("PyTorch fp32", "PyTorch bf16 autocast", "llamapro fp32", "llamapro bf16"):
    if k in rows:
        print(f"| {k} | {med[k]:.0f} | {min(rows[k]):.0f} - {max(rows[k]):.0f} |")
if torch:
    print(f"llamapro bf16 / PyTorch bf16 autocast = {med['llamapro bf16'] / med['PyTorch bf16 autocast']:.2f}; "
          f"llamapro fp32 / PyTorch fp32 = {med['llamapro fp32'] / med['PyTorch fp32']:.2f}")
PY
