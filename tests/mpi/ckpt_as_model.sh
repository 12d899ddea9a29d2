# ckpt_as_model.sh - a checkpoint written by train (frozen tensors stored as external links to the
# model file) as the [model] path of another run, at pp = 2: it used to hang (ranks of one stage
# followed the links into a file opened with MPI-IO collectively, the other stage did not). Every
# command runs under `timeout`, so a hang fails the test. The checkpoint must give the weights the
# run wrote: the first step's loss from it equals the one from the run's final.h5 (every tensor a
# copy, no links), at pp = 1 and pp = 2; eval (2 replicas, and 2 stages) and export on 2 ranks read
# it too.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
lp_tiny_ini "$T/run.ini" 64 "[data]" "val =" "[batch]" "steps = 2" "[optim]" "lr = 1e-2" \
  "[run]" "eval_every = 0" "ckpt_every = 2"
lp_tiny_setup "$T/run.ini" 40 0.2
run timeout 120 "$LLAMAPRO" train --config "$T/run.ini" 2> "$T/a.log"
CK="$T/run1/ckpt/step-2.h5"
"$LLAMAPRO" info "$CK" | grep -q 'frozen tensors: [1-9][0-9]* external links' || fail "no external links in $CK"
first_loss() { python3 -c 'import json,sys
print(next(json.loads(l)["loss"] for l in open(sys.argv[1]) if "grad_norm" in l))' "$1/metrics.jsonl"; }
train2() { # NAME MODEL PP
  timeout 120 "$MPIEXEC" -n "$3" --oversubscribe "$LLAMAPRO" train --config "$T/run.ini" model.path="$2" \
    parallel.pp="$3" batch.microbatches=2 batch.steps=1 run.ckpt_every=0 run.dir="$T/$1" > /dev/null 2> "$T/$1.log" \
    || fail "train from $2 at pp = $3 (exit $?, 124 = hang): $(tail -3 "$T/$1.log")"
}
train2 plain1 "$T/run1/final.h5" 1
train2 ckpt1 "$CK" 1
train2 ckpt2 "$CK" 2
ref=$(first_loss "$T/plain1")
[ "$(first_loss "$T/ckpt1")" = "$ref" ] || fail "pp 1 from the checkpoint: loss $(first_loss "$T/ckpt1"), from final.h5 $ref"
[ "$(first_loss "$T/ckpt2")" = "$ref" ] || fail "pp 2 from the checkpoint: loss $(first_loss "$T/ckpt2"), from final.h5 $ref"
# the initial weights differ from the trained ones, so the comparison above can fail
[ "$(first_loss "$T/run1")" != "$ref" ] || fail "training changed nothing: the comparison proves nothing"

timeout 120 "$MPIEXEC" -n 2 --oversubscribe "$LLAMAPRO" eval --model "$CK" --corpus "$T/corpus.h5" --max-tokens 2000 \
  > "$T/e_ck.txt" 2> "$T/e.log" || fail "eval on 2 ranks of the checkpoint (exit $?): $(tail -3 "$T/e.log")"
timeout 120 "$LLAMAPRO" eval --model "$T/run1/final.h5" --corpus "$T/corpus.h5" --max-tokens 2000 > "$T/e_fin.txt" 2>&1 \
  || fail "eval of final.h5"
a=$(grep -o 'loss [0-9.]*' "$T/e_ck.txt"); b=$(grep -o 'loss [0-9.]*' "$T/e_fin.txt")
[ -n "$a" ] && [ "$a" = "$b" ] || fail "eval of the checkpoint '$a' differs from final.h5 '$b'"
# eval over 2 pipeline stages: each stage reads its own layers through the links
timeout 120 "$MPIEXEC" -n 2 --oversubscribe "$LLAMAPRO" eval --pp 2 --model "$CK" --corpus "$T/corpus.h5" --max-tokens 2000 \
  > "$T/e_pp.txt" 2> "$T/e.log" || fail "eval --pp 2 of the checkpoint (exit $?, 124 = hang): $(tail -3 "$T/e.log")"
c=$(grep -o 'loss [0-9.]*' "$T/e_pp.txt")
[ "$c" = "$b" ] || fail "eval --pp 2 of the checkpoint '$c' differs from final.h5 '$b'"
timeout 120 "$MPIEXEC" -n 2 --oversubscribe "$LLAMAPRO" export --in "$CK" --to h5 "$T/out.h5" > /dev/null 2> "$T/x.log" \
  || fail "export on 2 ranks of the checkpoint (exit $?): $(tail -3 "$T/x.log")"
h5diff -q "$T/out.h5" "$T/run1/final.h5" /weights /weights || fail "exported checkpoint weights differ from final.h5"
exit 0
