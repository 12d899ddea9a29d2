# pipe_bitwise.sh - pipeline parallelism computes the numbers of one stage: the tiny fixture model
# expanded with P = 2 (6 layers, new blocks 2 and 5 trainable), 5 AdamW steps on the same global
# batches: losses, gradient norms and final weights BITWISE equal for pp = 1, 2, 4, both schedules,
# cost-model and explicit partitions, and M < pp; pp = 2 x dp = 2 equal to pp = 1 within 1e-6
# relative; the fixture's 3-step float64 reference reproduced through 2 stages.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
: "${LP_PIPE_CHECK:?run through ctest}"
export OMP_NUM_THREADS=1
pc() { # NAME NP ARGS...  -> $T/NAME.txt, $T/NAME.h5
  local name=$1 np=$2; shift 2
  "$MPIEXEC" --oversubscribe --bind-to none -n "$np" "$LP_PIPE_CHECK" "$@" > "$T/$name.log" 2>&1 || fail "$name: $(tail -5 "$T/$name.log")"
}
same() { # A B: bitwise equal losses, norms and weights
  cmp -s "$T/$1.txt" "$T/$2.txt" || fail "losses of $2 differ from $1: $(paste "$T/$1.txt" "$T/$2.txt")"
  h5diff -q "$T/$1.h5" "$T/$2.h5" /weights /weights || fail "final weights of $2 differ from $1"
}
pc p1 1 steps 1 1f1b 4 5 "$T/p1"
[ "$(wc -l < "$T/p1.txt")" = 5 ] || fail "expected 5 steps"
for case in "p2 2 2 1f1b" "p2g 2 2 gpipe" "p4 4 4 1f1b" "p4g 4 4 gpipe" "p1g 1 1 gpipe"; do
  set -- $case
  pc "$1" "$2" steps "$3" "$4" 4 5 "$T/$1"
  same p1 "$1"
done
pc p2x 2 steps 2 1f1b 4 5 "$T/p2x" 1,5  # an explicit, unbalanced partition
same p1 p2x
grep -q "stage 1: layers 1-5" "$T/p2x.log" || fail "explicit partition not used: $(cat "$T/p2x.log")"
# fewer microbatches than stages: slow, never a hang
pc m1 1 steps 1 1f1b 1 5 "$T/m1"
pc m1p4 4 steps 4 1f1b 1 5 "$T/m1p4"
same m1 m1p4
pc m2p4 4 steps 4 gpipe 2 5 "$T/m2p4"
pc m2 1 steps 1 gpipe 2 5 "$T/m2"
same m2 m2p4
# the frozen stage of a 4-stage split holds no gradient or optimizer memory
grep -Eq "^stage 0 replica 0: layers 0-1 weights [0-9]+ gradients 0 optimizer 0 " "$T/p4.log" || fail "stage 0 of pp = 4: $(grep ^stage "$T/p4.log")"
# data parallel: pp = 2 x dp = 2 (2 microbatches each) = pp = 1 x dp = 1 (4 microbatches)
pc p2d2 4 steps 2 1f1b 2 5 "$T/p2d2"
python3 - "$T/p1.txt" "$T/p2d2.txt" <<'PY' || fail "pp 2 x dp 2 differs from pp 1: $(paste "$T/p1.txt" "$T/p2d2.txt")"
import sys
a = [l.split() for l in open(sys.argv[1])]; b = [l.split() for l in open(sys.argv[2])]
assert len(a) == len(b) == 5
for x, y in zip(a, b):
    for i in (1, 2):
        u, v = float.fromhex(x[i]), float.fromhex(y[i])
        assert abs(u - v) <= 1e-6 * abs(u), (x, y)
PY
h5diff -q -d 1e-6 "$T/p1.h5" "$T/p2d2.h5" /weights /weights || fail "pp 2 x dp 2 weights differ from pp 1 by more than 1e-6 (weights are ~0.02)"
# the fixture's reference run through 2 stages, both schedules
pc ref2 2 reference 2 1f1b
pc ref2g 2 reference 2 gpipe
grep "step 2 loss" "$T/ref2.log"
echo "pipe_bitwise: passed"
