#!/usr/bin/env python3
"""Per-stage breakdown of single-client writes from `store_timing` logs.

Usage: write-timing.py MEMBER.log MEMBER.log [MEMBER.log ...]  (the leader is the one with puts)

The members ran with `RUST_LOG=info,store_timing=debug` (see components/store/src/timing.rs)
under a 1-client put load. Writes are taken one at a time (a closed loop with one client):
each leader cycle starts at a `grpc_put`; the follower stages are joined by log index. Prints
the median and p90 of each stage's time since the gRPC receive, and of each step between
consecutive stages, over all complete cycles (the first 10% are skipped as warm-up).
"""
import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r'store_timing: stage="?(\w+)"? index=(\d+) n=(\d+) us=(\d+)')


def events(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.search(ANSI.sub("", line))
            if m:
                out.append((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))))
    return out


def leader_cycles(evs):
    cycles, cur = [], None
    for stage, idx, n, us in evs:
        if stage == "grpc_put":
            cur = {"grpc_put": us}
            cycles.append(cur)
            continue
        if cur is None:
            continue
        if stage in ("ae_send", "ae_reply") and n == 0:
            continue  # heartbeats
        key = stage
        if stage in ("ae_send", "ae_reply"):
            # one per follower: keep the first send and the first and second reply
            if stage == "ae_reply" and "ae_reply" in cur and "ae_reply2" not in cur:
                key = "ae_reply2"
        if stage == "log_append":
            cur["index"] = idx
        if stage in ("apply", "committed") and idx != cur.get("index"):
            continue
        if stage in ("fsync_start", "fsync_done", "fsync_cpu_wait") and idx < cur.get("index", 1 << 62):
            continue
        if stage == "fsync_cpu_wait":
            cur.setdefault("cpu_wait", n)
            continue
        cur.setdefault(key, us)
    return cycles


def follower_by_index(evs):
    by = {}
    for stage, idx, n, us in evs:
        if stage in ("ae_recv", "ae_done") and n == 0:
            continue
        if stage == "fsync_cpu_wait":
            by.setdefault(idx, {}).setdefault("f_cpu_wait", n)
        if stage in ("ae_recv", "ae_done", "log_append", "fsync_start", "fsync_done", "apply"):
            by.setdefault(idx, {}).setdefault("f_" + stage, us)
    return by


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    logs = [events(p) for p in sys.argv[1:]]
    leader = max(range(len(logs)), key=lambda i: sum(e[0] == "grpc_put" for e in logs[i]))
    cycles = leader_cycles(logs[leader])
    fols = [follower_by_index(e) for i, e in enumerate(logs) if i != leader]
    rows = []
    for c in cycles:
        if "grpc_reply" not in c or "index" not in c:
            continue
        # the follower that answered the leader's first reply: the latest to finish before
        # that reply arrived (else the first to finish)
        done = [f[c["index"]] for f in fols if "f_ae_done" in f.get(c["index"], {})]
        before = [fe for fe in done if fe["f_ae_done"] <= c.get("ae_reply", 0)]
        best = (max(before, key=lambda fe: fe["f_ae_done"]) if before
                else min(done, key=lambda fe: fe["f_ae_done"], default=None))
        if best:
            c.update(best)
        rows.append(c)
    rows = rows[len(rows) // 10:]
    order = ["grpc_put", "propose", "client_write", "log_append", "ae_send", "fsync_start",
             "f_ae_recv", "f_log_append", "f_fsync_start", "f_fsync_done", "f_ae_done",
             "fsync_done", "ae_reply", "committed", "apply", "written", "grpc_reply"]
    print(f"{len(rows)} writes")
    print(f"{'stage':<16}{'since recv p50':>16}{'p90':>10}   {'step from previous':<24}{'p50':>8}{'p90':>8}")
    prev = None
    for st in order:
        xs = [r[st] - r["grpc_put"] for r in rows if st in r]
        if not xs:
            continue
        line = f"{st:<16}{statistics.median(xs):>16.0f}{pct(xs, 0.9):>10.0f}"
        if prev:
            ds = [r[st] - r[prev] for r in rows if st in r and prev in r]
            line += f"   {prev + ' ->':<24}{statistics.median(ds):>8.0f}{pct(ds, 0.9):>8.0f}"
        print(line)
        prev = st
    print("summary (median of per-write differences):")
    for a, b, label in (("grpc_put", "client_write", "gRPC receive -> openraft client_write"),
                        ("client_write", "log_append", "client_write -> leader log append"),
                        ("log_append", "ae_send", "leader append -> AppendEntries sent"),
                        ("ae_send", "f_ae_recv", "AppendEntries on the wire (send -> follower handler)"),
                        ("f_ae_recv", "f_fsync_start", "follower handler -> its group commit starts"),
                        ("f_fsync_start", "f_fsync_done", "follower group commit (log batch + fsync)"),
                        ("f_fsync_done", "f_ae_done", "follower fsync done -> reply leaves handler"),
                        ("f_ae_done", "ae_reply", "reply on the wire (handler -> leader's call returns)"),
                        ("ae_reply", "apply", "leader: reply -> commit -> apply starts"),
                        ("ae_reply", "committed", "  of which reply -> commit index saved (core)"),
                        ("committed", "apply", "  of which commit index saved -> apply starts"),
                        ("apply", "grpc_reply", "apply -> gRPC reply")):
        ds = [r[b] - r[a] for r in rows if a in r and b in r]
        if ds:
            print(f"  {label:<56}{statistics.median(ds):>7.0f} us")
    ds = [r["apply"] - max(r["fsync_done"], r["ae_reply"]) for r in rows
          if "apply" in r and "fsync_done" in r and "ae_reply" in r]
    if ds:
        print(f"  {'leader: quorum (own fsync and one reply) -> apply':<56}{statistics.median(ds):>7.0f} us")
    # leader and follower fsync durations
    for a, b, label in (("fsync_start", "fsync_done", "leader fsync"),
                        ("f_fsync_start", "f_fsync_done", "follower fsync")):
        ds = [r[b] - r[a] for r in rows if a in r and b in r]
        if ds:
            print(f"{label:<16} p50 {statistics.median(ds):.0f} us, p90 {pct(ds, 0.9):.0f} us")
    # Scheduler wait of the writer thread inside its group commit (runnable, no CPU).
    ws = [r["cpu_wait"] for r in rows if "cpu_wait" in r]
    fw = [f[r["index"]]["f_cpu_wait"] for r in rows for f in fols
          if "f_cpu_wait" in f.get(r["index"], {})]
    if ws and fw:
        print(f"writer thread waiting for a CPU inside its commit: leader p50 "
              f"{statistics.median(ws):.0f} us (mean {statistics.mean(ws):.0f}), every follower p50 "
              f"{statistics.median(fw):.0f} us (mean {statistics.mean(fw):.0f})")
    # The follower above is the one whose reply came first (the faster of the two): its fsync
    # is not a fair comparison with the leader's. Every follower's commit of the same entries:
    ds = [f[r["index"]]["f_fsync_done"] - f[r["index"]]["f_fsync_start"] for r in rows
          for f in fols if "f_fsync_done" in f.get(r["index"], {})
          and "f_fsync_start" in f[r["index"]]]
    if ds:
        print(f"{'every follower fsync':<16} p50 {statistics.median(ds):.0f} us, "
              f"p90 {pct(ds, 0.9):.0f} us")
    # Is the leader's own flush on the critical path? It is when it ends after the first
    # follower reply (the quorum of 2 then waits for it).
    late = [r["fsync_done"] - r["ae_reply"] for r in rows if "fsync_done" in r and "ae_reply" in r]
    if late:
        n = sum(d > 0 for d in late)
        print(f"leader fsync ends after the first reply in {n}/{len(late)} writes "
              f"({100 * n / len(late):.0f}%), by p50 {statistics.median([d for d in late if d > 0] or [0]):.0f} us "
              f"when it does; leader fsync start -> first reply p50 "
              f"{statistics.median([r['ae_reply'] - r['fsync_start'] for r in rows if 'ae_reply' in r and 'fsync_start' in r]):.0f} us")


if __name__ == "__main__":
    main()
