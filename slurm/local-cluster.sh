#!/usr/bin/env bash
# local-cluster.sh - a Slurm cluster of one or more nodes on this machine, for the e2e tests and for
# trying the job scripts without a supercomputer.
#
#   bash slurm/local-cluster.sh start [--nodes N]   # install (Debian, as root), start munged, slurmctld,
#                                                   # and one slurmd per node (default N = 1)
#   eval "$(bash slurm/local-cluster.sh env)"   # point sbatch/squeue/scontrol at it (SLURM_CONF)
#   bash slurm/local-cluster.sh status
#   bash slurm/local-cluster.sh stop     # stop the daemons and remove the state directory
#
#   LP_SLURM_DIR   state directory (default /tmp/llamapro-slurm): slurm.conf, logs, spool, sockets.
#                  Everything the cluster writes lives there, so stop leaves nothing behind.
#   LP_SLURM_KEEP  set to 1 to keep the state directory (logs) after stop
#   LP_SLURM_PORT  slurmctld port (slurmd uses the next one). Default: `start` picks a free pair in
#                  20000-31999 (nothing listening on either; the first candidate derived from the
#                  state directory, so two clusters rarely even probe the same one), records it in
#                  $LP_SLURM_DIR/port for stop/status/env, and holds a lock on this script while it
#                  starts, so two clusters started at once never take the same ports. Never Slurm's
#                  default 6817: a site's own Slurm on this machine is not disturbed.
#   LP_SLURM_NODES default for --nodes
#
# One node (the default): slurmd runs on this machine under its own hostname, as a plain one-node
# cluster. N >= 2 nodes: each node is a network namespace (lp<port>n<k>) with its own hostname
# (a UTS namespace: node1 .. nodeN), joined by a veth pair to a bridge (lpbr<port>) that carries the
# private subnet 10.<port/256>.<port%256>.0/24 (bridge .1, node k .(10+k)); nothing is routed
# anywhere else, so MPI between nodes goes over TCP on that bridge and stays on this machine. The
# nodes share the file system (like a cluster's shared file system), munge and one slurmctld. Each
# node's slurmd, and so every job step on it, is pinned to its share of the cores (taskset), so
# two "nodes" do not compete for one core. `stop` removes every namespace, link, mount and process
# that `start` made (recorded in the state directory).
#
# Runs as root (slurmd must start job steps as the submitting user). Needs Debian's slurm-wlm and
# munge; `start` installs them through slurm/env.sh when they are missing.
set -euo pipefail
LP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
D=${LP_SLURM_DIR:-/tmp/llamapro-slurm}
HOST=$(hostname -s)
say() { echo "local-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

# set_port P: the ports and the names and subnet of the multi-node mode, unique per port (two
# clusters on two ports do not meet)
set_port() {
  PORT=$1
  NET=10.$(( PORT / 256 % 256 )).$(( PORT % 256 ))
  BR=lpbr$PORT
}
# the cluster's port: LP_SLURM_PORT, else what `start` recorded (stop, status, env)
set_port "${LP_SLURM_PORT:-$(cat "$D/port" 2>/dev/null || echo 0)}"

# Is TCP port P free on this machine (its network namespace): no socket listening on it? Read from
# /proc/net/tcp{,6} (state 0A = LISTEN), so nothing beyond the kernel is needed.
port_free() {
  local hex
  hex=$(printf '%04X' "$1")
  ! awk -v p=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# Can cluster number N use port P: P and P+1 free and, for N >= 2 nodes, its bridge name and subnet
# unused here?
port_usable() {
  local p=$1 n=$2 net
  port_free "$p" && port_free $(( p + 1 )) || return 1
  [ "$n" = 1 ] && return 0
  net=10.$(( p / 256 % 256 )).$(( p % 256 ))
  ! ip link show "lpbr$p" >/dev/null 2>&1 && ! ip -4 -o addr 2>/dev/null | grep -q " $net\." &&
    ! ip -4 route 2>/dev/null | grep -q "^$net\."
}
# choose_port N: LP_SLURM_PORT when set (refused when busy), else the first usable even port from a
# start derived from the state directory's name. Called with the start lock held.
choose_port() {
  local n=$1 h i p
  if [ -n "${LP_SLURM_PORT:-}" ]; then
    [[ "$LP_SLURM_PORT" =~ ^[1-9][0-9]*$ ]] && [ "$LP_SLURM_PORT" -lt 65535 ] ||
      die "LP_SLURM_PORT: expected a port number, got '$LP_SLURM_PORT'"
    port_usable "$LP_SLURM_PORT" "$n" ||
      die "port $LP_SLURM_PORT or $((LP_SLURM_PORT + 1)) is in use (another cluster?): unset LP_SLURM_PORT to pick free ones"
    set_port "$LP_SLURM_PORT"; return 0
  fi
  h=$(printf '%s' "$D" | cksum | awk '{print $1}')
  for i in $(seq 0 5999); do
    p=$(( 20000 + 2 * ((h + i) % 6000) ))
    if port_usable "$p" "$n"; then set_port "$p"; return 0; fi
  done
  die "no free pair of ports in 20000-31999 (set LP_SLURM_PORT)"
}

pid_of() { [ -s "$D/$1.pid" ] && cat "$D/$1.pid"; }
alive() { local p; p=$(pid_of "$1") && kill -0 "$p" 2>/dev/null; }
# the slurmd pid files: slurmd.pid (one node) or slurmd.nodeK.pid (SlurmdPidFile with %n)
slurmds() { local f; for f in "$D"/slurmd*.pid; do [ -s "$f" ] && basename "$f" .pid; done; return 0; }
nodes_of() { cat "$D/nodes" 2>/dev/null || echo 1; }

write_conf() {   # N
  local n=$1 cpus mem k per
  # not plain nproc: it answers OMP_NUM_THREADS when that is set (ctest sets it to 1)
  cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  # leave 1 GiB to the system; slurmd refuses a node that reports less memory than configured
  mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
  {
    cat <<EOF
# generated by slurm/local-cluster.sh; state under $D
ClusterName=llamapro-local
SlurmctldPort=$PORT
# job ids of their own per cluster (below Slurm's MaxJobId): MPI keys its session directories and
# shared-memory segments on the job and step ids, and a second cluster's job 1 would share them
FirstJobId=$(( PORT * 1000 + 1 ))
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# our own munged socket: no system-wide munge service needed
AuthInfo=socket=$D/munge/munge.sock
StateSaveLocation=$D/state
SlurmctldPidFile=$D/slurmctld.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# jobs may requeue themselves (scontrol requeue) after a checkpoint
JobRequeue=1
ReturnToService=2
# a killed job's processes get SIGKILL 5 s after SIGTERM (default 30): the tests stay short
KillWait=5
InactiveLimit=0
MinJobAge=600
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
EOF
    if [ "$n" = 1 ]; then
      cat <<EOF
SlurmctldHost=$HOST(127.0.0.1)
SlurmdSpoolDir=$D/spool
SlurmdPidFile=$D/slurmd.pid
SlurmdLogFile=$D/log/slurmd.log
# our own TmpFS: srun --mpi=pmix makes /tmp/spmix_appdir_<uid>_<job>.<step> otherwise, and a second
# cluster's job 1 would find the first one's there
TmpFS=$D/tmp
# no cgroup setup needed; task/affinity binds each task to its cores (srun --cpu-bind), so that
# OMP_PROC_BIND=close in the jobs does not stack every rank's threads on core 0
TaskPlugin=task/affinity
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
EOF
    else
      per=$(( cpus / n )); [ "$per" -ge 1 ] || per=1
      cat <<EOF
# slurmctld listens on the bridge; each node's slurmd in its own namespace, paths per node (%n).
# A per-node TmpFS: srun --mpi=pmix makes the same spmix_appdir_* directory on every node.
SlurmctldHost=$HOST($NET.1)
SlurmdSpoolDir=$D/spool/%n
SlurmdPidFile=$D/slurmd.%n.pid
SlurmdLogFile=$D/log/slurmd.%n.log
TmpFS=$D/tmp-%n
# each slurmd runs pinned to its node's cores (taskset): job steps inherit that set, and task/none
# leaves it alone (task/affinity would bind tasks to cores counted from 0 on every node)
TaskPlugin=task/none
EOF
      for k in $(seq "$n"); do
        echo "NodeName=node$k NodeAddr=$NET.$((10 + k)) CPUs=$per RealMemory=$(( mem / n )) State=UNKNOWN"
      done
    fi
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } > "$D/slurm.conf.tmp"
  mv "$D/slurm.conf.tmp" "$D/slurm.conf"
}

# record NAME in made.list before making it, so that stop removes it even after a failed start
made() { echo "$*" >> "$D/made.list"; }

# The network of N nodes: a bridge with the subnet's .1, and per node a namespace with a veth pair
# (node end renamed eth0, address .(10+k), lo up). No route leaves the subnet.
net_up() {
  local n=$1 k ns cores per c0
  cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
  per=$(( cores / n )); [ "$per" -ge 1 ] || per=1
  command -v ip >/dev/null && command -v nsenter >/dev/null && command -v unshare >/dev/null ||
    die "--nodes $n needs ip (iproute2), nsenter and unshare (util-linux)"
  ip link show "$BR" >/dev/null 2>&1 && die "bridge $BR exists already: another cluster on port $PORT? (stop it, or set LP_SLURM_PORT)"
  # `ip netns add` makes /run/netns a shared bind mount when it is not one: remember whether we did
  mountpoint -q /run/netns 2>/dev/null || made mount /run/netns
  made link "$BR"
  ip link add "$BR" type bridge || die "cannot create bridge $BR"
  ip addr add "$NET.1/24" dev "$BR"
  ip link set "$BR" up
  for k in $(seq "$n"); do
    ns=lp${PORT}n$k
    ip netns list | grep -qw "^$ns" && die "network namespace $ns exists already"
    made netns "$ns"
    ip netns add "$ns" || die "cannot create network namespace $ns"
    made link "lp${PORT}v$k"
    ip link add "lp${PORT}v$k" type veth peer name "lp${PORT}e$k" || die "cannot create veth pair for node$k"
    ip link set "lp${PORT}e$k" netns "$ns"
    ip link set "lp${PORT}v$k" master "$BR" up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "lp${PORT}e$k" name eth0
    ip -n "$ns" addr add "$NET.$((10 + k))/24" dev eth0
    ip -n "$ns" link set eth0 up
    c0=$(( (k - 1) * per % cores ))
    echo "$c0-$(( c0 + per - 1 ))" > "$D/cores.node$k"
  done
}

start() {
  local n=${LP_SLURM_NODES:-1}
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) [ $# -ge 2 ] || die "--nodes: expected a node count"; n=$2; shift 2 ;;
      --nodes=*) n=${1#*=}; shift ;;
      *) die "start: unknown argument '$1' (expected --nodes N)" ;;
    esac
  done
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 64 ] || die "--nodes: expected a count from 1 to 64, got '$n'"
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd starts job steps as the submitting user)"
  if alive slurmctld && [ -n "$(slurmds)" ]; then say "already running (state $D, $(nodes_of) node(s))"; return 0; fi
  [ ! -s "$D/made.list" ] || die "$D holds a cluster that did not stop cleanly: run '$0 stop' first"
  # packages only; building llamapro is not needed to run a cluster
  LP_ENV_FUNCTIONS_ONLY=1 . "$LP_ROOT/slurm/env.sh"
  lp_install_debs $LP_SLURM_DEBS || die "cannot install $LP_SLURM_DEBS"
  # One start at a time on this machine from port choice until the daemons listen (fd 9, closed
  # in every daemon so that they do not keep the lock): two clusters never pick the same ports.
  exec 9< "${BASH_SOURCE[0]}"
  if command -v flock >/dev/null; then flock -w 300 9 || die "another local cluster has been starting for 5 minutes"; fi
  choose_port "$n"
  mkdir -p "$D"/{state,spool,log,munge,tmp}
  echo "$n" > "$D/nodes"
  echo "$PORT" > "$D/port"
  runuser -u munge -- test -x "$D" ||
    die "$D is not searchable by the munge user (munged keeps its socket there): chmod o+x it and its parents"
  # munged runs as the munge user, who owns Debian's /etc/munge/munge.key
  # clients (any user) must reach the socket: the directory is world-searchable, writable by munge only
  chown munge: "$D/munge"; chmod 755 "$D/munge"
  [ -r /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (Debian's munge package creates it)"
  write_conf "$n"
  export SLURM_CONF=$D/slurm.conf
  # from here on a failed start undoes what it made (die exits from inside functions too)
  trap 'rc=$?; [ "$rc" = 0 ] || { say "start failed: removing what it made"; stop >/dev/null || true; }' EXIT
  runuser -u munge -- munged --socket="$D/munge/munge.sock" --pid-file="$D/munge/munged.pid" \
    --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed" 9<&- \
    || die "munged failed to start (log: $D/munge/munged.log)"
  cp "$D/munge/munged.pid" "$D/munged.pid"
  local k names
  if [ "$n" = 1 ]; then
    slurmctld 9<&- || die "slurmctld failed to start (log: $D/log/slurmctld.log)"
    slurmd 9<&- || die "slurmd failed to start (log: $D/log/slurmd.log)"
    names=$HOST
  else
    net_up "$n" || die "network setup failed"
    slurmctld 9<&- || die "slurmctld failed to start (log: $D/log/slurmctld.log)"
    for k in $(seq "$n"); do
      mkdir -p "$D/spool/node$k" "$D/tmp-node$k"
      # nsenter, not `ip netns exec` (which remounts /sys: slurmd then finds no cgroup file system);
      # a new UTS namespace for the hostname, from which slurmd takes its node name
      nsenter --net="/run/netns/lp${PORT}n$k" unshare --uts \
        sh -c "hostname node$k && exec taskset -c $(cat "$D/cores.node$k") slurmd" 9<&- ||
        die "slurmd of node$k failed to start (log: $D/log/slurmd.node$k.log)"
    done
    names=node[1-$n]
  fi
  local i idle
  for i in $(seq 60); do
    idle=$(sinfo -h -t idle -o %D 2>/dev/null | awk '{s += $1} END {print s + 0}')
    if [ "$idle" = "$n" ]; then
      trap - EXIT
      exec 9<&-   # the start lock
      say "up: $n node(s) $names idle, $(sinfo -h -o %c | head -1) CPUs each, ports $PORT-$((PORT + 1)) (state $D)"; return 0
    fi
    sleep 0.5
  done
  say "only ${idle:-0} of $n node(s) idle after 30 s; last slurmctld log lines:"
  tail -5 "$D/log/slurmctld.log" >&2 || true
  exit 1
}

stop_pid() {   # name, seconds to wait before SIGKILL
  local p i
  p=$(pid_of "$1") || return 0
  kill -0 "$p" 2>/dev/null || return 0
  kill "$p" 2>/dev/null || true
  for i in $(seq $(( $2 * 10 ))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  say "$1 (pid $p) did not stop in $2 s: SIGKILL"; kill -9 "$p" 2>/dev/null || true
}

# Undo what net_up recorded, newest first: processes left in a namespace (job steps that outlived
# their slurmd) are killed by pid, then the namespace, the links, and the /run/netns mount.
net_down() {
  local kind name p left=0
  [ -s "$D/made.list" ] || return 0
  while read -r kind name; do
    case "$kind" in
      netns)
        if [ -e "/run/netns/$name" ]; then
          for p in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
          ip netns del "$name" 2>/dev/null || { say "cannot remove network namespace $name"; left=1; }
        fi ;;
      link)
        if ip link show "$name" >/dev/null 2>&1; then
          ip link del "$name" 2>/dev/null || { say "cannot remove link $name"; left=1; }
        fi ;;
      mount)
        # only when no other namespace lives there (someone else's `ip netns add` may share it)
        if mountpoint -q "$name" 2>/dev/null && [ -z "$(ls -A "$name" 2>/dev/null)" ]; then
          umount "$name" 2>/dev/null || { say "cannot unmount $name"; left=1; }
          mountpoint -q "$name" 2>/dev/null || rmdir "$name" 2>/dev/null || true
        fi ;;
    esac
  done < <(tac "$D/made.list")
  [ "$left" = 0 ] && rm -f "$D/made.list"
  return "$left"
}

stop() {
  [ -d "$D" ] || { say "not running (no $D)"; return 0; }
  export SLURM_CONF=$D/slurm.conf
  # running jobs would otherwise survive slurmd as orphans
  if alive slurmctld; then scancel --full -u "$(id -un)" 2>/dev/null || true; sleep 1; fi
  local s rc=0
  for s in $(slurmds); do stop_pid "$s" 10; done
  stop_pid slurmctld 10
  [ -s "$D/munge/munged.pid" ] && cp "$D/munge/munged.pid" "$D/munged.pid"
  stop_pid munged 5
  net_down || rc=1
  if [ "${LP_SLURM_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then say "stopped (state kept in $D)"; else rm -rf "$D"; say "stopped"; fi
  return "$rc"
}

status() {
  export SLURM_CONF=$D/slurm.conf
  local n ok=0
  if alive slurmctld; then echo "slurmctld: running (pid $(pid_of slurmctld))"; else echo "slurmctld: not running"; ok=1; fi
  for n in $(slurmds); do
    if alive "$n"; then echo "$n: running (pid $(pid_of "$n"))"; else echo "$n: not running"; ok=1; fi
  done
  [ -n "$(slurmds)" ] || { echo "slurmd: not running"; ok=1; }
  alive slurmctld && { sinfo; squeue; }
  return "$ok"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$D/slurm.conf" ;;
  *) echo "usage: $0 start [--nodes N]|stop|status|env (state in LP_SLURM_DIR, default /tmp/llamapro-slurm)" >&2; exit 1 ;;
esac
