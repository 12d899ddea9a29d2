# metrics_full.sh - metrics.jsonl on a device that takes no more bytes (/dev/full: every write is
# ENOSPC, as on a full disk): train exits 1 with one line naming metrics.jsonl and the errno text,
# writes no final model, on 1 rank and on 2 (pp = 2); a run whose metrics can be written passes.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
[ -w /dev/full ] || { echo "SKIPPED: no writable /dev/full"; exit 77; }
for np in 1 2; do
  mkdir -p "$T/full$np"
  ln -s /dev/full "$T/full$np/metrics.jsonl"
  $MPI -n $np "$LLAMAPRO" train --config "$T/run.ini" parallel.pp=$np run.dir="$T/full$np" run.ckpt_every=0 \
    > /dev/null 2> "$T/err$np"
  rc=$?
  [ $rc = 1 ] || fail "$np ranks: exit $rc, expected 1: $(tail -3 "$T/err$np")"
  # progress lines, then the error: one line from llamapro, the last one but for MPI_Abort's banner
  [ "$(grep -c '^llamapro:' "$T/err$np")" = 1 ] || fail "$np ranks: not one error line: $(cat "$T/err$np")"
  grep '^llamapro:' "$T/err$np" | grep -q -E "full$np/metrics\.jsonl: cannot write: No space left on device$" ||
    fail "$np ranks: $(grep '^llamapro:' "$T/err$np")"
  [ ! -e "$T/full$np/final.h5" ] || fail "a final model was written with the metrics lost ($np ranks)"
done
run $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" parallel.pp=2 run.dir="$T/ok" run.ckpt_every=0 2> /dev/null
[ "$(grep -c '"grad_norm"' "$T/ok/metrics.jsonl")" = 4 ] || fail "metrics of the run with room: $(cat "$T/ok/metrics.jsonl")"
echo "metrics_full: passed"
