"""Shared part of the Python peer drivers (portalocker, py-filelock).

A driver module provides make_lock(kind, target, timeout) returning an object
with acquire() and release().  This module turns it into the commands the
benchmark runner uses:

  DRIVER actor KIND TARGET             speak the actor protocol on stdin/stdout
                                       (see bench/kit/benchkit.h)
  DRIVER cycle KIND TARGET N BUDGET    uncontended acquire+release, one JSON line
  DRIVER contend KIND TARGET START_NS SECONDS
                                       loop acquire+release from CLOCK_MONOTONIC
                                       START_NS for SECONDS; prints {"count": n}

KIND is "lock" (a file lock on TARGET) or "redis:PORT" (TARGET is the channel).
Times are CLOCK_MONOTONIC nanoseconds, the clock the C programs use.
"""
import json
import os
import sys
import time


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def stats(samples):
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return {"n": 0}

    def pct(p):
        return float(s[min(n - 1, int(p * (n - 1) + 0.5))])

    return {"n": n, "min_ns": float(s[0]), "p50_ns": pct(0.5),
            "p90_ns": pct(0.9), "p99_ns": pct(0.99), "max_ns": float(s[-1]),
            "mean_ns": sum(s) / n}


def actor(make_lock, kind, target):
    timeout = float(os.environ.get("PL_BENCH_WAIT_TIMEOUT", "30"))
    lock = make_lock(kind, target, timeout)
    out = sys.stdout
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "acquire":
                lock.acquire()
                out.write("held\n")
            elif cmd == "release":
                t0 = now_ns()
                lock.release()
                out.write("released %d\n" % t0)
            elif cmd == "wait":
                out.write("ready\n")
                out.flush()
                lock.acquire()
                t1 = now_ns()
                lock.release()
                out.write("acq %d\n" % t1)
            elif cmd == "quit":
                break
            else:
                out.write("err unknown command\n")
        except Exception as e:  # reported to the coordinator, not hidden
            out.write("err %s: %s\n" % (type(e).__name__, str(e).replace("\n", " ")))
        out.flush()
    return 0


def cycle(make_lock, kind, target, n, budget):
    lock = make_lock(kind, target, 5.0)
    samples = []
    err = ""
    try:
        for _ in range(5):  # warm-up
            lock.acquire()
            lock.release()
        start = now_ns()
        while len(samples) < n and (now_ns() - start) / 1e9 < budget:
            t0 = now_ns()
            lock.acquire()
            lock.release()
            samples.append(now_ns() - t0)
    except Exception as e:
        err = "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"tool": "driver-cycle", "kind": kind, "ok": not err,
                      "error": err, "stats": stats(samples)}))
    return 0 if not err else 3


def contend(make_lock, kind, target, start_ns, seconds):
    lock = make_lock(kind, target, 60.0)
    count = 0
    err = ""
    while now_ns() < start_ns:
        time.sleep(0.0005)
    end = start_ns + int(seconds * 1e9)
    try:
        while now_ns() < end:
            lock.acquire()
            count += 1
            lock.release()
    except Exception as e:
        err = "%s: %s" % (type(e).__name__, e)
    print(json.dumps({"count": count, "ok": not err, "error": err}))
    return 0 if not err else 3


def main(make_lock, argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    cmd, kind, target = argv[1], argv[2], argv[3]
    if cmd == "actor":
        return actor(make_lock, kind, target)
    if cmd == "cycle":
        return cycle(make_lock, kind, target, int(argv[4]), float(argv[5]))
    if cmd == "contend":
        return contend(make_lock, kind, target, int(argv[4]), float(argv[5]))
    sys.stderr.write(__doc__)
    return 2
