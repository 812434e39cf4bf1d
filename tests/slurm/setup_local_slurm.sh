#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine for tests/test_slurm.py (and CI).
#
#   sudo bash tests/slurm/setup_local_slurm.sh     # idempotent; stop with tests/slurm/stop_local_slurm.sh
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge if missing (no systemd needed), writes
# /etc/slurm/slurm.conf for one node (this host, CPUs = nproc, RealMemory = MemTotal minus a margin,
# partition `debug`), starts munged, slurmctld and slurmd in daemon mode (pid files under /run) and waits until
# `sinfo` shows the node idle. Exits 0 when the node is idle, non-zero with a message saying what failed.
#
# There is no accounting database (AccountingStorageType=accounting_storage/none), so `sacct` cannot list jobs:
# Snakemake's Slurm executor must poll with `squeue` (`--slurm-status-command squeue`). MinJobAge is one hour,
# so finished jobs stay visible to `squeue --states=all` and `scontrol show job` long enough for that; every
# finished job is also appended to the job-completion log (JobCompType=jobcomp/filetxt, see JOBCOMP below).
#
# Environment: SLURM_SETUP_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
JOBCOMP=$LOG_DIR/jobcomp.log
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
TIMEOUT=${SLURM_SETUP_TIMEOUT:-60}
MARKER="# Written by skycut tests/slurm/setup_local_slurm.sh"

say() { echo "setup_local_slurm: $*"; }
fail() {
    echo "setup_local_slurm: FAILED: $*" >&2
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [ -s "$f" ]; then echo "--- last lines of $f ---" >&2; tail -n 15 "$f" >&2; fi
    done
    exit 1
}
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages and starts daemons)"
start_time=$(date +%s)

# --- 1. packages -------------------------------------------------------------------------------------------
PACKAGES="slurmctld slurmd slurm-client munge"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null || fail "apt-get not found; install$missing by hand"
    say "installing$missing ..."
    # No init system here: keep the packages' postinst scripts from trying to start the services.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    }
    ok=1
    apt_install >/tmp/skycut-slurm-apt.log 2>&1 || {
        say "apt-get install failed; running apt-get update and retrying"
        apt-get update -q >>/tmp/skycut-slurm-apt.log 2>&1 || true
        apt_install >>/tmp/skycut-slurm-apt.log 2>&1 || ok=0
    }
    [ "$policy_added" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
    if [ "$ok" -ne 1 ]; then
        tail -n 20 /tmp/skycut-slurm-apt.log >&2
        fail "apt-get install$missing failed (full log: /tmp/skycut-slurm-apt.log)"
    fi
    say "installed$missing in $(( $(date +%s) - start_time )) s"
fi
for b in slurmctld slurmd sinfo sbatch squeue scontrol munged munge unmunge; do
    command -v "$b" >/dev/null || fail "'$b' not found after installing $PACKAGES"
done

# --- 2. slurm.conf -----------------------------------------------------------------------------------------
HOST=$(hostname -s)
[ -n "$HOST" ] || fail "hostname -s is empty"
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Leave 10% (at least 512 MB) for the OS and the daemons.
MARGIN=$(( MEM_MB / 10 > 512 ? MEM_MB / 10 : 512 ))
REAL_MEM=$(( MEM_MB - MARGIN ))
[ "$REAL_MEM" -ge 1000 ] || fail "only $MEM_MB MB of memory; need more than $((1000 + MARGIN)) MB"

new_conf=$(cat <<EOF
$MARKER: a one-node cluster for tests.
ClusterName=skycut-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# The node is this machine as configured below, whatever slurmd detects (containers, VMs).
SlurmdParameters=config_overrides
ReturnToService=2
# Keep finished jobs in slurmctld for an hour: without a database, squeue/scontrol are the only job status.
MinJobAge=3600
# No slurmdbd: no accounting database; finished jobs are appended to a text file instead.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)

mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR"
conf_changed=0
if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    say "moving the existing $CONF (not ours) to $CONF.skycut-backup"
    mv "$CONF" "$CONF.skycut-backup"
fi
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
    printf '%s\n' "$new_conf" >"$CONF"
    conf_changed=1
    say "wrote $CONF (node $HOST: CPUs=$CPUS RealMemory=$REAL_MEM MB, partition debug)"
fi

# --- 3. munge ----------------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! running "$MUNGE_PID"; then
    say "starting munged"
    runuser -u munge -- munged --pid-file="$MUNGE_PID" || fail "munged did not start"
fi
for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n | unmunge >/dev/null 2>&1 || fail "munge does not work (munge -n | unmunge)"

# --- 4. slurmctld and slurmd -------------------------------------------------------------------------------
if [ "$conf_changed" -eq 1 ]; then
    # A new configuration: restart whichever of our daemons is running (by pid file).
    for pf in "$SLURMD_PID" "$CTLD_PID"; do
        if running "$pf"; then
            say "restarting $(basename "$pf" .pid) for the new configuration"
            kill "$(cat "$pf")"
            for _ in $(seq 40); do running "$pf" || break; sleep 0.25; done
            running "$pf" && fail "$(basename "$pf" .pid) (pid $(cat "$pf")) did not stop"
        fi
    done
fi
if ! running "$CTLD_PID"; then
    say "starting slurmctld"
    slurmctld || fail "slurmctld did not start"
fi
for _ in $(seq 40); do scontrol ping >/dev/null 2>&1 && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q UP || fail "slurmctld does not answer (scontrol ping)"
if ! running "$SLURMD_PID"; then
    say "starting slurmd"
    slurmd -N "$HOST" || fail "slurmd did not start"
fi

# --- 5. wait for the node ----------------------------------------------------------------------------------
state=""
deadline=$(( $(date +%s) + TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    state=$(sinfo -h -N -n "$HOST" -o "%t" 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle|mix|alloc) break ;;
        down*|drain*|drng*)
            # e.g. left down by an earlier run that was killed; the node is ours, bring it back.
            scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$state" in
    idle|mix|alloc) ;;
    *) fail "node $HOST is '${state:-not listed}' after ${TIMEOUT}s (sinfo -N); see scontrol show node $HOST" ;;
esac
sinfo
say "Slurm is up: node $HOST is $state in partition debug ($(( $(date +%s) - start_time )) s)"
