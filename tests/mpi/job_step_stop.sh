# job_step_stop.sh - a step of a job that is not training, stopped by SIGTERM to every process of
# the job (what Slurm sends at the time limit or on preemption), ends the job like a training
# checkpoint does: exit 75 with "run the same command again" (under Slurm: scontrol requeue), not a
# failure; it leaves no output of the step, and the job run again runs that step and finishes.
# Outside Slurm (mpirun), at smoke size; LLAMAPRO_TEST_STALL_OUTPUT holds expand mid-write.
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh" || exit 1
unset SLURM_JOB_ID SLURM_SUBMIT_DIR SLURM_NTASKS SLURM_CPUS_PER_TASK SLURM_RESTART_COUNT
lp_tiny_base "$T/base.h5"
lp_smoke_config "$T/smoke.ini" "$T/run"
gzip -dc "$SRC/inputs/corpora/python-stdlib.jsonl.gz" | head -60 > "$T/code.jsonl" || true  # gzip ends on SIGPIPE
gzip -dc "$SRC/inputs/corpora/brown.jsonl.gz" | head -40 > "$T/general.jsonl" || true
export LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini LP_CODE_SRC=$T/code.jsonl LP_GENERAL_SRC=$T/general.jsonl
cd "$T"
# the job in a process group of its own (setsid: $! is its leader), signalled as a whole, as
# Slurm signals a job
LLAMAPRO_TEST_STALL_OUTPUT=120 setsid bash "$SRC/jobs/llama-pro-code.slurm" > "$T/out1.log" 2>&1 &
pid=$!
for i in $(seq 600); do [ -e "$T/run/expanded.h5.partial" ] && grep -q STALL "$T/run/log/expand.log" 2>/dev/null && break; sleep 0.1; done
[ -e "$T/run/expanded.h5.partial" ] || fail "expand did not start: $(tail -5 "$T/out1.log")"
kill -TERM -- -"$pid"
wait "$pid"; rc=$?
[ "$rc" = 75 ] || fail "job stopped in expand: exit $rc, expected 75: $(tail -5 "$T/out1.log")"
grep -q "expand: stopped by SIGTERM before it finished (exit [0-9]*); it runs again; run the same command again to continue" \
  "$T/out1.log" || fail "no stop line: $(tail -5 "$T/out1.log")"
! grep -q "ERROR" "$T/out1.log" || fail "the stop was reported as an error: $(grep ERROR "$T/out1.log")"
[ ! -e "$T/run/expanded.h5" ] && [ ! -e "$T/run/expanded.h5.partial" ] || fail "the stopped expand left output"
bash "$SRC/jobs/llama-pro-code.slurm" > "$T/out2.log" 2>&1 || fail "the job run again: $(tail -20 "$T/out2.log")"
grep -q "expand -> $T/run/expanded.h5" "$T/out2.log" || fail "the second run did not run expand"
[ -s "$T/run/report.md" ] && [ -s "$T/run/final.h5" ] || fail "the second run did not finish"
[ "$(awk -F'\t' '$1 == "expand"' "$T/run/steps.tsv" | wc -l)" = 2 ] || fail "steps.tsv: $(cat "$T/run/steps.tsv")"
echo "job_step_stop: passed"
