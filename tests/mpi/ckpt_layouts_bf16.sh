# ckpt_layouts_bf16.sh - ckpt_layouts.sh in precision bf16: a checkpoint (fp32 masters) written by
# 2 pipeline stages resumes with 1 and with 4 stages, and the continued losses and final weights
# are bitwise those of a straight 12-step bf16 run; the bf16 losses stay within 2% of the fp32 run.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/ckpt_common.sh"
grep -q avx512f /proc/cpuinfo || { echo "SKIPPED: precision bf16 needs an AVX-512 CPU for oneDNN's bf16 matmul"; exit 77; }
C="optim.schedule=constant optim.warmup_steps=0 run.precision=bf16"
export OMP_NUM_THREADS=1
run "$LLAMAPRO" train --config "$T/run.ini" $C 2> "$T/straight.log"                # straight, pp=1
grep -q "precision bf16" "$T/straight.log" || fail "the bf16 run does not say so: $(head -8 "$T/straight.log")"
run "$LLAMAPRO" train --config "$T/run.ini" optim.schedule=constant optim.warmup_steps=0 run.dir="$T/fp32" 2> /dev/null
same_losses "$T/fp32/metrics.jsonl" "$T/straight/metrics.jsonl" 0.02 || fail "bf16 losses stray more than 2% from fp32"
same_losses "$T/fp32/metrics.jsonl" "$T/straight/metrics.jsonl" 2> /dev/null && fail "bf16 losses are bitwise the fp32 ones (bf16 not used?)"
resume_layouts "$C" "bf16 "
echo "ckpt_layouts_bf16: passed"
