#!/usr/bin/env bash
# Stop the daemons tests/slurm/setup_local_slurm.sh started (by their pid files; nothing else is killed).
# Jobs still queued or running are cancelled first. Leaves packages and /etc/slurm/slurm.conf in place, so
# the next setup run starts quickly. Exits 0 when nothing of ours is left running.
set -uo pipefail

say() { echo "stop_local_slurm: $*"; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || { echo "stop_local_slurm: must run as root" >&2; exit 1; }

if [ -s /run/slurmctld.pid ] && running /run/slurmctld.pid && command -v squeue >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        sleep 2
    fi
fi

status=0
for name in slurmd slurmctld munged; do
    case $name in
        munged) pf=/run/munge/munged.pid ;;
        *) pf=/run/$name.pid ;;
    esac
    if running "$pf"; then
        pid=$(cat "$pf")
        say "stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null
            sleep 0.5
        fi
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop_local_slurm: $name (pid $pid) is still running" >&2
            status=1
        else
            rm -f "$pf"
        fi
    fi
done
[ "$status" -eq 0 ] && say "local Slurm stopped"
exit "$status"
