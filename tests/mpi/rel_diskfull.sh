# rel_diskfull.sh - full and read-only filesystems (issue 10): every writer (prepare, init, expand,
# import, export h5 and hf, train checkpoints) on a full tmpfs exits 1 with one line naming the
# output and the errno text, leaves no .partial, never crashes; train refuses before step 1 when the
# next checkpoint cannot fit (statvfs), and a disk that fills during a checkpoint write keeps the
# previous checkpoint and `latest` intact and verifiable. Then the same filesystem read-only (EROFS).
# Needs root to mount a tmpfs: SKIPPED otherwise.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
[ "$(id -u)" = 0 ] || { echo "SKIPPED: mounting a small tmpfs needs root"; exit 77; }
M="$T/mnt"; mkdir -p "$M"
mount -t tmpfs -o size=6m tmpfs "$M" 2>/dev/null || { echo "SKIPPED: cannot mount a tmpfs here"; exit 77; }
trap 'umount -l "$M" 2>/dev/null; rm -rf "$T"' EXIT
fill() { rm -f "$M/fill"; dd if=/dev/zero of="$M/fill" bs=4k 2>/dev/null; rm -f "$M/fill.keep"; truncate -s -"${1:-0}" "$M/fill"; }
nopartial() { ! find "$M" -name '*.partial*' | grep -q . || fail "$1 left $(find "$M" -name '*.partial*')"; }
cases=0
w() { # w NAME PATTERN CMD...: a writer on the full disk
  expect_fail 1 "$2" "${@:3}"; nopartial "$1"; cases=$((cases + 1))
}
# a run with room: checkpoint step-2 (frozen tensors linked to exp.h5 outside the mount) and final
run "$LLAMAPRO" train --config "$T/run.ini" run.dir="$M/run" batch.steps=2 2>/dev/null
run "$LLAMAPRO" info --verify "$M/run/ckpt/step-2.h5" > /dev/null
rm "$M/run/final.h5"
fill 20000
ENOSPC='No space left on device'
w prepare "c\.h5\.partial: $ENOSPC" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$M/c.h5" "$T/docs.jsonl"
w init "n\.h5\.partial: $ENOSPC" "$LLAMAPRO" init --config "$T/run.ini" --out "$M/n.h5"
w expand "e\.h5\.partial: $ENOSPC" "$LLAMAPRO" expand --in "$T/base.h5" --out "$M/e.h5" --blocks 2
w import "i\.h5\.partial: $ENOSPC" "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$M/i.h5"
w export-h5 "x\.h5\.partial: $ENOSPC" "$LLAMAPRO" export --in "$T/exp.h5" --to h5 "$M/x.h5"
w export-hf "hf\.partial: $ENOSPC" "$LLAMAPRO" export --in "$T/exp.h5" --to hf "$M/hf"
w export-h5-2ranks "x\.h5\.partial: $ENOSPC" $MPI -n 2 "$LLAMAPRO" export --in "$T/exp.h5" --to h5 "$M/x.h5"
# train: the next checkpoint cannot fit: refused before step 1, naming free and needed space
w train-precheck "ckpt: 0\.[0-9] MB free, but the next checkpoint needs about [0-9.]+ MB" \
  "$LLAMAPRO" train --config "$T/run.ini" run.dir="$M/run" batch.steps=4
[ "$(cat "$M/run/ckpt/latest")" = step-2.h5 ] || fail "latest changed"
# the disk fills while step-4 is being written (the test-only stall holds the partial open)
rm -f "$M/fill"
LLAMAPRO_TEST_STALL_OUTPUT=3 "$LLAMAPRO" train --config "$T/run.ini" run.dir="$M/run" batch.steps=4 > /dev/null 2> "$T/t.err" &
pid=$!
for i in $(seq 1500); do [ -e "$M/run/ckpt/step-4.h5.partial" ] && break; sleep 0.02; done
fill 0
wait $pid; rc=$?
[ $rc = 1 ] || fail "train on a disk that filled up: exit $rc: $(cat "$T/t.err")"
grep "^llamapro:" "$T/t.err" | grep -v STALL > "$T/t.err1"
[ "$(grep -c . "$T/t.err1")" = 1 ] && grep -q "step-4\.h5\.partial: $ENOSPC" "$T/t.err1" || fail "train error: $(cat "$T/t.err")"
nopartial train-midwrite; cases=$((cases + 1))
[ "$(cat "$M/run/ckpt/latest")" = step-2.h5 ] || fail "latest no longer names step-2.h5"
run "$LLAMAPRO" info --verify "$M/run/ckpt/step-2.h5" > /dev/null
# read-only: the same writers, and train, refuse with EROFS text
rm -f "$M/fill"
mount -o remount,ro "$M" || fail "remount ro"
EROFS='Read-only file system'
w ro-expand "directory .* is not writable \($EROFS\)" "$LLAMAPRO" expand --in "$T/base.h5" --out "$M/e.h5" --blocks 2
w ro-prepare "$EROFS|not writable" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$M/c.h5" "$T/docs.jsonl"
w ro-export-hf "$EROFS|not writable" "$LLAMAPRO" export --in "$T/exp.h5" --to hf "$M/hf"
w ro-train "$EROFS" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$M/run" batch.steps=4
run "$LLAMAPRO" info --verify "$M/run/ckpt/step-2.h5" > /dev/null
echo "rel_diskfull: ok ($cases cases)"
