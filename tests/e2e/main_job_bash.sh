#!/usr/bin/env bash
# main_job_bash.sh - README's first command, `bash jobs/llama-pro-code.slurm`, at smoke size without
# Slurm: mpirun with ranks x threads <= cores, the report, and a second run that skips every step.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
unset SLURM_JOB_ID SLURM_SUBMIT_DIR SLURM_NTASKS SLURM_CPUS_PER_TASK SLURM_RESTART_COUNT
lp_tiny_base "$T/base.h5"
lp_smoke_config "$T/smoke.ini" "$T/run"
cd "$T"   # the job finds the repository from its own path, not from the working directory
LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini bash "$SRC/jobs/llama-pro-code.slurm" > "$T/out1.log" 2>&1 ||
  fail "first run: $(tail -20 "$T/out1.log")"
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
line=$(grep -o 'running here with mpirun, [0-9]* ranks x [0-9]* threads' "$T/out1.log") || fail "no layout line"
set -- $(echo "$line" | grep -o '[0-9]\+')
[ $(( $1 * $2 )) -le "$cores" ] || fail "$line on $cores cores"
grep -q "mpirun -n $1 --map-by slot:PE=$2" "$T/run/log/train.log" || fail "train not started by mpirun"
tail -1 "$T/out1.log" | grep -q "Report: $T/run/report.md" || fail "last line does not name the report: $(tail -1 "$T/out1.log")"
grep -q '| code (domain) |' "$T/run/report.md" || fail "report without the code row"
LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini bash "$SRC/jobs/llama-pro-code.slurm" > "$T/out2.log" 2>&1 ||
  fail "second run: $(tail -20 "$T/out2.log")"
# 8 steps, 9 with the export
[ "$(grep -c 'exists, skipped' "$T/out2.log")" -ge 8 ] && ! grep -q ' -> ' "$T/out2.log" ||
  fail "second run did not skip every finished step: $(cat "$T/out2.log")"
# a missing base model is named, with what makes it
LP_BASE=$T/nope.h5 LP_CONFIG=$T/smoke.ini bash "$SRC/jobs/llama-pro-code.slurm" > "$T/out3.log" 2>&1 && fail "ran without a base"
grep -q "base model $T/nope.h5 not found: it is made by jobs/pretrain-base.slurm" "$T/out3.log" || fail "message: $(cat "$T/out3.log")"
echo "main_job_bash: passed"
