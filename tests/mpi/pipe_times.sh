# pipe_times.sh - the step's measured time split in metrics.jsonl (pipeline.h): compute, bubble,
# p2p, all-reduce and optimizer seconds, non-negative, adding up to no more than the step's wall
# time and to most of it; the stage arrays (stage_allreduce_s beside stage_opt_s). pp = 2 with
# 1F1B over 2 microbatches has a bubble (the cost model predicts one); dp = 2 reduces gradients
# (all-reduce > 0), pp = 1 x dp = 1 has neither bubble nor messages nor all-reduce of gradients.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
export OMP_NUM_THREADS=1
mpi() { "$MPIEXEC" -q --oversubscribe --bind-to none "$@"; }
lp_tiny_ini "$T/run.ini" 128 "[batch]" "steps = 4" "[data]" "val ="
lp_tiny_setup "$T/run.ini" 200 0.1
for l in "1 1" "2 2" "2 1"; do
  set -- $l
  mpi -n "$1" "$LLAMAPRO" train --config "$T/run.ini" parallel.pp="$2" run.dir="$T/r$1$2" 2> "$T/r$1$2.log" ||
    fail "train on $1 ranks, pp $2: $(tail -3 "$T/r$1$2.log")"
  /usr/bin/python3 - "$T/r$1$2/metrics.jsonl" "$2" "$(( $1 / $2 ))" <<'PY' || fail "ranks $1, pp $2: time split"
import json, sys
pp, dp = int(sys.argv[2]), int(sys.argv[3])
steps = [r for r in map(json.loads, open(sys.argv[1])) if "grad_norm" in r]
assert len(steps) == 4, len(steps)
names = ("compute", "bubble", "p2p", "allreduce", "optim")
for r in steps:
    t = [r[f"time_{k}_s"] for k in names]
    wall = r["tokens"] / r["step"] / r["tokens_per_s"]
    assert all(x >= 0 for x in t), t
    assert len(r["stage_allreduce_s"]) == pp and len(r["stage_opt_s"]) == pp, r
    # the parts are disjoint intervals of one rank's step (wall is the slowest rank's, printed to 0.1 token/s)
    assert sum(t) <= wall * 1.01 + 1e-4, (t, sum(t), wall)
    assert t[0] > 0 and t[4] > 0, t
    if pp == 1:
        assert t[1] == 0, t   # one stage: nothing to wait for
print(f"pp {pp} x dp {dp}: " + ", ".join(
    "%s %.4f" % (k, sorted(r[f"time_{k}_s"] for r in steps)[2]) for k in names) +
    ", step %.4f s (medians)" % sorted(r["tokens"] / r["step"] / r["tokens_per_s"] for r in steps)[2])
last = steps[1:]
med = lambda k: sorted(r[f"time_{k}_s"] for r in last)[len(last) // 2]
if pp == 2:
    assert med("bubble") > 0, "pp 2, 1F1B over 2 microbatches: no bubble measured"
PY
done
echo "pipe_times: passed"
