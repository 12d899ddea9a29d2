# train_nonfinite.sh - the non-finite policy (train --help): a NaN or Inf in an input weight is
# named (tensor and file) before any step; a diverging run (lr = 1e9) stops at the first step whose
# loss or gradient norm is not finite, before its update, on every rank alike: exit 1 with the step
# and "lower [optim] lr", no final model, no checkpoint of that step, `latest` still naming the last
# good checkpoint (which holds only finite numbers and verifies); [optim] eps = 0 refused with its
# valid range (train and bench).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
: "${LP_POISON:?run through ctest}"
{ lp_tiny_model "$T/exp.h5"; cat <<INI
[method]
name = full
[data]
train = $T/corpus.h5
seq_len = 32
[batch]
micro_batch = 2
microbatches = 2
steps = 4
[optim]
lr = 1e-3
warmup_steps = 0
schedule = constant
[run]
dir = $T/run
ckpt_every = 1
keep_last = 10
INI
} > "$T/run.ini"
lp_tiny_setup "$T/run.ini" 40 0.2
nothing_written() { # DIR: no final model, no checkpoint
  [ ! -e "$1/final.h5" ] || fail "$1/final.h5 written"
  [ -z "$(ls "$1/ckpt" 2>/dev/null | grep -v '^latest')" ] || fail "checkpoints written in $1: $(ls "$1/ckpt")"
}

# 1. a NaN in a (frozen, for llama-pro) input weight, an Inf in another: named, nothing written
cp "$T/exp.h5" "$T/nan.h5" && run "$LP_POISON" "$T/nan.h5" /weights/layers/003/wq 5 nan
expect_fail 1 "^llamapro: layers\.3\.wq contains NaN in the input model $T/nan\.h5" \
  "$LLAMAPRO" train --config "$T/run.ini" method.name=llama-pro model.path="$T/nan.h5" run.dir="$T/nan"
nothing_written "$T/nan"
cp "$T/exp.h5" "$T/inf.h5" && run "$LP_POISON" "$T/inf.h5" /weights/output 77 inf
err=$("$MPIEXEC" -n 2 "$LLAMAPRO" train --config "$T/run.ini" model.path="$T/inf.h5" parallel.pp=2 run.dir="$T/inf" 2>&1 >/dev/null)
[ $? = 1 ] || fail "Inf weight on 2 stages: expected exit 1: $err"
[ "$(grep -c 'contains' <<< "$err")" = 1 ] || fail "expected one message from rank 0: $err"
grep -q "^llamapro: output contains Inf in the input model $T/inf\.h5" <<< "$err" || fail "Inf weight message: $err"
nothing_written "$T/inf"

# 2. divergence: step 1 (lr 1e9) is finite and checkpointed; step 2's loss is NaN -> stop before
#    its update, on 1 rank and on 2 stages alike
for np in 1 2; do
  dir="$T/div$np"
  err=$("$MPIEXEC" -n $np "$LLAMAPRO" train --config "$T/run.ini" optim.lr=1e9 parallel.pp=$np run.dir="$dir" 2>&1 >/dev/null)
  [ $? = 1 ] || fail "diverging run on $np ranks: expected exit 1: $err"
  [ "$(grep -c '^llamapro: ' <<< "$err")" = 1 ] || fail "expected one message: $err"
  grep -Eq '^llamapro: step 2: loss -?nan, gradient norm -?nan: training diverged .*stopped before the update.*lower \[optim\] lr \(now 1e\+09\)' \
    <<< "$err" || fail "divergence message ($np ranks): $err"
  [ ! -e "$dir/final.h5" ] || fail "final.h5 written by a diverged run"
  [ "$(cat "$dir/ckpt/latest")" = step-1.h5 ] || fail "latest: $(cat "$dir/ckpt/latest")"
  [ "$(ls "$dir/ckpt" | grep -c '^step-')" = 1 ] || fail "checkpoints: $(ls "$dir/ckpt")"
  [ "$(grep -c '"grad_norm"' "$dir/metrics.jsonl")" = 1 ] || fail "metrics of the diverged step written"
  run "$LLAMAPRO" info --verify "$dir/ckpt/step-1.h5" > /dev/null
  h5dump -d /weights/layers/002/wo "$dir/ckpt/step-1.h5" > "$T/w.txt" || fail "h5dump"
  ! grep -Eqi '(nan|inf)' "$T/w.txt" || fail "non-finite weights in the last good checkpoint"
done

# 3. settings that make the update undefined, with their valid range
expect_fail 1 "\[optim\] eps must be > 0 \(got 0\)" "$LLAMAPRO" train --config "$T/run.ini" optim.eps=0 run.dir="$T/e"
nothing_written "$T/e"
expect_fail 1 "\[optim\] eps must be > 0 \(got 0\)" "$LLAMAPRO" bench --config "$T/run.ini" optim.eps=0 --steps 1
echo "train_nonfinite: passed"
