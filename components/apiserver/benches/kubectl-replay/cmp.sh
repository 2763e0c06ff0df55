#!/bin/bash
# cmp.sh RUNS DIR...: times kubectl against a static replay of each recording (see README.md).
# Round-robin over the recordings; prints per recording and mode the wall and CPU seconds.
HERE=$(dirname "$0")
R=$1; shift
declare -A PID
for d in "$@"; do rm -f $d.port; python3 "$HERE/replay.py" $d > $d.port 2>/dev/null & PID[$d]=$!; done
for d in "$@"; do until [ -s $d.port ]; do sleep 0.2; done; done
for d in "$@"; do P=$(cat $d.port); mkdir -p $d.home; printf 'apiVersion: v1\nkind: Config\nclusters: [{name: r, cluster: {server: "http://127.0.0.1:%s"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: r, context: {cluster: r, user: u}}]\ncurrent-context: r\n' "$P" > $d.kc; KUBECONFIG=$d.kc HOME=$d.home kubectl get pods -A --no-headers >/dev/null; done
for i in $(seq $R); do for d in "$@"; do for cs in 500 0; do
  KUBECONFIG=$d.kc HOME=$d.home /usr/bin/time -f "$d chunk=$cs %e %U %S" kubectl get pods -A --no-headers --chunk-size=$cs > /dev/null
done; done; done 2>&1 | sort | awk '{k=$1" "$2; w[k]=w[k]" "$3; c[k]=c[k]" "($4+$5)} END {for (k in w) print k, "wall:" w[k], " cpu:" c[k]}' | sort
for d in "$@"; do kill ${PID[$d]}; done
