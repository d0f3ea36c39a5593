#!/usr/bin/env bash
# A throw-away SLURM cluster on this machine for tests that submit to a real SLURM.
#
#   tests/slurm/cluster.sh up [--accounting] [--nodes N]
#                                     install (if missing), configure, start, wait for idle
#   tests/slurm/cluster.sh down       stop only the daemons this script started (every node's)
#   tests/slurm/cluster.sh status     print the nodes' sinfo lines; exit 1 if not up
#   tests/slurm/cluster.sh env        print the export line clients need
#
# Without --nodes: one node, this machine under its own name with all its CPUs.
# --nodes N: N emulated nodes n1..nN of one CPU each, one `slurmd -N nK` daemon per
# node on its own port (Debian's SLURM is built with multiple-slurmd support), all
# on this machine, sharing munge and one controller: jobs spread over nodes, and a
# node can be set down (`scontrol update nodename=n2 state=down reason=...`) and
# back (`state=resume`) while the others run. ReturnToService=1 then, so a node set
# down stays down until resumed.
#
# Needs root, Debian/Ubuntu packages (slurm-wlm, munge; mariadb-server and
# slurmdbd for --accounting). Works without systemd or cgroups. Everything lives
# under $DLRUN_SLURM_DIR (default /tmp/dlrun-slurm): the config, spool, logs and
# the pids of the daemons started here. /etc/slurm is never written: clients must
# run with SLURM_CONF=$DLRUN_SLURM_DIR/slurm.conf (`cluster.sh env` prints it).
#
# Timers short for tests: KillWait=5 (SIGTERM..SIGKILL), MinJobAge=60 (a finished job
# stays in `squeue -t all` / `scontrol show job` about a minute), AuthInfo cred_expire=10
# (a requeued job starts again ~12 s later instead of ~150 s), scheduler passes every
# 1-2 s. JobRequeue=1, DefMemPerCPU=512 so jobs without --mem share the node. SLURM
# checks time limits every 30 s: a 1-minute job is killed 60-90 s after it starts and
# its --signal comes up to ~30 s earlier than asked. The state dir survives `down`
# (job ids continue); `rm -rf $DLRUN_SLURM_DIR` after `down` for a blank cluster.
set -euo pipefail

STATE=${DLRUN_SLURM_DIR:-/tmp/dlrun-slurm}
CONF=$STATE/slurm.conf
DBDCONF=$STATE/slurmdbd.conf
CLUSTER=dlruntest
CTLD_PORT=${DLRUN_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${DLRUN_SLURM_SLURMD_PORT:-6818}
DBD_PORT=${DLRUN_SLURM_DBD_PORT:-6819}
DB_PORT=${DLRUN_SLURM_DB_PORT:-3307}
NODE_PORT=${DLRUN_SLURM_NODE_PORT:-17001} # emulated node K listens on NODE_PORT+K-1
NODE_MB=${DLRUN_SLURM_NODE_MB:-6000}      # memory an emulated node offers (at least dlrun's 4 GB)
UP_TIMEOUT=${DLRUN_SLURM_UP_TIMEOUT:-60}
export SLURM_CONF=$CONF

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { [[ -n ${QUIET:-} ]] || echo "cluster.sh: $*" >&2; }

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
# The pid recorded for a daemon, if that process still runs the same program
# (`slurmd.n2`: the slurmd of emulated node n2).
recorded_pid() {
    local name=$1 pid
    [[ -f $STATE/pids/$name ]] || return 1
    pid=$(<"$STATE/pids/$name")
    alive "$pid" || return 1
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *"${name%%.*}"* ]] || return 1
    echo "$pid"
}
# The slurmd daemons recorded: `slurmd`, or `slurmd.n1 slurmd.n2 ...`.
slurmd_names() {
    local f
    for f in "$STATE"/pids/slurmd "$STATE"/pids/slurmd.*; do [[ -e $f ]] && echo "${f##*/}"; done
    return 0
}
STARTED=()
record() { mkdir -p "$STATE/pids"; echo "$2" >"$STATE/pids/$1"; STARTED+=("$1"); }

# Wait (bounded) until a pid file names a live process; print the pid.
wait_pidfile() {
    local file=$1 secs=$2 pid i
    for ((i = 0; i < secs * 10; i++)); do
        if [[ -s $file ]]; then
            pid=$(<"$file")
            if alive "$pid"; then echo "$pid"; return 0; fi
        fi
        sleep 0.1
    done
    return 1
}

# Every node's state in one word, or `mixed: <states>` when they differ.
nodes_state() {
    local states
    states=$(sinfo -h -N -o '%t' 2>/dev/null | sort -u | tr '\n' ' ')
    states=${states% }
    if [[ $states == *" "* ]]; then echo "mixed: $states"; else echo "$states"; fi
}
# The node names of the written config (one per slurmd).
node_names() { cat "$STATE/nodes" 2>/dev/null || hostname -s; }

install_packages() {
    local pkgs=("$@") missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]}"
    command -v apt-get >/dev/null || die "no apt-get to install ${missing[*]}"
    log "installing ${missing[*]}"
    # No service may start during the install (no systemd here; we start them ourselves).
    local made_policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local apt=(apt-get -qq -o DPkg::Lock::Timeout=120 -o Dpkg::Use-Pty=0)
    local rc=0
    # Package lists first only if the candidates are unknown or stale (one update at most).
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" \
        >"$STATE/apt.log" 2>&1; then
        { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
            "${missing[@]}"; } >>"$STATE/apt.log" 2>&1 || rc=$?
    fi
    [[ -z $made_policy ]] || rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (see $STATE/apt.log: $(tail -n1 "$STATE/apt.log"))"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0 # a munged already answers (ours or the admin's)
    fi
    [[ -s /etc/munge/munge.key ]] || {
        if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key; else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    }
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid --force \
        >>"$STATE/log/munged.out" 2>&1 9>&- || die "munged did not start (see $STATE/log/munged.out)"
    local pid i
    pid=$(wait_pidfile /run/munge/munged.pid 10) || die "munged wrote no pid file"
    record munged "$pid"
    for ((i = 0; i < 50; i++)); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "munged runs (pid $pid) but munge -n | unmunge fails"
}

write_conf() {
    local accounting=$1 nodes=$2 host node mem
    host=$(hostname -s)
    # slurmd's own view of the hardware, so the node is not drained for a mismatch;
    # RealMemory a bit under the total (slurmd drains a node that reports less).
    node=$(slurmd -C | head -n1) || die "slurmd -C failed"
    [[ $node == NodeName=* ]] || die "unexpected slurmd -C output: $node"
    mem=$(free -m | awk '/^Mem:/ {print $2}')
    mem=$((mem - mem / 20 - 256))
    ((mem > 256)) || die "too little memory for a node ($mem MB)"
    node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$mem/; s/^NodeName=[^ ]+/NodeName=$host/" <<<"$node")
    node="$node NodeAddr=127.0.0.1 State=UNKNOWN"
    local names=$host rts=2 slurmd_lines="SlurmdPort=$SLURMD_PORT
SlurmdSpoolDir=$STATE/spool/d
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmdLogFile=$STATE/log/slurmd.log"
    if ((nodes > 0)); then
        ((mem >= NODE_MB)) || die "too little memory for nodes of $NODE_MB MB ($mem MB)"
        names="n[1-$nodes]"
        node="NodeName=$names NodeHostname=$host NodeAddr=127.0.0.1"
        node="$node Port=$NODE_PORT-$((NODE_PORT + nodes - 1)) CPUs=1 RealMemory=$NODE_MB State=UNKNOWN"
        slurmd_lines="SlurmdSpoolDir=$STATE/spool/d-%n
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmdLogFile=$STATE/log/slurmd-%n.log"
        rts=1
    fi
    local acct_lines="AccountingStorageType=accounting_storage/none"
    if [[ $accounting == 1 ]]; then
        acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT"
    fi
    cat >"$CONF.new" <<EOF
# Written by tests/slurm/cluster.sh: a test cluster on one machine, no systemd/cgroups.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SlurmctldPort=$CTLD_PORT
StateSaveLocation=$STATE/spool/ctld
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
$slurmd_lines
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$acct_lines
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.log
SchedulerType=sched/backfill
# Schedule at once and often: a freed CPU is reused within a second, a job whose
# BeginTime passed (a requeue) starts within seconds rather than at the next 30-60 s pass.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000,sched_interval=2,bf_interval=5
# A requeued job may start again cred_expire+1 s after the requeue (default 121 s).
AuthInfo=cred_expire=10
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=512
ReturnToService=$rts
JobRequeue=1
MaxArraySize=1001
InactiveLimit=0
KillWait=5
MinJobAge=60
OverTimeLimit=0
Waittime=0
SlurmdTimeout=30
MessageTimeout=10
$node
PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP
EOF
}

start_accounting() {
    install_packages slurmdbd mariadb-server
    # MariaDB private to this cluster: its own datadir, socket and TCP port on 127.0.0.1;
    # files under a mysql-owned folder (mariadbd runs as mysql and writes its pid there).
    local my=$STATE/mysql pid i
    mkdir -p "$my" && chown mysql:mysql "$my"
    if ! recorded_pid mariadbd >/dev/null; then
        if [[ ! -d $my/data/mysql ]]; then
            mariadb-install-db --user=mysql --datadir="$my/data" --auth-root-authentication-method=socket \
                --skip-test-db >"$STATE/log/mariadb-install.out" 2>&1 ||
                die "mariadb-install-db failed (see $STATE/log/mariadb-install.out)"
        fi
        rm -f "$my/mariadbd.pid"
        setsid mariadbd --no-defaults --user=mysql --datadir="$my/data" --socket="$my/mysqld.sock" \
            --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$my/mariadbd.pid" \
            --log-error="$STATE/log/mariadb.err" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 9>&- &
        pid=$(wait_pidfile "$my/mariadbd.pid" 60) || die "mariadbd did not start (see $STATE/log/mariadb.err)"
        record mariadbd "$pid"
    fi
    local sql=(mariadb --no-defaults --socket="$my/mysqld.sock" -uroot)
    for ((i = 0; i < 150; i++)); do
        "${sql[@]}" -e 'select 1' >/dev/null 2>&1 && break
        sleep 0.2
    done
    "${sql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'dlrun-test';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" 2>"$STATE/log/mariadb-sql.err" ||
        die "mariadbd does not answer on $my/mysqld.sock ($(tail -n1 "$STATE/log/mariadb-sql.err"))"
    (
        umask 077
        cat >"$DBDCONF" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=dlrun-test
StorageLoc=slurm_acct_db
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
EOF
    )
    if ! recorded_pid slurmdbd >/dev/null; then
        rm -f "$STATE/run/slurmdbd.pid"
        # slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF.
        slurmdbd >>"$STATE/log/slurmdbd.out" 2>&1 9>&- ||
            die "slurmdbd did not start: $(tail -n1 "$STATE/log/slurmdbd.log" 2>/dev/null)"
        pid=$(wait_pidfile "$STATE/run/slurmdbd.pid" 20) ||
            die "slurmdbd exited: $(tail -n1 "$STATE/log/slurmdbd.log" 2>/dev/null)"
        record slurmdbd "$pid"
    fi
    local have=
    for ((i = 0; i < 100; i++)); do
        have=$(sacctmgr -n -P list cluster format=cluster 2>/dev/null) && break
        sleep 0.2
    done
    grep -qx "$CLUSTER" <<<"$have" || sacctmgr -i add cluster "$CLUSTER" >>"$STATE/log/sacctmgr.out" 2>&1 ||
        die "sacctmgr add cluster failed: $(tail -n1 "$STATE/log/slurmdbd.log" 2>/dev/null)"
}

is_up() {
    [[ -f $CONF ]] && recorded_pid slurmctld >/dev/null || return 1
    local d names
    names=$(slurmd_names)
    [[ -n $names ]] || return 1
    for d in $names; do recorded_pid "$d" >/dev/null || return 1; done
    [[ $(nodes_state) =~ ^(mixed: )?((idle|mix|alloc|comp) ?)+$ ]]
}

cmd_up() {
    local accounting=0 nodes=0
    while (($#)); do
        case $1 in
        --accounting) accounting=1 ;;
        --nodes)
            [[ ${2:-} =~ ^[1-9][0-9]?$ ]] || die "--nodes takes a number of nodes from 1 to 99, not '${2:-}'"
            nodes=$2
            shift
            ;;
        *) die "unknown option '$1' (up takes --accounting and --nodes N)" ;;
        esac
        shift
    done
    [[ $(id -u) == 0 ]] || die "must run as root"
    mkdir -p "$STATE"/{pids,log,run,spool/ctld,spool/d}
    install_packages slurm-wlm munge
    write_conf "$accounting" "$nodes" # to $CONF.new
    if is_up && cmp -s "$CONF.new" "$CONF"; then
        rm -f "$CONF.new"
        log "already up: $(sinfo -h -N -o '%N %t %c cpus %m MB')"
        return 0
    fi
    # Partly up, or up with another config (accounting or not, an older script): restart ours.
    stop_slurm_daemons
    ((accounting)) || stop_daemons 30 mariadbd
    for port in "$CTLD_PORT" "$SLURMD_PORT"; do
        if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then
            die "port $port is taken by a daemon this script did not start (another SLURM?); set DLRUN_SLURM_CTLD_PORT/DLRUN_SLURM_SLURMD_PORT"
        fi
    done
    # If this `up` fails half-way, stop what it started, so that a retry starts clean.
    trap 'if (($? != 0)); then QUIET=1 stop_slurm_daemons; QUIET=1 stop_daemons 10 "${STARTED[@]}"; fi' EXIT
    local i
    for ((i = 0; i < nodes; i++)); do
        port=$((NODE_PORT + i))
        if ss -ltnH "sport = :$port" 2>/dev/null | grep -q .; then
            die "port $port is taken by a daemon this script did not start; set DLRUN_SLURM_NODE_PORT"
        fi
    done
    mv "$CONF.new" "$CONF"
    if ((nodes > 0)); then seq -f 'n%g' 1 "$nodes" >"$STATE/nodes"; else hostname -s >"$STATE/nodes"; fi
    start_munge
    ((accounting)) && start_accounting
    local pid
    rm -f "$STATE"/run/slurmctld.pid "$STATE"/run/slurmd*.pid
    slurmctld -f "$CONF" >>"$STATE/log/slurmctld.out" 2>&1 9>&- ||
        die "slurmctld did not start: $(tail -n1 "$STATE/log/slurmctld.log" 2>/dev/null)"
    pid=$(wait_pidfile "$STATE/run/slurmctld.pid" 20) ||
        die "slurmctld exited: $(tail -n1 "$STATE/log/slurmctld.log" 2>/dev/null)"
    record slurmctld "$pid"
    if ((nodes > 0)); then
        local n
        for n in $(node_names); do
            slurmd -f "$CONF" -N "$n" >>"$STATE/log/slurmd-$n.out" 2>&1 9>&- ||
                die "slurmd -N $n did not start: $(tail -n1 "$STATE/log/slurmd-$n.log" 2>/dev/null)"
            pid=$(wait_pidfile "$STATE/run/slurmd-$n.pid" 20) ||
                die "slurmd -N $n exited: $(tail -n1 "$STATE/log/slurmd-$n.log" 2>/dev/null)"
            record "slurmd.$n" "$pid"
        done
    else
        slurmd -f "$CONF" >>"$STATE/log/slurmd.out" 2>&1 9>&- ||
            die "slurmd did not start: $(tail -n1 "$STATE/log/slurmd.log" 2>/dev/null)"
        pid=$(wait_pidfile "$STATE/run/slurmd.pid" 20) ||
            die "slurmd exited: $(tail -n1 "$STATE/log/slurmd.log" 2>/dev/null)"
        record slurmd "$pid"
    fi
    local st='' all
    all=$(node_names | paste -sd, -)
    for ((i = 0; i < UP_TIMEOUT * 5; i++)); do
        st=$(nodes_state)
        [[ $st =~ ^(idle|mix|alloc)$ ]] && break
        # A node left drained/down by an earlier run of this test cluster: give it back.
        if [[ $st =~ (drain|down|drng|fail) ]] && ((i % 25 == 24)); then
            scontrol update nodename="$all" state=resume >/dev/null 2>&1 || true
        fi
        sleep 0.2
    done
    [[ $st =~ ^(idle|mix|alloc)$ ]] ||
        die "nodes $all not idle after ${UP_TIMEOUT}s (state '${st:-no answer}'; see $STATE/log/slurmd*.log, slurmctld.log)"
    ((accounting == 0)) || sacct -n -X -S now >/dev/null 2>&1 || die "sacct does not answer"
    trap - EXIT
    log "up: $(sinfo -h -N -o '%N %t %c cpus %m MB'); clients need: export SLURM_CONF=$CONF"
}

# Stop the named daemons (those whose pid we recorded) together: SIGTERM, wait, SIGKILL.
stop_daemons() { # secs name...
    local secs=$1 d pid i j
    shift
    local names=() pids=()
    for d in "$@"; do
        if pid=$(recorded_pid "$d"); then
            kill -TERM "$pid" 2>/dev/null && names+=("$d") && pids+=("$pid")
        fi
        rm -f "$STATE/pids/$d"
    done
    for ((i = 0; i < secs * 10; i++)); do
        local left=0
        for pid in "${pids[@]}"; do alive "$pid" && left=1; done
        ((left)) || return 0
        sleep 0.1
    done
    for j in "${!pids[@]}"; do
        if alive "${pids[j]}"; then
            log "${names[j]} (pid ${pids[j]}) ignored SIGTERM for ${secs}s; SIGKILL"
            kill -KILL "${pids[j]}" 2>/dev/null || true
        fi
    done
}

stop_slurm_daemons() {
    local i
    # Jobs first, so that no slurmstepd outlives slurmd.
    if recorded_pid slurmctld >/dev/null; then
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 150; i++)); do # KillWait (5 s) plus margin
                [[ -z $(squeue -h -t R,CG,S -o %i 2>/dev/null) ]] && break
                sleep 0.1
            done
        fi
    fi
    # shellcheck disable=SC2046 # one word per daemon
    stop_daemons 20 $(slurmd_names) slurmctld slurmdbd
}

cmd_down() {
    stop_slurm_daemons
    stop_daemons 30 mariadbd munged
    log "down"
}

cmd_status() {
    if is_up; then
        local acct=no
        grep -q '^AccountingStorageType=accounting_storage/slurmdbd' "$CONF" && acct=yes
        echo "up: $(sinfo -h -N -o '%N %P %t cpus=%c mem=%m') accounting=$acct SLURM_CONF=$CONF"
    else
        echo "down${CONF:+ (SLURM_CONF=$CONF)}"
        return 1
    fi
}

# One up/down at a time (parallel test workers may call `up` together). Daemons are
# started with fd 9 closed, so that none of them keeps the lock.
lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/.lock"
    flock -w 300 9 || die "another cluster.sh up/down holds $STATE/.lock for 300 s"
}

case ${1:-} in
up) shift; lock; cmd_up "$@" ;;
down) lock; cmd_down ;;
status) cmd_status ;;
env) echo "export SLURM_CONF=$CONF" ;;
*) die "usage: $0 up [--accounting] [--nodes N] | down | status | env" ;;
esac
