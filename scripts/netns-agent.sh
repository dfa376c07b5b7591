#!/bin/sh
# mpirun's launch agent (plm_rsh_agent) for scripts/netns-hosts.sh: called as
# `netns-agent.sh HOST COMMAND...` like ssh, it runs COMMAND in HOST's namespace.
host="$1"
shift
case "$host" in
10.77.0.1) ns=ctr-h1 ;;
10.77.0.2) ns=ctr-h2 ;;
*) echo "netns-agent: unknown host $host" >&2; exit 1 ;;
esac
exec ip netns exec "$ns" /bin/sh -c "$*"
