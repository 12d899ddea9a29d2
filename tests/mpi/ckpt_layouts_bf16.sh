# ckpt_layouts_bf16.sh - ckpt_layouts.sh in precision bf16: a checkpoint (fp32 masters) written by
# 2 pipeline stages resumes with 1 and with 4 stages, and the continued losses and final weights
# are bitwise those of a straight 12-step bf16 run; the bf16 losses stay within 2% of the fp32 run.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/ckpt_common.sh"
grep -q avx512f /proc/cpuinfo || { echo "SKIPPED: precision bf16 needs an AVX-512 CPU for oneDNN's bf16 matmul"; exit 77; }
C="optim.schedule=constant optim.warmup_steps=0 run.precision=bf16"
export OMP_NUM_THREADS=1
MPI="$MPIEXEC -q --oversubscribe --bind-to none"
run "$LLAMAPRO" train --config "$T/run.ini" $C 2> "$T/straight.log"                # straight, pp=1
grep -q "precision bf16" "$T/straight.log" || fail "the bf16 run does not say so: $(head -8 "$T/straight.log")"
run "$LLAMAPRO" train --config "$T/run.ini" optim.schedule=constant optim.warmup_steps=0 run.dir="$T/fp32" 2> /dev/null
same_losses "$T/fp32/metrics.jsonl" "$T/straight/metrics.jsonl" 0.02 || fail "bf16 losses stray more than 2% from fp32"
same_losses "$T/fp32/metrics.jsonl" "$T/straight/metrics.jsonl" 2> /dev/null && fail "bf16 losses are bitwise the fp32 ones (bf16 not used?)"
$MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" $C parallel.pp=2 batch.steps=6 run.ckpt_every=6 \
  run.dir="$T/pp2" 2> "$T/pp2.log" || fail "pp=2 first half: $(tail -3 "$T/pp2.log")"
[ -f "$T/pp2/ckpt/latest" ] || fail "no checkpoint from the pp=2 run"
for pp in 1 4; do
  cp -r "$T/pp2" "$T/resume$pp"
  sed -i "s#$T/pp2/#$T/resume$pp/#g" "$T/resume$pp/ckpt/latest" 2>/dev/null || true
  $MPI -n $pp "$LLAMAPRO" train --config "$T/run.ini" $C parallel.pp=$pp run.dir="$T/resume$pp" \
    2> "$T/resume$pp.log" || fail "resume with pp=$pp: $(tail -3 "$T/resume$pp.log")"
  grep -q "resum" "$T/resume$pp.log" || fail "pp=$pp did not resume: $(head -5 "$T/resume$pp.log")"
  same_losses "$T/straight/metrics.jsonl" "$T/resume$pp/metrics.jsonl" || fail "bf16 pp=2 -> pp=$pp losses differ"
  h5diff -q "$T/straight/final.h5" "$T/resume$pp/final.h5" /weights /weights || fail "bf16 pp=2 -> pp=$pp final weights differ"
done
echo "ckpt_layouts_bf16: passed"
