# rel_resume_dp.sh - resume on another rank count (issue 10): a checkpoint written by 2
# data-parallel replicas resumes on 1 (and one from 1 on 2); the global batch is the run's, so
# microbatches are adapted and the losses continue as in the straight run (within DP rounding); a
# global batch the new layout cannot divide is refused with the rule.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
set_common="optim.schedule=constant batch.micro_batch=2 batch.microbatches=2"
tr() { local np=$1; shift; $MPI -n $np "$LLAMAPRO" train --config "$T/run.ini" $set_common "$@" > /dev/null 2>> "$T/train.log" || fail "train $*: $(tail -3 "$T/train.log")"; }
tr 2 run.dir="$T/straight" batch.steps=4
tr 2 run.dir="$T/a" batch.steps=2
tr 1 run.dir="$T/a" batch.steps=4
grep -q "global batch of 8 sequences (written by 2 data-parallel replicas); on 1 replicas \[batch\] microbatches 2 -> 4" "$T/train.log" \
  || fail "no line about the adapted microbatches: $(cat "$T/train.log")"
tr 1 run.dir="$T/b" batch.steps=2 batch.microbatches=4
tr 2 run.dir="$T/b" batch.steps=4 batch.microbatches=4
"$PY" - "$T/straight/metrics.jsonl" "$T/a/metrics.jsonl" "$T/b/metrics.jsonl" <<'PY' || fail "losses differ"
import json, sys
def losses(p): return [(r["step"], r["loss"]) for r in map(json.loads, open(p)) if "grad_norm" in r]
ref = losses(sys.argv[1])
assert [s for s, _ in ref] == [1, 2, 3, 4], ref
for p in sys.argv[2:]:
    got = losses(p)
    assert [s for s, _ in got] == [1, 2, 3, 4], (p, got)
    for (s, a), (_, b) in zip(ref, got):
        assert abs(a - b) <= 1e-5 * abs(a), (p, s, a, b)
PY
# global batch 4 (micro_batch 2 x 2 microbatches x 1 replica) on 2 replicas with micro_batch 4: no
tr 1 run.dir="$T/c" batch.steps=2
expect_fail 1 "cannot resume .*step-2.h5 on 2 data-parallel replicas: its global batch of 4 sequences .* not a multiple of micro_batch 4 x 2 replicas" \
  $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" $set_common run.dir="$T/c" batch.steps=4 batch.micro_batch=4
echo "rel_resume_dp: ok"
