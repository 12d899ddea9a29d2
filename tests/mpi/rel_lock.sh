# rel_lock.sh - one run directory, one run (issue 10): a second train on a run dir a live run holds
# is refused at start naming the holder (host, pid, start time) and touches nothing; the holder's
# clean stop (SIGTERM, exit 75) releases the lock; a stale lock (same host, pid gone) is taken over
# with a warning; a lock from another host is refused.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
host=$(hostname)
"$LLAMAPRO" train --config "$T/run.ini" batch.steps=100000 run.ckpt_every=0 > "$T/first.log" 2>&1 &
first=$!
for i in $(seq 1200); do [ -e "$T/run/lock" ] && grep -q "^step" "$T/first.log" && break; sleep 0.1; done
[ -e "$T/run/lock" ] || fail "no lock file while a run is live: $(cat "$T/first.log")"
expect_fail 1 "run directory is in use by another run \(host $host, pid $first, started [0-9]{4}-" \
  $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini"
kill -0 $first 2>/dev/null || fail "the refused run disturbed the live one"
kill -TERM $first; wait $first; rc=$?
[ $rc = 75 ] || fail "the live run stopped with $rc, expected 75: $(tail -3 "$T/first.log")"
[ ! -e "$T/run/lock" ] || fail "a cleanly stopped run left its lock"
"$LLAMAPRO" info --verify "$T/run/ckpt/$(cat "$T/run/ckpt/latest")" > /dev/null || fail "checkpoint of the stopped run"
# stale: this host, a pid that has exited
sleep 0 & dead=$!; wait $dead
printf 'host=%s\npid=%s\nstart=2026-01-01T00:00:00+0000\njob=\n' "$host" "$dead" > "$T/run/lock"
"$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/run" run.resume=never > "$T/stale.log" 2>&1 || fail "stale lock: $(cat "$T/stale.log")"
grep -q "warning: .*lock: taking over the lock of a run that is gone (host $host, pid $dead" "$T/stale.log" || fail "no takeover warning"
[ ! -e "$T/run/lock" ] || fail "lock left after a finished run"
# another host: cannot be probed, refused with the way out
printf 'host=node-elsewhere\npid=4242\nstart=2026-01-01T00:00:00+0000\njob=77\n' > "$T/run/lock"
expect_fail 1 "in use by another run \(host node-elsewhere, pid 4242, started 2026-01-01T00:00:00\+0000, Slurm job 77\).*remove .*run/lock" \
  "$LLAMAPRO" train --config "$T/run.ini"
# ... unless it is this Slurm job, requeued
SLURM_JOB_ID=77 "$LLAMAPRO" train --config "$T/run.ini" batch.steps=2 run.resume=never > "$T/requeue.log" 2>&1 || fail "requeued job: $(cat "$T/requeue.log")"
grep -q "taking over the lock" "$T/requeue.log" || fail "requeued job took the lock silently"
# a run that fails after taking the lock (a bad token id) releases it
h5corpus "$T/bad.h5" '[1] + [5] * 99 + [4096] + [7] * 500'
expect_fail 1 "bad.h5: split 'train': token 4096 at position 100" "$LLAMAPRO" train --config "$T/run.ini" data.train="$T/bad.h5"
[ ! -e "$T/run/lock" ] || fail "a failed run left its lock"
echo "rel_lock: ok"
