#!/bin/bash
# Server CPU per list page of 50 pods (or per pod create, OP=create), and optionally a perf
# profile of the server.
#
#   bash run.sh BENCH_BINARY [perf]
#   OP=create bash run.sh BENCH_BINARY [perf]
#
# BENCH_BINARY: the api bench's release executable (`cargo bench -p kubelab-apiserver --bench
# api --no-run` prints it; copy it aside to compare builds). Its server mode
# (BENCH_SERVER=embedded) serves HTTPS on loopback with the embedded store until stdin
# closes. This script fills FILL (default 1,280) pods, warms up with 2,000 lists, then times
# N (6,000) `GET /api/v1/namespaces/bench/pods?limit=50` from `curl -Z --parallel-max 32` over HTTP/1.1
# (HTTP=--http2 for HTTP/2) and prints the server's CPU (user + system from /proc) per list.
# With OP=create, the warm-up and the timed requests are instead `POST .../pods` of the api
# bench's pod with `generateName` (every one a new pod), at the same parallelism.
# With `perf`, it records `perf record --call-graph dwarf` of the server into PERF_OUT
# (default ./perf.data). Needs curl, kubectl (to read the kubeconfig), python3, perf for
# the profile. Everything lives in a scratch directory removed on exit; the server is
# stopped by closing its stdin, perf by its own PID.
set -euo pipefail
BIN=$(realpath "$1"); MODE=${2:-cpu}; N=${N:-6000}; HTTP=${HTTP:---http1.1}; OP=${OP:-list}; FILL=${FILL:-1280}
case "$OP" in list|create) ;; *) echo "OP must be list or create, not $OP" >&2; exit 2;; esac
PERF_OUT=$(realpath -m "${PERF_OUT:-perf.data}")
HERE=$(dirname "$(realpath "$0")")
D=$(mktemp -d)
mkfifo "$D/in"
BENCH_SERVER=embedded "$BIN" < "$D/in" > "$D/out" 2> "$D/err" &
SPID=$!
exec 7> "$D/in"
PP=
cleanup() {
    [ -n "$PP" ] && kill -INT "$PP" 2>/dev/null && wait "$PP" 2>/dev/null
    exec 7>&-
    wait "$SPID" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 150); do grep -q kubeconfig= "$D/out" 2>/dev/null && break; sleep 0.2; done
KC=$(sed -n 's/.*kubeconfig=\([^ ]*\).*/\1/p' "$D/out")
[ -n "$KC" ] || { echo "server did not start:" >&2; cat "$D/err" >&2; exit 1; }
view() { kubectl --kubeconfig "$KC" config view --raw -o jsonpath="$1"; }
SERVER=$(view '{.clusters[0].cluster.server}')
view '{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$D/ca"
view '{.users[0].user.client-certificate-data}' | base64 -d > "$D/crt"
view '{.users[0].user.client-key-data}' | base64 -d > "$D/key"
C=(curl -sS --cacert "$D/ca" --cert "$D/crt" --key "$D/key")
"${C[@]}" -X POST -H content-type:application/json "$SERVER/api/v1/namespaces" \
    -d '{"metadata":{"name":"bench"}}' -o /dev/null
python3 "$HERE/fill.py" "$SERVER" "$D" "$FILL"
if [ "$OP" = create ]; then
    # One POST body for every URL of the config: generateName makes each a new pod.
    echo '{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"c-","labels":{"app":"bench"}},"spec":{"containers":[{"name":"c","image":"nginx:1.25","ports":[{"containerPort":80}]}]}}' > "$D/pod.json"
    BODY=(-H content-type:application/json --data-binary "@$D/pod.json")
    URL="$SERVER/api/v1/namespaces/bench/pods"
else
    BODY=()
    URL="$SERVER/api/v1/namespaces/bench/pods?limit=50"
fi
for _ in $(seq "$N"); do
    echo "url = \"$URL\""
    echo "output = /dev/null"
done > "$D/list.cfg"
"${C[@]}" "$SERVER/api/v1/namespaces/bench/pods?limit=50" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d["items"]) == 50, len(d["items"])
print("page of", len(d["items"]), "pods,", len(json.dumps(d)), "bytes")'
"${C[@]}" "${BODY[@]}" -Z --no-progress-meter "$HTTP" --parallel-max 32 -K <(head -4000 "$D/list.cfg")
cpu() { awk '{print $14 + $15}' "/proc/$SPID/stat"; }
if [ "$MODE" = perf ]; then
    perf record -F 999 --call-graph dwarf,16384 -p "$SPID" -o "$PERF_OUT" -- sleep 1000 2>/dev/null &
    PP=$!
    sleep 1
fi
c0=$(cpu); t0=$(date +%s.%N)
"${C[@]}" "${BODY[@]}" -Z --no-progress-meter "$HTTP" --parallel-max 32 -K "$D/list.cfg"
t1=$(date +%s.%N); c1=$(cpu)
if [ -n "$PP" ]; then kill -INT "$PP"; wait "$PP" || true; PP=; fi
python3 -c "print('${OP}s $N, wall %.2f s, %.0f ${OP}s/s, server CPU %.3f ms per $OP'
            % ($t1 - $t0, $N / ($t1 - $t0), ($c1 - $c0) * 10 / $N))"
if [ "$OP" = create ]; then
    # Every POST must have made a pod (curl -Z does not fail on an HTTP error).
    "${C[@]}" "$SERVER/api/v1/namespaces/bench/pods?limit=1" | python3 -c "
import json, sys
n = json.load(sys.stdin)['metadata'].get('remainingItemCount', 0) + 1
want = $FILL + min(2000, $N) + $N
assert n == want, f'{n} pods, expected {want}: some creates failed'
print(n, 'pods stored, as expected')"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
