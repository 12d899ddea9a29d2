# ckpt_layouts.sh - checkpoints are layout-free: a checkpoint written by 2 pipeline stages resumes
# with 1 and with 4 stages, and the continued losses and final weights are bitwise those of a
# straight 12-step run (constant learning rate, so a 6-step first half is the same run).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/ckpt_common.sh"
C="optim.schedule=constant optim.warmup_steps=0"
export OMP_NUM_THREADS=1
run "$LLAMAPRO" train --config "$T/run.ini" $C 2> /dev/null                      # straight, pp=1
resume_layouts "$C" ""
echo "ckpt_layouts: passed"
