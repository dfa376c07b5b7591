#!/usr/bin/env bash
# Two "hosts" on one machine for multi-host MPI runs: network namespaces ctr-h1 and ctr-h2
# joined by a veth pair (10.77.0.1 and 10.77.0.2), and an mpirun launch agent that starts
# a host's daemon inside its namespace instead of over ssh. Needs root (ip netns).
#
#   scripts/netns-hosts.sh up        create the namespaces (idempotent)
#   scripts/netns-hosts.sh down      remove them
#   scripts/netns-hosts.sh run ARGS  mpirun ARGS with one rank per namespace, MPI over TCP
#                                    on the veth pair only (no shared memory between them)
set -euo pipefail
cd "$(dirname "$0")/.."
agent="$PWD/scripts/netns-agent.sh"

up() {
    ip netns list | grep -q '^ctr-h1' && return
    ip netns add ctr-h1
    ip netns add ctr-h2
    ip link add ctr-v1 type veth peer name ctr-v2
    ip link set ctr-v1 netns ctr-h1
    ip link set ctr-v2 netns ctr-h2
    ip -n ctr-h1 addr add 10.77.0.1/24 dev ctr-v1
    ip -n ctr-h2 addr add 10.77.0.2/24 dev ctr-v2
    for n in 1 2; do
        ip -n "ctr-h$n" link set lo up
        ip -n "ctr-h$n" link set "ctr-v$n" up
    done
}

down() {
    ip netns del ctr-h1 2>/dev/null || true
    ip netns del ctr-h2 2>/dev/null || true
}

run() {
    up
    hosts=$(mktemp)
    printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$hosts"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        ip netns exec ctr-h1 mpirun --hostfile "$hosts" -np 2 --map-by node --bind-to none \
        --mca plm_rsh_agent "$agent" \
        --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
        --mca oob_tcp_if_include 10.77.0.0/24 \
        -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
        "$@"
    rm -f "$hosts"
}

case "${1:-}" in
up) up ;;
down) down ;;
run) shift; run "$@" ;;
*) echo "usage: $0 up|down|run MPIRUN_ARGS..." >&2; exit 2 ;;
esac
