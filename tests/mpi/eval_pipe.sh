# eval_pipe.sh - `llamapro eval` over pipeline stages (--pp), as training lays out its ranks.
# 1. The fixture cases of eval_reference.sh (losses in float64 from the fixtures' reference logits,
#    eval_common.sh) at pp = 1, pp = 2, pp = 4 and pp = 2 x dp = 2 (4 ranks, oversubscribed): each
#    within float32 rounding of the reference and within 1e-6 relative of one rank.
# 2. A corpus of 21 windows, 3 a pass (so passes follow each other through the stages and the last
#    is partial): pp = 2 and pp = 4 print bitwise one rank's line (every stage runs one rank's
#    kernels on the same rows); dp = 2, 3 and pp = 2 x dp = 2 within 1e-6 relative.
# 3. The expanded model (6 layers, identity blocks) at pp = 3 evaluates as its base.
# 4. --pp auto: pp = 1 when the model fits a rank's share of the node; pp = 2 when the node's memory
#    is set between the planned bytes of one stage and of two; no pp fitting is one error line.
# 5. --config takes [parallel] pp and partition, [data] seq_len, [batch] micro_batch, and an
#    override; a bad partition names the config.
# 6. Bad layouts exit 1 with one line: more stages than layers, ranks not a multiple of pp, --pp
#    with --task.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/eval_common.sh" || exit 1
lp_eval_fixtures
mpi() { "$MPIEXEC" -q --oversubscribe --bind-to none "$@"; }
# ev NP ARGS...: eval on NP ranks; stdout in $out, rank 0's info line (the layout) in $info
ev() {
  local np=$1; shift
  out=$(mpi -n "$np" "$LLAMAPRO" eval "$@" 2> "$T/err") || fail "eval on $np ranks $*: $(cat "$T/err")"
  info=$(grep '^eval: ' "$T/err")
}
# layout PP DP: the info line shows this layout
layout() { printf '%s' "$info" | grep -q "= pp $1 x dp $2[;( ]" || fail "expected pp $1 x dp $2, got '$info'"; }
# close A B: the losses of two output lines within 1e-6 relative, the token counts equal
close() {
  "$PY" -c 'import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
assert a[4:] == b[4:], (a, b)
la, lb = float(a[1]), float(b[1])
assert abs(la - lb) <= 1e-6 * abs(lb), (la, lb)' "$1" "$2" || fail "'$1' vs one rank '$2': not within 1e-6 relative"
}

# 1. reference cases
for name in seq0 seq1 dec; do
  read -r _l _p _n sl _r < "$T/$name.want"
  ev 1 --model "$T/m.h5" --corpus "$T/$name.h5" --seq-len "$sl" --pp 1; layout 1 1; one=$out
  lp_eval_check "$one" "$name"
  for l in "2 2 1" "4 4 1" "4 2 2"; do
    set -- $l
    ev "$1" --model "$T/m.h5" --corpus "$T/$name.h5" --seq-len "$sl" --pp "$2"; layout "$2" "$3"
    echo "$name pp $2 x dp $3: '$out' (one rank '$one')"
    lp_eval_check "$out" "$name"
    close "$out" "$one"
  done
done

# 2. many windows, several passes
lp_eval_corpus "$T/r.h5" $("$PY" -c 'import random; random.seed(5); print(*[random.randrange(3, 96) for _ in range(16 * 21 + 1)])')
R=(--model "$T/m.h5" --corpus "$T/r.h5" --seq-len 16 --batch 3)
ev 1 "${R[@]}"; layout 1 1; one=$out
[ "${one##* }" = 336 ] || fail "21 windows of 16: expected 336 tokens, got '$one'"
for l in "2 2 1" "4 4 1"; do
  set -- $l
  ev "$1" "${R[@]}" --pp "$2"; layout "$2" "$3"
  echo "21 windows, pp $2: '$out' (one rank '$one')"
  [ "$out" = "$one" ] || fail "pp $2: '$out', one rank '$one' (expected bitwise the same)"
done
for l in "2 1 2" "3 1 3" "4 2 2"; do
  set -- $l
  ev "$1" "${R[@]}" --pp "$2"; layout "$2" "$3"
  echo "21 windows, pp $2 x dp $3: '$out' (one rank '$one')"
  close "$out" "$one"
done

# 3. expanded model at pp = 3
run "$LLAMAPRO" expand --in "$T/m.h5" --out "$T/x.h5" --blocks 2 > /dev/null 2>&1
ev 1 --model "$T/m.h5" --corpus "$T/dec.h5" --seq-len 31; base=$out
ev 3 --model "$T/x.h5" --corpus "$T/dec.h5" --seq-len 31 --pp 3; layout 3 1
[ "$out" = "$base" ] || fail "expanded model at pp 3: '$out', base '$base'"
echo "expanded (6 layers) at pp 3: '$out' as the base"

# 4. --pp auto
ev 2 "${R[@]}"; layout 1 2
printf '%s' "$info" | grep -q "chosen" || fail "--pp auto not said: '$info'"
mb() { printf '%s' "$info" | sed -n 's/.*planned \([0-9.]*\) MB per rank.*/\1/p'; }
ev 2 "${R[@]}" --pp 1; one_mb=$(mb)
ev 2 "${R[@]}" --pp 2; two_mb=$(mb); two=$out
# two ranks on this node: a node of 2 x (halfway between the two stages' bytes) fits pp = 2 only
gb=$("$PY" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); assert b < a, (a, b); print(2 * (a + b) / 2 / 1000)" "$one_mb" "$two_mb") ||
  fail "planned MB per rank: pp 1 $one_mb, pp 2 $two_mb (expected pp 2 smaller)"
ev 2 "${R[@]}" --node-mem-gb "$gb"; layout 2 1
[ "$out" = "$two" ] || fail "--pp auto chose pp 2: '$out', --pp 2 '$two'"
echo "--pp auto: pp 1 plans $one_mb MB, pp 2 $two_mb MB per rank; a node of $gb GB for 2 ranks -> '$info'"
err=$(mpi -n 2 "$LLAMAPRO" eval "${R[@]}" --node-mem-gb 0.01 2>&1 >/dev/null); rc=$?
[ "$rc" = 1 ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] && printf '%s' "$err" | grep -q "does not fit" ||
  fail "--pp auto on a 10 MB node: exit $rc, '$err' (expected 1 and one line)"

# 5. --config
{ echo "[model]"; echo "path = $T/m.h5"; echo "[data]"; echo "seq_len = 16"; echo "[batch]"; echo "micro_batch = 3"
  echo "[parallel]"; echo "pp = 2"; echo "partition = 1,3"; } > "$T/run.ini"
ev 2 --config "$T/run.ini" --corpus "$T/r.h5"; layout 2 1
printf '%s' "$info" | grep -q "layers per stage 1,3;" || fail "[parallel] partition = 1,3 not used: '$info'"
[ "$out" = "$one" ] || fail "--config (pp 2, partition 1,3): '$out', one rank '$one'"
ev 4 --config "$T/run.ini" --corpus "$T/r.h5" parallel.partition=3,1; layout 2 2
printf '%s' "$info" | grep -q "layers per stage 3,1;" || fail "override parallel.partition=3,1 not used: '$info'"
close "$out" "$one"
# bad layouts: one line (Open MPI's oversubscription warning aside), exit 1
bad() {
  local np=$1 pat=$2; shift 2
  err=$(mpi -n "$np" "$LLAMAPRO" eval "$@" 2>&1 >/dev/null); rc=$?
  err=$(printf '%s\n' "$err" | grep -v "exceed its .* cores")
  [ "$rc" = 1 ] || fail "expected exit 1, got $rc: eval $*: $err"
  [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] || fail "expected one line, got: $err"
  printf '%s' "$err" | grep -q -E -- "$pat" || fail "'$err' does not match '$pat'"
  echo "refused: $err"
}
bad 2 "run.ini: \[parallel\] partition = 2,3 covers 5 layers" --config "$T/run.ini" --corpus "$T/r.h5" parallel.partition=2,3

# 6. bad layouts
bad 1 "^llamapro: --pp: 5 stages exceed the 4 layers of .*m.h5" "${R[@]}" --pp 5
bad 3 "^llamapro: --pp: 2 stages do not divide the 3 MPI ranks" "${R[@]}" --pp 2
bad 4 "run.ini: \[parallel\] pp: 8 stages exceed the 4 layers" --config "$T/run.ini" --corpus "$T/r.h5" parallel.pp=8
expect_fail 1 "--pp 2: --task arithmetic runs the whole model" "$LLAMAPRO" eval --task arithmetic --model "$T/m.h5" --corpus "$T/r.h5" --pp 2
echo "eval_pipe: passed"
