#!/usr/bin/env bash
# two_clusters.sh - two one-node local clusters (slurm/local-cluster.sh) started at the same moment,
# as two parallel e2e runs or two users would: both come up on different free ports (no "Address
# already in use"), each runs a job of its own, a third asked for a port in use is refused with one
# line and leaves nothing, and `stop` removes each cluster's daemons and state directory.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
lp_cluster_prereq
LC="$SRC/slurm/local-cluster.sh"
D2=$T/slurm2
trap 'rc=$?; set +e; [ -f "$D2/slurm.conf" ] && LP_SLURM_DIR=$D2 bash "$LC" stop 2>/dev/null; (exit $rc); lp_e2e_cleanup' EXIT
LP_SLURM_DIR=$D2 bash "$LC" start > "$T/start2.log" 2>&1 &
p2=$!
lp_cluster_start
wait $p2 || fail "the second cluster did not start: $(cat "$T/start2.log")"
p1=$(cat "$LP_SLURM_DIR/port") q2=$(cat "$D2/port")
[ "$p1" != "$q2" ] && [ "$p1" != $((q2 + 1)) ] && [ "$q2" != $((p1 + 1)) ] || fail "both clusters on ports $p1 and $q2"
listening() { ss -Hltn "sport = :$1" | grep -q .; }
for p in "$p1" $((p1 + 1)) "$q2" $((q2 + 1)); do listening "$p" || fail "nothing listens on port $p"; done

# one job on each, at the same time
j1=$(SLURM_CONF=$LP_SLURM_DIR/slurm.conf lp_submit --output="$T/j1.out" --wrap "echo one")
j2=$(SLURM_CONF=$D2/slurm.conf lp_submit --output="$T/j2.out" --wrap "echo two")
[ "$(SLURM_CONF=$LP_SLURM_DIR/slurm.conf lp_wait "$j1" 60)" = COMPLETED ] || fail "job $j1 on the first cluster"
[ "$(SLURM_CONF=$D2/slurm.conf lp_wait "$j2" 60)" = COMPLETED ] || fail "job $j2 on the second cluster"
[ "$(cat "$T/j1.out")" = one ] && [ "$(cat "$T/j2.out")" = two ] || fail "job output: $(cat "$T/j1.out" "$T/j2.out")"

# a port that is taken: one clear line, nothing made
set +e   # expect_fail looks at the exit status itself
expect_fail 1 "port $p1 or $((p1 + 1)) is in use" env LP_SLURM_DIR="$T/slurm3" LP_SLURM_PORT="$p1" bash "$LC" start
set -e
[ ! -e "$T/slurm3" ] || fail "a refused start left $T/slurm3"

# stop removes each cluster's daemons and directory, and the other keeps running meanwhile
pids2=$(cat "$D2"/*.pid)
LP_SLURM_DIR=$D2 bash "$LC" stop 2> /dev/null || fail "stop of the second cluster"
[ ! -e "$D2" ] || fail "stop left $D2"
for p in $pids2; do ! kill -0 "$p" 2>/dev/null || fail "process $p of the second cluster still runs"; done
! listening "$q2" || fail "port $q2 still in use after stop"
sinfo -h -t idle -o %D | grep -qx 1 || fail "the first cluster went down with the second: $(sinfo)"
pids1=$(cat "$LP_SLURM_DIR"/*.pid)
bash "$LC" stop 2> /dev/null || fail "stop of the first cluster"
[ ! -e "$LP_SLURM_DIR" ] || fail "stop left $LP_SLURM_DIR"
for p in $pids1; do ! kill -0 "$p" 2>/dev/null || fail "process $p of the first cluster still runs"; done
echo "two clusters on ports $p1 and $q2"
