# ckpt_resume.sh - checkpoints and resume: 12 steps straight = 6 steps + resume to 12 (losses and
# final weights bitwise, constant LR so the first half may stop at steps = 6); keep_last pruning and
# `latest`; a checkpoint of 2 data-parallel ranks resumed on 1 rank (losses within rounding); a
# run stopped by SIGUSR1 exits 75 with a checkpoint and resumes bitwise (cosine schedule); a rank
# killed with -9 inside a checkpoint write leaves `latest` on the previous checkpoint and the
# resume reproduces the straight run.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/ckpt_common.sh" || exit 1
C="optim.schedule=constant"

# 1. straight vs 6 + 6 (same layout)
run "$LLAMAPRO" train --config "$T/run.ini" $C 2> "$T/straight.log"
ls "$T/straight/ckpt" | sort > "$T/ls"
printf 'latest\nstep-12.h5\nstep-9.h5\n' | cmp -s - "$T/ls" || fail "keep_last=2: $(cat "$T/ls")"
[ "$(cat "$T/straight/ckpt/latest")" = step-12.h5 ] || fail "latest: $(cat "$T/straight/ckpt/latest")"
run "$LLAMAPRO" train --config "$T/run.ini" $C batch.steps=6 run.dir="$T/half" 2> /dev/null
[ "$(cat "$T/half/ckpt/latest")" = step-6.h5 ] || fail "half: latest is not step-6.h5"
run "$LLAMAPRO" train --config "$T/run.ini" $C run.dir="$T/half" 2> "$T/half2.log"
grep -q 'resuming from .*step-6.h5 at step 6' "$T/half2.log" || fail "no resume message: $(cat "$T/half2.log")"
same_losses "$T/straight/metrics.jsonl" "$T/half/metrics.jsonl" 0 || fail "resumed losses differ from the straight run"
h5diff -q "$T/straight/final.h5" "$T/half/final.h5" || fail "resumed final weights differ"
# resume = never starts over (and is not confused by the existing checkpoints)
run "$LLAMAPRO" train --config "$T/run.ini" $C batch.steps=3 run.dir="$T/half" run.resume=never 2> "$T/never.log"
! grep -q resuming "$T/never.log" || fail "run.resume=never resumed"

# 2. written by 2 data-parallel ranks, resumed by 1 rank
"$MPIEXEC" -n 2 "$LLAMAPRO" train --config "$T/run.ini" $C batch.microbatches=1 batch.steps=6 run.dir="$T/dp" 2> "$T/dp.log" \
  || fail "2-rank train: $(tail -3 "$T/dp.log")"
"$LLAMAPRO" info "$T/dp/ckpt/step-6.h5" > "$T/info.txt" || fail "info on a checkpoint"
grep -q 'checkpoint: step 6' "$T/info.txt" || fail "info: no step: $(cat "$T/info.txt")"
grep -q 'written by 2 ranks (pp 1 x dp 2)' "$T/info.txt" || fail "info: no layout"
grep -q 'frozen tensors: 39 external links' "$T/info.txt" || fail "info: frozen links: $(cat "$T/info.txt")"
run "$LLAMAPRO" train --config "$T/run.ini" $C run.dir="$T/dp" 2> "$T/dp2.log"
grep -q 'written by 2 ranks' "$T/dp2.log" || fail "no layout in resume message: $(grep resum "$T/dp2.log")"
same_losses "$T/straight/metrics.jsonl" "$T/dp/metrics.jsonl" 1e-5 || fail "dp=2 -> dp=1 resume differs beyond rounding"

# 3. SIGUSR1: exit 75 with a checkpoint, resume bitwise (cosine schedule: position restored)
run "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/cos" 2> /dev/null
LLAMAPRO_TEST_SLOW_CKPT=1 "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/sig" 2> "$T/sig.log" &
pid=$!
for i in $(seq 100); do [ -e "$T/sig/ckpt/latest" ] && break; sleep 0.1; done
kill -USR1 $pid
wait $pid; rc=$?
[ "$rc" = 75 ] || fail "SIGUSR1: exit $rc, expected 75: $(tail -3 "$T/sig.log")"
grep -q 'SIGUSR1 received: stopped after step' "$T/sig.log" || fail "no stop message: $(tail -3 "$T/sig.log")"
n=$(sed 's/step-\([0-9]*\).h5/\1/' "$T/sig/ckpt/latest")
[ "$n" -lt 12 ] || fail "stopped too late (step $n)"
run "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/sig" 2> /dev/null
same_losses "$T/cos/metrics.jsonl" "$T/sig/metrics.jsonl" 0 || fail "resume after SIGUSR1 differs"
h5diff -q "$T/cos/final.h5" "$T/sig/final.h5" || fail "final weights after SIGUSR1 resume differ"

# 4. kill -9 of one rank inside a checkpoint write
LLAMAPRO_TEST_SLOW_CKPT=30@12 timeout 60 "$MPIEXEC" -n 2 "$LLAMAPRO" train --config "$T/run.ini" $C batch.microbatches=1 \
  run.dir="$T/kill" run.ckpt_every=6 > "$T/kill.out" 2> "$T/kill.log" &
mpid=$!
for i in $(seq 200); do [ -e "$T/kill/ckpt/step-12.h5.partial" ] && break; sleep 0.1; done
[ -e "$T/kill/ckpt/step-12.h5.partial" ] || fail "no partial checkpoint appeared: $(tail -3 "$T/kill.log")"
victim=$(pgrep -f "^$LLAMAPRO train .*run.dir=$T/kill" | head -1)
t0=$(date +%s)
kill -9 "$victim"
wait $mpid; rc=$?
dt=$(( $(date +%s) - t0 ))
[ "$rc" != 0 ] || fail "job survived a killed rank"
[ "$dt" -le 15 ] || fail "job took ${dt}s to end after a rank died"
cat "$T/kill.out" "$T/kill.log" | grep -Eqi 'signal 9|killed' || fail "no message about the dead rank: $(tail -5 "$T/kill.log")"
[ "$(cat "$T/kill/ckpt/latest")" = step-6.h5 ] || fail "latest moved: $(cat "$T/kill/ckpt/latest")"
run "$LLAMAPRO" train --config "$T/run.ini" $C run.dir="$T/kill" 2> "$T/kill2.log"
grep -q 'resuming from .*step-6.h5' "$T/kill2.log" || fail "did not resume from step 6"
[ ! -e "$T/kill/ckpt/step-12.h5.partial" ] || fail "stale .partial not cleaned"
same_losses "$T/straight/metrics.jsonl" "$T/kill/metrics.jsonl" 1e-5 || fail "resume after kill -9 differs"
echo "ckpt_resume: passed"
