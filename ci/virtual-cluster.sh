#!/usr/bin/env bash
# A cluster of K hosts on this machine, for trying cclab across hosts and for its tests.
#
# Each host is a set of namespaces of its own: network, UTS (its host name), IPC, PID and mount (its
# own /proc, /dev/shm and /etc/hosts naming every host). So UCX and Open MPI see separate hosts: they
# use shared memory inside a host and the network between hosts, as on a real cluster. The hosts'
# eth0 are veth pairs plugged into a bridge that lives in a network namespace of its own; addresses
# are private (10.77.0.0/24) and exist only inside these namespaces, so nothing on this machine's own
# interfaces changes. Each host computes on CPUs of its own, an equal slice of this machine's (all of
# them where hosts outnumber CPUs), as separate machines do. `--rate` shapes every port with a token
# bucket (tc tbf) in both directions, as a switch port of that speed would.
#
#   ci/virtual-cluster.sh [--name NAME] up K [--rate 1gbit] [--owner PID]
#   ci/virtual-cluster.sh [--name NAME] hosts                       # names, addresses, CPUs
#   ci/virtual-cluster.sh [--name NAME] run HOST CMD...             # HOST: h1 or 1
#   ci/virtual-cluster.sh [--name NAME] launch [-n RANKS_PER_HOST] [--hosts K] [--port P] -- CMD...
#   ci/virtual-cluster.sh [--name NAME] mpirun [-n RANKS_PER_HOST] [--hosts K] -- MPIRUN_ARGS... CMD...
#   ci/virtual-cluster.sh [--name NAME] link down|up HOST          # unplug / plug HOST's cable
#   ci/virtual-cluster.sh [--name NAME] down
#
# `launch` starts one process per rank inside its host's namespaces with cclab's env rendezvous
# (CCLAB_RANK, CCLAB_WORLD_SIZE, CCLAB_STORE on h0, CCLAB_STORE_BIND_ADDR, CCLAB_TOKEN, and
# CCLAB_LOCAL_SIZE so that ranks sharing a host's cores yield while they wait); rank r runs on host
# r / RANKS_PER_HOST. It waits for every rank and exits with the highest status. `mpirun` runs Open
# MPI's mpirun beside the switch (10.77.0.254, like a login node) with an rsh agent that enters the
# hosts' namespaces, binding off (the ranks keep their host's CPUs; binding to cores would put each
# host's rank 0 on this machine's core 0).
# `--owner PID` takes the cluster down once that process has ended (a test's safety net). `up` and
# `launch` undo what they started when interrupted; `down` removes everything `up` made.
# Needs root (namespaces, veth, tc); anything else exits 2 with one line saying why.
set -euo pipefail

SCRIPT=$(readlink -f "$0")
readonly SCRIPT
readonly SUBNET=10.77.0
NAME=${CCLAB_VCLUSTER_NAME:-vc}

die_usage() {
  echo "virtual-cluster: $*" >&2
  exit 2
}

state_dir() { echo "/run/cclab-vcluster/$NAME"; }

require_root_tools() {
  [ "$(id -u)" -eq 0 ] || die_usage "needs root (network, UTS, IPC, PID and mount namespaces, veth pairs, tc)"
  local tool
  for tool in unshare nsenter ip "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die_usage "needs '$tool', which is not installed"
  done
}

# Bytes per second of a tc rate such as 200mbit or 1gbit (bits, SI prefixes, as tc reads them).
rate_bytes_per_s() {
  local rate=$1 number unit
  [[ $rate =~ ^([0-9]+)(bit|kbit|mbit|gbit)$ ]] ||
    die_usage "--rate takes NUMBER{bit,kbit,mbit,gbit} (e.g. 1gbit), got '$rate'"
  number=${BASH_REMATCH[1]}
  unit=${BASH_REMATCH[2]}
  case $unit in
    bit) echo $((number / 8)) ;;
    kbit) echo $((number * 1000 / 8)) ;;
    mbit) echo $((number * 1000000 / 8)) ;;
    gbit) echo $((number * 1000000000 / 8)) ;;
  esac
}

host_count() { cat "$(state_dir)/hosts.count"; }

require_up() { [ -f "$(state_dir)/hosts.count" ] || die_usage "cluster '$NAME' is not up (virtual-cluster.sh up K)"; }

# Host index from "h3" or "3".
host_index() {
  local host=${1#h} count
  count=$(host_count)
  [[ $host =~ ^[0-9]+$ ]] && [ "$host" -lt "$count" ] ||
    die_usage "no host '$1' in cluster '$NAME' (h0..h$((count - 1)))"
  echo "$host"
}

# PID, as this machine sees it, of the first process inside host i's namespaces.
host_pid() { cat "$(state_dir)/h$1.nspid"; }

# The CPUs host i may run on (a list for taskset -c).
host_cpus() { cat "$(state_dir)/h$1.cpus"; }

# The CPUs this process may run on, one per line ("0-2,5" as 0 1 2 5).
machine_cpus() {
  local item
  for item in $(taskset -pc $$ | sed 's/.*: //; s/,/ /g'); do
    if [[ $item == *-* ]]; then seq "${item%-*}" "${item#*-}"; else echo "$item"; fi
  done
}

# Sets ENTER_HOST to the command prefix that runs a command inside host i's namespaces and on its
# CPUs, in the current folder.
enter_host() {
  ENTER_HOST=(taskset -c "$(host_cpus "$1")"
    nsenter --target "$(host_pid "$1")" --net --uts --ipc --pid --mount --wd="$PWD" --)
}

in_host() {
  enter_host "$1"
  shift
  "${ENTER_HOST[@]}" "$@"
}

in_bridge() { nsenter --target "$(cat "$(state_dir)/bridge.nspid")" --net -- "$@"; }

# Starts a process that holds a fresh set of namespaces until it is killed; prints the pid of the
# process inside them (the holder's own pid goes to FILE.pid). --kill-child ends the namespaces'
# first process, and with it every process inside, when the holder dies, even by SIGKILL.
start_holder() {
  local file=$1
  shift
  # bash as the namespaces' first process reaps the orphans that get adopted by it.
  setsid unshare "$@" --fork --kill-child -- bash -c 'while :; do sleep 3600 & wait; done' \
    </dev/null >/dev/null 2>&1 &
  local holder=$!
  echo "$holder" >"$file.pid"
  local inner="" tries=0
  while [ -z "$inner" ]; do
    inner=$(awk '{print $1}' "/proc/$holder/task/$holder/children" 2>/dev/null)
    [ -n "$inner" ] && break
    kill -0 "$holder" 2>/dev/null || die_usage "cannot make namespaces here (unshare $* failed)"
    tries=$((tries + 1))
    [ "$tries" -lt 200 ] || die_usage "namespaces took longer than 10 s to appear"
    sleep 0.05
  done
  # The first process is bash once it has exec'd; wait until it is inside the new namespaces.
  tries=0
  while [ "$(readlink "/proc/$inner/ns/net")" = "$(readlink /proc/self/ns/net)" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 200 ] || die_usage "namespaces took longer than 10 s to appear"
    sleep 0.05
  done
  echo "$inner" >"$file.nspid"
}

cmd_up() {
  local count="" rate="" owner=""
  while [ $# -gt 0 ]; do
    case $1 in
      --rate) rate=${2:?--rate needs a value}; shift 2 ;;
      --owner) owner=${2:?--owner needs a pid}; shift 2 ;;
      *) [ -z "$count" ] || die_usage "up takes one host count, got '$1' too"; count=$1; shift ;;
    esac
  done
  [[ $count =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 200 ] ||
    die_usage "up takes a host count from 1 to 200, got '$count'"
  [ -z "$owner" ] || [[ $owner =~ ^[0-9]+$ ]] || die_usage "--owner takes a pid, got '$owner'"
  local rate_bytes=""
  if [ -n "$rate" ]; then
    rate_bytes=$(rate_bytes_per_s "$rate")
    require_root_tools tc
  else
    require_root_tools
  fi
  local dir
  dir=$(state_dir)
  mkdir -p "$(dirname "$dir")"
  mkdir "$dir" 2>/dev/null || die_usage "cluster '$NAME' is already up (virtual-cluster.sh --name $NAME down)"
  # From here on, anything that fails or interrupts us removes what was made.
  trap 'trap - EXIT INT TERM HUP; cmd_down >/dev/null 2>&1; exit 1' INT TERM HUP
  trap 'status=$?; trap - EXIT INT TERM HUP; [ $status -eq 0 ] || cmd_down >/dev/null 2>&1; exit $status' EXIT

  start_holder "$dir/bridge" --net --pid
  in_bridge ip link set lo up
  in_bridge ip link add br0 type bridge || die_usage "cannot make a bridge here (no bridge support in this kernel?)"
  in_bridge ip link set br0 up
  # The switch's own address, where `mpirun` runs as on a login node.
  in_bridge ip addr add "$SUBNET.254/24" dev br0

  local i hosts_file=$dir/hosts
  {
    echo "127.0.0.1 localhost"
    for ((i = 0; i < count; ++i)); do echo "$SUBNET.$((i + 1)) h$i"; done
  } >"$hosts_file"
  echo "$count" >"$dir/hosts.count"
  # Each host computes on CPUs of its own, as separate machines do: host i gets the i-th of `count`
  # equal slices of this machine's CPUs. Hosts sharing CPUs would take turns on them in whatever
  # pairing the scheduler chose for a run, and a run's times would depend on that pairing. With
  # more hosts than CPUs every host has them all.
  local -a cpus
  mapfile -t cpus < <(machine_cpus)
  local placement=""
  for ((i = 0; i < count; ++i)); do
    local -a slice=("${cpus[@]}")
    if [ "$count" -le "${#cpus[@]}" ]; then
      local first=$((i * ${#cpus[@]} / count)) end=$(((i + 1) * ${#cpus[@]} / count))
      slice=("${cpus[@]:first:end-first}")
    fi
    local list="${slice[*]}"
    echo "${list// /,}" >"$dir/h$i.cpus"
    placement+=" h$i:${list// /,}"
  done
  for ((i = 0; i < count; ++i)); do
    start_holder "$dir/h$i" --net --uts --ipc --pid --mount --mount-proc --propagation private
    local pid
    pid=$(host_pid "$i")
    # The host's port on the switch, and its end (eth0) moved into the host at once.
    in_bridge ip link add "port$i" type veth peer name eth0 netns "/proc/$pid/ns/net" ||
      die_usage "cannot make a veth pair here (no veth support in this kernel?)"
    in_bridge ip link set "port$i" master br0 up
    in_host "$i" hostname "h$i"
    in_host "$i" mount --bind "$hosts_file" /etc/hosts
    # Shared memory is per host, as on separate machines; it goes with the mount namespace.
    in_host "$i" mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    in_host "$i" ip link set lo up
    in_host "$i" ip addr add "$SUBNET.$((i + 1))/24" dev eth0
    in_host "$i" ip link set eth0 up
    if [ -n "$rate" ]; then
      # Bucket of 1 ms at the rate (at least 16 KiB, so a 64 KiB GSO packet passes in a few
      # tokens) and a queue of 5 ms, about a switch port's buffer: TCP sees the rate
      # rather than drops, and traffic both ways at once does not stall behind tens of
      # milliseconds of queue (docs/interconnect.md).
      local burst=$((rate_bytes / 1000))
      [ "$burst" -ge 16384 ] || burst=16384
      in_host "$i" tc qdisc add dev eth0 root tbf rate "$rate" burst "$burst" latency 5ms ||
        die_usage "cannot shape links here (no tbf queueing discipline in this kernel?)"
      in_bridge tc qdisc add dev "port$i" root tbf rate "$rate" burst "$burst" latency 5ms
    fi
  done
  echo "${rate:-unshaped}" >"$dir/rate"
  if [ -n "$owner" ]; then
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done; exec "$3" --name "$4" down' \
      watcher "$owner" "$dir" "$SCRIPT" "$NAME" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watcher.pid"
  fi
  # Every host reaches every other before we say the cluster is up.
  for ((i = 1; i < count; ++i)); do
    local tries=0
    # A connection refused by h$i's kernel (nothing listens on port 9) proves the path works.
    until [[ $(in_host 0 timeout 2 bash -c "exec 3<>/dev/tcp/h$i/9" 2>&1) == *refused* ]]; do
      tries=$((tries + 1))
      [ "$tries" -lt 5 ] || { echo "virtual-cluster: h0 cannot reach h$i" >&2; exit 1; }
      sleep 0.2
    done
  done
  echo "virtual-cluster '$NAME': $count hosts h0..h$((count - 1)) on $SUBNET.0/24," \
    "links ${rate:-unshaped}, CPUs$placement"
}

cmd_down() {
  local dir pid file
  dir=$(state_dir)
  [ -d "$dir" ] || { echo "virtual-cluster '$NAME' is not up"; return 0; }
  if [ -f "$dir/watcher.pid" ]; then
    pid=$(cat "$dir/watcher.pid")
    # The watcher runs this very command (exec) when its owner has ended: it must not kill itself.
    [ "$pid" = "$$" ] || kill "$pid" 2>/dev/null || true
  fi
  # Killing a namespace's first process kills everything inside; the holders go with it. Once a
  # network namespace has no process left, the kernel deletes its veth ends, and both ends with it.
  local -a pids=()
  for file in "$dir"/*.nspid "$dir"/*.pid; do
    [ -f "$file" ] || continue
    [ "$file" = "$dir/watcher.pid" ] && continue
    pid=$(cat "$file")
    pids+=("$pid")
    kill -KILL "$pid" 2>/dev/null || true
  done
  local tries=0
  for pid in "${pids[@]}"; do
    while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] && [ $tries -lt 100 ]; do
      sleep 0.05
      tries=$((tries + 1))
    done
  done
  rm -rf "$dir"
  rmdir "$(dirname "$dir")" 2>/dev/null || true
  echo "virtual-cluster '$NAME' is down"
}

cmd_hosts() {
  local count i
  count=$(host_count)
  for ((i = 0; i < count; ++i)); do echo "h$i $SUBNET.$((i + 1)) cpus $(host_cpus "$i")"; done
  echo "links: $(cat "$(state_dir)/rate")"
}

cmd_run() {
  [ $# -ge 2 ] || die_usage "run takes HOST CMD..."
  local index
  index=$(host_index "$1")
  shift
  in_host "$index" "$@"
}

cmd_link() {
  [ $# -eq 2 ] || die_usage "link takes down|up HOST"
  local state=$1 index
  [ "$state" = down ] || [ "$state" = up ] || die_usage "link takes down or up, got '$state'"
  index=$(host_index "$2")
  # The switch's side: the host's eth0 loses carrier, and what it sends is dropped, as with a cable
  # pulled out; the host gets no error, so TCP only finds out by retransmitting.
  in_bridge ip link set "port$index" "$state"
}

# Parses [-n RANKS_PER_HOST] [--hosts K] [--port P] -- ... into globals.
parse_job_flags() {
  PER_HOST=1
  JOB_HOSTS=$(host_count)
  STORE_PORT=29500
  while [ $# -gt 0 ]; do
    case $1 in
      -n) PER_HOST=${2:?-n needs a value}; shift 2 ;;
      --hosts) JOB_HOSTS=${2:?--hosts needs a value}; shift 2 ;;
      --port) STORE_PORT=${2:?--port needs a value}; shift 2 ;;
      --) shift; break ;;
      *) die_usage "unknown flag '$1' (the command goes after --)" ;;
    esac
  done
  [[ $PER_HOST =~ ^[0-9]+$ ]] && [ "$PER_HOST" -ge 1 ] ||
    die_usage "-n takes ranks per host (1 or more), got '$PER_HOST'"
  [[ $JOB_HOSTS =~ ^[0-9]+$ ]] && [ "$JOB_HOSTS" -ge 1 ] && [ "$JOB_HOSTS" -le "$(host_count)" ] ||
    die_usage "--hosts takes 1 to $(host_count), got '$JOB_HOSTS'"
  [[ $STORE_PORT =~ ^[0-9]+$ ]] && [ "$STORE_PORT" -ge 1 ] && [ "$STORE_PORT" -le 65535 ] ||
    die_usage "--port takes 1 to 65535"
  [ $# -ge 1 ] || die_usage "no command after --"
  JOB_COMMAND=("$@")
}

cmd_launch() {
  parse_job_flags "$@"
  local world=$((PER_HOST * JOB_HOSTS)) token=${CCLAB_TOKEN:-}
  [ -n "$token" ] || token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  local -a ranks=()
  # Each rank leads a process group of its own, so that an interrupt stops the rank inside the
  # namespaces too (nsenter does not pass signals on to the process it started).
  stop_ranks() {
    local signal=$1 pid
    for pid in "${ranks[@]}"; do kill "-$signal" -- "-$pid" 2>/dev/null || true; done
  }
  trap 'stop_ranks INT; sleep 2; stop_ranks KILL; exit 130' INT
  trap 'stop_ranks TERM; sleep 2; stop_ranks KILL; exit 143' TERM HUP
  # cclab counts this machine's CPUs, not its host's slice of them. Where ranks outnumber CPUs (a
  # host has more ranks than CPUs, or the hosts share them) each rank is told the whole job as its
  # local size, more than the CPUs it counts, so it yields while it waits: a spinning rank would
  # starve the ranks that share its CPU.
  local local_size=$PER_HOST
  [ "$world" -le "$(nproc)" ] || local_size=$world
  local rank
  for ((rank = 0; rank < world; ++rank)); do
    enter_host $((rank / PER_HOST))
    CCLAB_RANK=$rank CCLAB_WORLD_SIZE=$world CCLAB_LOCAL_SIZE=$local_size CCLAB_TOKEN=$token \
      CCLAB_STORE=h0:$STORE_PORT CCLAB_STORE_BIND_ADDR=$SUBNET.1 \
      setsid "${ENTER_HOST[@]}" "${JOB_COMMAND[@]}" </dev/null &
    ranks+=($!)
  done
  local worst=0 status pid
  for pid in "${ranks[@]}"; do
    status=0
    wait "$pid" || status=$?
    [ "$status" -le "$worst" ] || worst=$status
  done
  return "$worst"
}

# The rsh agent mpirun calls as `AGENT HOST COMMAND...` (HOST: an address or name of a host): runs
# the command line in HOST's namespaces, through a shell as ssh would.
cmd_agent() {
  [ $# -ge 2 ] || die_usage "agent takes HOST COMMAND..."
  local index host=$1
  [[ $host != $SUBNET.* ]] || host=$((${host##*.} - 1))
  index=$(host_index "$host")
  shift
  cd /
  in_host "$index" /bin/sh -c "$*"
}

cmd_mpirun() {
  parse_job_flags "$@"
  command -v mpirun >/dev/null 2>&1 || die_usage "needs Open MPI's mpirun, which is not installed"
  local placement="" i
  for ((i = 0; i < JOB_HOSTS; ++i)); do placement+="${placement:+,}$SUBNET.$((i + 1)):$PER_HOST"; done
  # mpirun runs on the switch's namespace, as on a login node: every host is remote to it, so it
  # starts a daemon on each through the agent (which must enter the hosts from this machine's own
  # PID namespace). Its daemons and the TCP BTL keep to the cluster's network; inside a host, vader.
  # With more ranks in all than this machine's cores, Open MPI and cclab's ranks yield while they
  # wait, as launch's do (each host alone does not look oversubscribed to either).
  local world=$((PER_HOST * JOB_HOSTS))
  local -a sharing=()
  [ "$world" -le "$(nproc)" ] || sharing=(--mca mpi_yield_when_idle 1 -x "CCLAB_LOCAL_SIZE=$world")
  in_bridge mpirun --host "$placement" -np "$world" --bind-to none "${sharing[@]}" \
    --mca plm_rsh_agent "$SCRIPT --name $NAME agent" \
    --mca oob_tcp_if_include "$SUBNET.0/24" --mca btl_tcp_if_include "$SUBNET.0/24" "${JOB_COMMAND[@]}"
}

main() {
  while [ $# -gt 0 ]; do
    case $1 in
      --name)
        NAME=${2:?--name needs a value}
        [[ $NAME =~ ^[A-Za-z0-9_-]{1,32}$ ]] || die_usage "--name takes letters, digits, - and _ (at most 32)"
        shift 2
        ;;
      -h | --help) sed -n '2,/^set -euo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) break ;;
    esac
  done
  local command=${1:-}
  [ $# -eq 0 ] || shift
  case $command in
    up) cmd_up "$@" ;;
    down) require_root_tools; cmd_down ;;
    hosts) require_up; cmd_hosts ;;
    run) require_root_tools; require_up; cmd_run "$@" ;;
    launch) require_root_tools; require_up; cmd_launch "$@" ;;
    mpirun) require_root_tools; require_up; cmd_mpirun "$@" ;;
    agent) require_up; cmd_agent "$@" ;;
    link) require_root_tools; require_up; cmd_link "$@" ;;
    *) die_usage "usage: virtual-cluster.sh [--name NAME] up K [--rate R] [--owner PID] | hosts | run HOST CMD... |" \
      "launch [-n N] [--hosts K] -- CMD... | mpirun [-n N] [--hosts K] -- ARGS... | link down|up HOST | down" ;;
  esac
}

main "$@"
