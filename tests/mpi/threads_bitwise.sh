# threads_bitwise.sh - thread-count invariance: the same training run on 1 and on 2 OpenMP threads
# per rank gives bitwise the same losses, gradient norms and final weights, so a checkpoint written
# on nodes with 2 cores resumes bitwise on nodes with 1. Every reduction of our own is blocked
# independently of the thread count (loss sum, RMSNorm weight gradients, gradient norm, softmax
# rows); OpenBLAS's sgemm splits only M and N over threads (README: "Thread-count invariance").
#  1. the fixture (tiny-gqa expanded with P = 2, new blocks trained; pipe_check) on 1 and 2 threads;
#  2. a CLI run large enough that OpenBLAS runs its GEMMs on 2 threads (N = 256 rows, vocab 4096):
#     1 thread vs 2 threads (pp = 1) vs 2 stages x 1 thread (pp = 2), all bitwise;
#  3. its checkpoint of step 4 written on 2 threads, resumed on 1 thread: bitwise the straight run.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
: "${LP_PIPE_CHECK:?run through ctest}"
# 1. the fixture's training run
for t in 1 2; do
  OMP_NUM_THREADS=$t "$LP_PIPE_CHECK" steps 1 1f1b 4 8 "$T/fx$t" > "$T/fx$t.log" 2>&1 || fail "pipe_check on $t threads: $(tail -3 "$T/fx$t.log")"
done
[ "$(wc -l < "$T/fx1.txt")" = 8 ] || fail "fixture run: expected 8 steps"
cmp -s "$T/fx1.txt" "$T/fx2.txt" || fail "fixture run: losses on 1 and 2 threads differ: $(paste "$T/fx1.txt" "$T/fx2.txt")"
h5diff -q "$T/fx1.h5" "$T/fx2.h5" /weights /weights || fail "fixture run: weights on 1 and 2 threads differ"

# 2. the CLI run
mapfile -t model < <(lp_model_ini "$T/exp.h5" 128 352 4 4 2 4096 64)
lp_run_ini "$T/run.ini" "${model[@]}" "[data]" "seq_len = 64" "[batch]" "micro_batch = 4" "steps = 8" \
  "[optim]" "lr = 3e-3" "warmup_steps = 2" "[run]" "ckpt_every = 4" "eval_every = 4"
lp_tiny_setup "$T/run.ini" 60 0.2
train() { # NAME THREADS RANKS ARGS...
  local name=$1 t=$2 np=$3; shift 3
  OMP_NUM_THREADS=$t "$MPIEXEC" --bind-to none -n "$np" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/$name" "$@" \
    2> "$T/$name.log" || fail "$name: $(tail -3 "$T/$name.log")"
}
same() { # A B: every step's loss and gradient norm and every evaluation loss bitwise, same final weights
  python3 - "$T/$1/metrics.jsonl" "$T/$2/metrics.jsonl" <<'PY' || fail "$2 differs from $1"
import json, sys
def rows(p):
    r = [json.loads(l) for l in open(p)]
    return ([(x["step"], x["loss"], x["grad_norm"]) for x in r if "grad_norm" in x],
            [(x["step"], x["eval"], x["loss"]) for x in r if "eval" in x])
(a, ea), (b, eb) = rows(sys.argv[1]), rows(sys.argv[2])
assert [s for s, _, _ in a] == list(range(1, 9)), a
assert a == b, [(x, y) for x, y in zip(a, b) if x != y][:3]
assert len(ea) == 3 and ea == eb, (ea, eb)
PY
  h5diff -q "$T/$1/final.h5" "$T/$2/final.h5" /weights /weights || fail "final weights of $2 differ from $1"
}
train t1 1 1
train t2 2 1
grep -q '1 ranks x 2 threads' "$T/t2.log" || fail "t2 did not run on 2 threads: $(grep ranks "$T/t2.log")"
same t1 t2
train p2 1 2 parallel.pp=2
same t1 p2
# 3. step 4's checkpoint of the 2-thread run, continued on 1 thread
mkdir -p "$T/res/ckpt"
cp "$T/t2/ckpt/step-4.h5" "$T/res/ckpt/" && echo step-4.h5 > "$T/res/ckpt/latest"
cp "$T/t2/metrics.jsonl" "$T/res/metrics.jsonl"
train res 1 1
grep -q 'resuming from .*step-4.h5 at step 4' "$T/res.log" || fail "no resume: $(grep -i resum "$T/res.log")"
same t1 res
echo "threads_bitwise: passed"
