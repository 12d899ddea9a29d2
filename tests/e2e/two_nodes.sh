#!/usr/bin/env bash
# two_nodes.sh - the main job across two nodes of the local cluster (slurm/local-cluster.sh --nodes 2:
# two network + UTS namespaces on a bridge), at smoke size:
#   1. `sbatch -N 2 --ntasks-per-node=1 jobs/llama-pro-code.slurm parallel.pp=2` completes, one stage
#      per node (Open MPI's log lines carry both hostnames), rank-to-rank traffic between the nodes
#      over TCP (Open MPI's transport selection, btl_base_verbose), and its losses, gradient norms and
#      trained weights are BITWISE those of the same pp = 2 run on one node (mpirun, shared memory);
#   2. bench --network with 2 ranks on node1 and 1 on node2 uses shared memory (vader) inside a node
#      and TCP between nodes, and tells the two kinds of link apart;
#   3. kill -9 of the training rank on node2 ends the job in seconds with node and rank named, and
#      `scontrol requeue` of the failed job resumes from the last checkpoint and finishes every step;
#   4. `local-cluster.sh stop` leaves no namespace, link, mount or process of the cluster behind.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the local Slurm cluster needs root"; exit 77; }
command -v nsenter >/dev/null && command -v ip >/dev/null || { echo "SKIPPED: needs ip (iproute2) and nsenter (util-linux)"; exit 77; }
snapshot() {   # what the cluster may create: namespaces, links, mounts (sorted names)
  { ip netns list | awk '{print "netns " $1}'; ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}'
    awk '{print "mount " $2}' /proc/mounts; } | sort
}
snapshot > "$T/before.txt"
lp_cluster_start --nodes 2
P=$(cat "$LP_SLURM_DIR/port")   # the namespaces are named after the port the cluster picked
[ "$(sinfo -h -N -o %N | sort | tr '\n' ' ')" = "node1 node2 " ] || fail "nodes: $(sinfo -N)"

lp_tiny_base "$T/base.h5"
gzip -dc "$SRC/inputs/corpora/python-stdlib.jsonl.gz" | head -60 > "$T/code.jsonl" || true  # gzip ends on SIGPIPE
gzip -dc "$SRC/inputs/corpora/brown.jsonl.gz" | head -40 > "$T/general.jsonl" || true
lp_smoke_config "$T/smoke.ini" "$T/run"
submit() {  # RUN_DIR ARGS...: the main job on 2 nodes, one rank each, pp = 2
  local dir=$1; shift
  LP_BASE=$T/base.h5 LP_CONFIG=$T/smoke.ini LP_CODE_SRC=$T/code.jsonl LP_GENERAL_SRC=$T/general.jsonl \
  OMPI_MCA_btl_base_verbose=100 lp_submit -N 2 --ntasks-per-node=1 --cpus-per-task=1 --output="$T/%x-%j.out" \
    jobs/llama-pro-code.slurm parallel.pp=2 run.dir="$dir" "$@"
}

# 1. the whole job on two nodes
t0=$(date +%s)
job=$(submit "$T/run")
state=$(lp_wait "$job" 300)
out="$T/llama-pro-code-$job.out"
[ "$state" = COMPLETED ] || fail "2-node job $job ended $state: $(tail -20 "$out")"
echo "2-node job $job COMPLETED in $(( $(date +%s) - t0 )) s"
R=$T/run
L=$R/log/train.log
grep -q "srun --mpi=pmix -n 2 -c 1" "$L" || fail "training not started with srun: $(grep '^==' "$L")"
hosts=$(grep -E -o '^\[node[0-9]+:' "$L" | sort -u | tr -d '[:' | tr '\n' ' ')
[ "$hosts" = "node1 node2 " ] || fail "training ranks ran on '$hosts', expected node1 and node2"
grep -Eq '^\[node1:[0-9]+\] mca: bml: Using tcp btl for send to .* on node node2' "$L" &&
  grep -Eq '^\[node2:[0-9]+\] mca: bml: Using tcp btl for send to .* on node node1' "$L" ||
  fail "no TCP transport between node1 and node2 in $L: $(grep 'bml: Using' "$L")"
echo "stages on: $hosts; transport: $(grep -E -o 'Using tcp btl for send to .* on node node2' "$L" | head -1)"
grep -q '"memory_stage": 1' "$R/metrics.jsonl" || fail "no stage 1 in $R/metrics.jsonl (pp = 2?)"
# the same layout on one node: mpirun, two ranks sharing memory, same files
"$MPIEXEC" -n 2 --bind-to none "$LLAMAPRO" train --config "$T/smoke.ini" parallel.pp=2 model.path="$R/expanded.h5" \
  data.train="$R/corpus-code.h5" data.val="general:$R/corpus-general.h5:val, code:$R/corpus-code.h5:val" \
  run.dir="$T/one" > "$T/one.log" 2>&1 || fail "1-node pp = 2 run: $(tail -5 "$T/one.log")"
/usr/bin/python3 - "$R/metrics.jsonl" "$T/one/metrics.jsonl" <<'PY' || fail "2-node losses differ from 1-node"
import json, sys
def rows(f):   # step and eval lines, without timings: loss and gradient norm printed with %.17g
    out = []
    for l in open(f):
        r = json.loads(l)
        if "grad_norm" in r: out.append(("step", r["step"], r["loss"], r["grad_norm"]))
        elif "eval" in r: out.append((r["eval"], r["step"], r["loss"]))
    return out
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len([r for r in a if r[0] == "step"]) == 8, a
assert a == b, [(x, y) for x, y in zip(a, b) if x != y][:3]
print("losses bitwise equal on 1 and 2 nodes:", [r[2] for r in a if r[0] == "step"][-1])
PY
h5diff -q "$R/final.h5" "$T/one/final.h5" /weights /weights || fail "trained weights differ between 1 and 2 nodes"

# 2. shared memory inside a node, TCP between nodes: bench --network on 3 ranks, 2 on node1 (one
# core: -O); its link summary tells the pairs inside a node from those between nodes
srun -N 2 -n 3 -O --distribution=block --mpi=pmix env OMPI_MCA_btl_base_verbose=100 "$LLAMAPRO" bench --network \
  --max-bytes 65536 --reps 5 --json "$T/net.json" > "$T/net.txt" 2> "$T/net.log" || fail "bench --network on 3 ranks: $(tail -5 "$T/net.log")"
grep -Eq '^\[node1:[0-9]+\] mca: bml: Using vader btl for send to .* on node node1' "$T/net.log" ||
  fail "no shared memory (vader) inside node1: $(grep 'bml: Using' "$T/net.log")"
grep -Eq '^\[node1:[0-9]+\] mca: bml: Using tcp btl for send to .* on node node2' "$T/net.log" ||
  fail "no TCP from node1 to node2: $(grep 'bml: Using' "$T/net.log")"
grep 'bml: Using' "$T/net.log" | sed 's/^/  /' | sort -u | head -6
/usr/bin/python3 - "$T/net.json" <<'PY' || fail "bench --network across nodes: $(cat "$T/net.txt")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["hosts"] == ["node1", "node1", "node2"], j["hosts"]
assert j["intra"]["pairs"] == 1 and j["inter"]["pairs"] == 2, (j["intra"], j["inter"])
print("links: inside node1 %.1f us, node1-node2 %.1f us %.2f GB/s" % (j["intra"]["latency_s"] * 1e6,
      j["inter"]["latency_s"] * 1e6, j["inter"]["bandwidth_Bps"] * 1e-9))
PY

# 3. kill the training step's rank on node2; requeue resumes
K=$T/runk
mkdir -p "$K"
cp "$R/expanded.h5" "$R/corpus-code.h5" "$R/corpus-general.h5" "$K/"   # the job skips those steps
cp -r "$R/eval" "$K/"
job=$(submit "$K" batch.steps=400 run.eval_every=100 run.ckpt_every=10)
out="$T/llama-pro-code-$job.out"
for i in $(seq 240); do
  ls "$K"/ckpt/step-*.h5 >/dev/null 2>&1 && break
  st=$(lp_job_field "$job" JobState)
  case "$st" in PENDING|CONFIGURING|RUNNING) ;; *) fail "job $job is ${st:-gone} before the kill: $(tail -20 "$out")" ;; esac
  sleep 0.5
done
victim=""
for p in $(ip netns pids "lp${P}n2"); do
  cmd=$(tr '\0' ' ' < /proc/"$p"/cmdline 2>/dev/null || true)
  [[ "$cmd" == *llamapro\ train* ]] && [[ "$cmd" != srun* ]] && victim=$p
done
[ -n "$victim" ] || fail "no llamapro train process in node2's namespace"
t1=$(date +%s)
kill -9 "$victim"
state=$(lp_wait "$job" 60)
dt=$(( $(date +%s) - t1 ))
[ "$state" = FAILED ] || fail "job state $state after the kill, expected FAILED"
[ "$dt" -le 30 ] || fail "the job took $dt s (> 30) to end after a rank died"
grep -Eq 'train failed with exit status [0-9]+: rank 1 ended first \(task 1: Killed\) on node node2' "$out" ||
  fail "the log does not name node and rank: $(grep -i 'fail' "$out" | tail -3)"
echo "killed rank 1 on node2 (pid $victim): $state after $dt s: $(grep -E -o 'rank 1 ended first .* on node node2' "$out")"
last=$(cat "$K/ckpt/latest" 2>/dev/null || ls "$K"/ckpt/ | grep -E '^step-[0-9]+\.h5$' | sort -t- -k2 -n | tail -1)
scontrol requeue "$job" || fail "scontrol requeue $job"
state=$(lp_wait "$job" 300 fast_requeue)
[ "$state" = COMPLETED ] || fail "requeued job $job ended $state: $(tail -20 "$out")"
grep -q "SLURM_RESTART_COUNT=1" "$out" || fail "no restart logged"
grep -q "resuming from $K/ckpt/" "$K/log/train.log" || fail "the requeued job did not resume: $(grep -i resum "$K/log/train.log")"
/usr/bin/python3 - "$K/metrics.jsonl" <<'PY' || fail "steps missing after the requeue"
import json, sys
steps = {json.loads(l)["step"] for l in open(sys.argv[1]) if '"grad_norm"' in l}
assert steps == set(range(1, 401)), sorted(set(range(1, 401)) - steps)[:10]
PY
echo "requeued job $job resumed ($(grep -o "resuming from [^ ]*" "$K/log/train.log" | tail -1), last seen $last) and completed"

# 4. stop removes everything it made
pids="$(cat "$LP_SLURM_DIR"/*.pid 2>/dev/null) $(ip netns pids "lp${P}n1") $(ip netns pids "lp${P}n2")"
bash "$SRC/slurm/local-cluster.sh" stop || fail "stop failed"
snapshot > "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" > "$T/diff.txt" || fail "left behind after stop: $(cat "$T/diff.txt")"
for p in $pids; do ! kill -0 "$p" 2>/dev/null || fail "process $p ($(tr '\0' ' ' < /proc/$p/cmdline)) survived stop"; done
[ ! -e "$LP_SLURM_DIR" ] || fail "$LP_SLURM_DIR left behind"
echo "stop: no namespace, link, mount or process left ($(echo $pids | wc -w) processes checked)"
echo "two_nodes: passed"
