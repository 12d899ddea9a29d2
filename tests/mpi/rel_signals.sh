# rel_signals.sh - stop signals in every command (issue 10): SIGTERM, SIGINT and SIGUSR1 during
# prepare, expand, export (h5 and hf), import and init remove the partial output and exit 128 +
# signal (train: checkpoint, then 75); the same under mpirun on 2 ranks, whose exit code is then
# the ranks' (checked: what the job scripts see). LLAMAPRO_TEST_STALL_OUTPUT (test-only) holds each
# writer for a while right after it created its partial output, so the signal lands mid-write.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
declare -A num=([TERM]=15 [INT]=2 [USR1]=10)
# stop SIG PARTIAL OUT LAUNCHER... -- CMD...: start CMD, wait for PARTIAL, send SIG, check
stop() {
  local sig=$1 partial=$2 out=$3; shift 3
  rm -rf "$partial" "$out"
  LLAMAPRO_TEST_STALL_OUTPUT=120 "$@" > /dev/null 2> "$T/sig.err" &
  local pid=$! i
  for i in $(seq 3000); do [ -e "$partial" ] && grep -q STALL "$T/sig.err" && break; sleep 0.02; done
  [ -e "$partial" ] || fail "$*: no partial output $partial appeared: $(cat "$T/sig.err")"
  kill -"$sig" $pid; wait $pid; local rc=$? want=${WANT:-$((128 + ${num[$sig]}))}
  [ $rc = $want ] || fail "SIG$sig: $*: exit $rc, expected $want: $(cat "$T/sig.err")"
  [ ! -e "$partial" ] || fail "SIG$sig: $*: left $partial"
  [ ! -e "$out" ] || fail "SIG$sig: $*: left $out"
  ! grep -q "internal error\|Segmentation" "$T/sig.err" || fail "SIG$sig: $*: $(cat "$T/sig.err")"
  cases=$((cases + 1))
}
cases=0
for sig in TERM INT USR1; do
  stop $sig "$T/c.h5.partial" "$T/c.h5" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/c.h5" "$T/docs.jsonl"
  stop $sig "$T/e.h5.partial" "$T/e.h5" "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/e.h5" --blocks 2
  stop $sig "$T/x.h5.partial" "$T/x.h5" "$LLAMAPRO" export --in "$T/exp.h5" --to h5 "$T/x.h5"
  stop $sig "$T/hf.partial" "$T/hf" "$LLAMAPRO" export --in "$T/exp.h5" --to hf "$T/hf"
  stop $sig "$T/i.h5.partial" "$T/i.h5" "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/i.h5"
  stop $sig "$T/n.h5.partial" "$T/n.h5" "$LLAMAPRO" init --config "$T/run.ini" --out "$T/n.h5"
done
# under mpirun (2 ranks): Open MPI 4.1's mpirun passes USR1 on to the ranks and returns their code
# (138); on TERM or INT it terminates the ranks itself (SIGTERM to each) and returns 1. The partial
# output is gone either way.
for sig in TERM USR1; do
  [ $sig = TERM ] && WANT=1 || WANT=""
  WANT=$WANT stop $sig "$T/c.h5.partial" "$T/c.h5" $MPI -n 2 "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/c.h5" "$T/docs.jsonl"
  WANT=$WANT stop $sig "$T/hf.partial" "$T/hf" $MPI -n 2 "$LLAMAPRO" export --in "$T/exp.h5" --to hf "$T/hf"
done
# eval writes nothing; a signal ends it with 128 + signal, never an internal error
"$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/corpus.h5:train" --seq-len 16 > /dev/null 2> "$T/sig.err" &
pid=$!; sleep 0.3; kill -TERM $pid; wait $pid; rc=$?
[ $rc = 143 ] || [ $rc = 0 ] || fail "eval: exit $rc after SIGTERM: $(cat "$T/sig.err")"
# train under mpirun: SIGUSR1 (what the job scripts forward) -> checkpoint, every rank exits 75, and
# mpirun returns 75, the code jobs/lib.sh requeues on
$MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" batch.steps=100000 run.ckpt_every=0 > /dev/null 2> "$T/train.err" &
pid=$!
for i in $(seq 1200); do grep -q "^step" "$T/train.err" && break; sleep 0.05; done
kill -USR1 $pid; wait $pid; rc=$?
[ $rc = 75 ] || fail "train under mpirun: exit $rc after SIGUSR1, expected 75: $(tail -3 "$T/train.err")"
"$LLAMAPRO" info --verify "$T/run/ckpt/$(cat "$T/run/ckpt/latest")" > /dev/null || fail "the stop checkpoint does not verify"
# SIGINT to a single-process train: the same clean stop
"$LLAMAPRO" train --config "$T/run.ini" batch.steps=100000 run.ckpt_every=0 > /dev/null 2> "$T/train.err" &
pid=$!
for i in $(seq 1200); do [ "$(grep -c "^step" "$T/train.err")" -ge 2 ] && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
[ $rc = 75 ] || fail "train: exit $rc after SIGINT, expected 75: $(tail -3 "$T/train.err")"
grep -q "SIGINT received: stopped after step" "$T/train.err" || fail "train did not name SIGINT"
echo "rel_signals: ok ($cases stop cases)"
