#!/usr/bin/env python3
"""Where the log writer thread's group commit spends its time, per member.

Usage: flush-timing.py SCRATCH_DIR   (written by profile-writes with PROFILE_STRACE=1)

Written for the redb log, which wrote pages with pwrite64; the fjall journal (session 9) is
written with write(2), which this script does not count yet.

Joins each member's `store_timing` marks `fsync_start`/`fsync_done` (log writer thread,
components/store/src/log_store.rs) with that thread's `pwrite64`/`fdatasync` calls from
`strace -f -ttt -T` (wall clock, the same clock as the marks) and prints, per member, the
medians of: mark -> first pwrite64 (the engine building the batch), first ->
last pwrite64 end (writing the dirty pages), last pwrite64 -> fdatasync entry (engine CPU between
the pages and the sync), fdatasync itself, and fdatasync return -> `fsync_done` mark (waiting
for a CPU after the sync, then the mark). The leader is the member with `grpc_put` marks.
Also prints `schedstat` deltas of the writer thread (CPU time and run-queue wait per commit).
"""
import os
import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARK = re.compile(r'store_timing: stage="?(\w+)"? index=(\d+) n=(\d+) us=(\d+)')
CALL = re.compile(r"^(\d+)\s+(\d+)\.(\d+) (pwrite64|fdatasync|fsync)\(.*<([\d.]+)>")


def marks(path):
    out, puts = [], 0
    for line in open(path, errors="replace"):
        m = MARK.search(ANSI.sub("", line))
        if not m:
            continue
        if m.group(1) == "grpc_put":
            puts += 1
        if m.group(1) in ("fsync_start", "fsync_done"):
            out.append((m.group(1), int(m.group(4))))
    return out, puts


def calls(path):
    by_tid = {}
    for line in open(path, errors="replace"):
        m = CALL.match(line)
        if m:
            start = int(m.group(2)) * 1_000_000 + int(m.group(3)[:6].ljust(6, "0"))
            dur = float(m.group(5)) * 1e6
            by_tid.setdefault(int(m.group(1)), []).append((start, start + dur, m.group(4)))
    return by_tid


def med(xs):
    return f"{statistics.median(xs):>6.0f}" if xs else "     -"


def main():
    d = sys.argv[1]
    for name in sorted(f[:-4] for f in os.listdir(d) if f.endswith(".log") and f.startswith("m")):
        ms, puts = marks(f"{d}/{name}.log")
        st = f"{d}/{name}.strace"
        if not os.path.exists(st):
            continue
        by_tid = calls(st)
        if not by_tid:
            continue
        tid = max(by_tid, key=lambda t: sum(c[2] != "pwrite64" for c in by_tid[t]))
        cs = by_tid[tid]
        rows = {"to_pwrite": [], "pwrites": [], "to_sync": [], "sync": [], "after": [], "total": [],
                "npw": []}
        i = 0
        starts = [u for s, u in ms if s == "fsync_start"]
        dones = [u for s, u in ms if s == "fsync_done"]
        for a, b in zip(starts, dones):
            if b < a:
                continue
            inside = [c for c in cs if a <= c[0] <= b]
            pw = [c for c in inside if c[2] == "pwrite64"]
            sy = [c for c in inside if c[2] != "pwrite64"]
            if not pw or len(sy) != 1:
                continue
            s = sy[0]
            rows["to_pwrite"].append(pw[0][0] - a)
            rows["pwrites"].append(max(c[1] for c in pw) - pw[0][0])
            rows["to_sync"].append(s[0] - max(c[1] for c in pw))
            rows["sync"].append(s[1] - s[0])
            rows["after"].append(b - s[1])
            rows["total"].append(b - a)
            rows["npw"].append(len(pw))
        role = "leader" if puts else "follower"
        print(f"{name} ({role}, writer tid {tid}, {len(rows['total'])} commits, median us): "
              f"start->1st pwrite {med(rows['to_pwrite'])}, pwrites {med(rows['pwrites'])} "
              f"({med(rows['npw']).strip()} calls), ->fdatasync {med(rows['to_sync'])}, "
              f"fdatasync {med(rows['sync'])}, ->done mark {med(rows['after'])}, "
              f"total {med(rows['total'])}")
    for f in sorted(os.listdir(d)):
        if f.endswith(".schedstat"):
            print(open(f"{d}/{f}").read().rstrip())


if __name__ == "__main__":
    main()
