#!/usr/bin/python3
"""netfs.py -- lock latency between two clients (hosts), driven over the
contender protocol (conformance/PROTOCOL.md), with no shared clock.

  bench/netfs.py --label L --a "CMD A" --b "CMD B" --path-a P --path-b P
                 [--n 200] [--rounds 20] [--interval 0.01] [--death] [--backend B]
                 [--cut CMD --uncut CMD] [--json FILE] [--md FILE]

Each participant is a contender *command*: a local program, or one on another
host (`ssh hostB /usr/local/libexec/portalock/pl_contender`), or in a network
namespace (`ip netns exec plnA ...`).  --path-a / --path-b are the same lock
file as each participant sees it (two NFS clients may mount the export at
different places).  Measured, all on this driver's clock:

  uncontended  A alone: acquire + release (the contender's own `bench` if it
               has one, else `cycle` wall time / n)
  conflict     A holds, B's non-blocking acquire is refused: its t - t0
  ping-pong    A holds, B waits (polling every --interval); A releases, B
               gets it, B releases while A waits, A gets it: half of that
               round trip is one cross-client handoff, including the
               driver's pipes/ssh to both sides (the same pattern between two
               local contenders is the baseline to compare with)
  death        (--death) A holds and is SIGKILLed (`crash`); the time until
               B's poll (every 50 ms) gets the lock
  cut          (--cut/--uncut, B on the far side of that link) B holds, the
               link is cut; the time until A gets the lock (60 s at most)
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

PROTOCOL = "portalock-conformance/1"


def q(v):
    return "".join(c if 0x20 < ord(c) < 0x7f and c not in "%=" else "%%%02X" % ord(c) for c in v)


class Proc:
    def __init__(self, cmd, label):
        self.label = label
        self.p = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.hello = self.cmd("hello " + PROTOCOL)
        if not self.hello.startswith("hello "):
            raise RuntimeError("%s: no hello: %r" % (label, self.hello))
        self.features = dict(t.split("=", 1) for t in self.hello.split()[1:] if "=" in t).get(
            "features", "").split(",")

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def recv(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("%s: contender exited" % self.label)
        return line.strip()

    def cmd(self, line):
        self.send(line)
        return self.recv()

    def must(self, line, word):
        r = self.cmd(line)
        if r.split()[0] != word:
            raise RuntimeError("%s: %s -> %s" % (self.label, line, r))
        return dict(t.split("=", 1) for t in r.split()[1:] if "=" in t)

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None


def stats(xs):
    return {"n": len(xs), "p50": pct(xs, 0.5), "p99": pct(xs, 0.99),
            "mean": statistics.mean(xs) if xs else None}


def run(args):
    res = {"label": args.label, "a": args.a, "b": args.b}
    a, b = Proc(args.a, "A"), Proc(args.b, "B")
    try:
        be = " backend=" + args.backend if args.backend else ""
        a.must("open id=x kind=lock path=%s timeout=30 check_interval=%g%s" % (q(args.path_a), args.interval, be),
               "opened")
        b.must("open id=x kind=lock path=%s timeout=30 check_interval=%g%s" % (q(args.path_b), args.interval, be),
               "opened")
        res["impl"] = a.hello.split("impl=")[1].split()[0]
        # uncontended
        if "bench" in a.features:
            f = a.must("bench id=x n=%d" % args.n, "bench")
            res["uncontended_us"] = {"p50": float(f["p50_us"]), "p99": float(f["p99_us"]), "n": args.n,
                                     "how": "contender bench (client clock)"}
        else:
            t0 = time.monotonic()
            a.must("cycle id=x n=%d" % args.n, "cycled")
            res["uncontended_us"] = {"mean": (time.monotonic() - t0) / args.n * 1e6, "n": args.n,
                                     "how": "cycle wall time / n (driver clock)"}
        # conflict
        a.must("acquire id=x timeout=0", "acquired")
        refused = []
        for _ in range(args.rounds):
            f = b.must("acquire id=x timeout=0", "already-locked")
            refused.append((int(f["t"]) - int(f["t0"])) / 1e3)
        res["conflict_us"] = stats(refused)
        # ping-pong: A holds
        rtts, polls = [], []
        for _ in range(args.rounds):
            b.send("acquire id=x timeout=30 check_interval=%g" % args.interval)
            time.sleep(0.02)  # B is polling now
            t0 = time.monotonic()
            a.must("release id=x", "released")
            fb = dict(t.split("=", 1) for t in b.recv().split()[1:] if "=" in t)
            a.send("acquire id=x timeout=30 check_interval=%g" % args.interval)
            b.must("release id=x", "released")
            r = a.recv()
            if not r.startswith("acquired"):
                raise RuntimeError("A: " + r)
            rtts.append((time.monotonic() - t0) * 1e6)
            polls.append(int(fb.get("polls", "1")))
        res["pingpong_half_us"] = stats([x / 2 for x in rtts])
        res["pingpong_polls_p50"] = pct(polls, 0.5)
        res["interval_s"] = args.interval
        a.must("release id=x", "released")
        if args.death:
            a.must("acquire id=x timeout=0", "acquired")
            t0 = time.monotonic()
            a.send("crash")
            a.p.wait(timeout=10)
            f = b.must("acquire id=x timeout=120 check_interval=0.05", "acquired")
            res["death_s"] = time.monotonic() - t0
            b.must("release id=x", "released")
        if args.cut:
            b.must("acquire id=x timeout=0", "acquired")
            a2 = Proc(args.a, "A2")
            a2.must("open id=y kind=lock path=%s%s" % (q(args.path_a), be), "opened")
            t0 = time.monotonic()
            subprocess.run(args.cut, shell=True, check=True)
            r = a2.cmd("acquire id=y timeout=60 check_interval=0.1")
            res["cut_s"] = time.monotonic() - t0 if r.startswith("acquired") else None
            res["cut_reply"] = r.split()[0]
            subprocess.run(args.uncut, shell=True, check=True)
            try:
                res["cut_b_release"] = b.cmd("release id=x")
            except (OSError, RuntimeError) as e:  # B's session ended with the cut
                res["cut_b_release"] = "gone (%s)" % e
            a2.close()
    finally:
        a.close()
        b.close()
    return res


def fmt_us(v):
    if v is None:
        return "—"
    return "%.0f µs" % v if v < 1000 else "%.2f ms" % (v / 1e3) if v < 1e6 else "%.2f s" % (v / 1e6)


def markdown(rows):
    out = ["| Participants | Client | Uncontended acquire+release | Refused (conflict) p50 | "
           "Ping-pong half RTT p50 (poll interval, polls) | Holder SIGKILLed → other gets it | "
           "Holder's network cut → other gets it |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        u = r.get("uncontended_us", {})
        un = "%s p50 / %s p99" % (fmt_us(u["p50"]), fmt_us(u["p99"])) if "p50" in u else \
            "%s mean" % fmt_us(u.get("mean"))
        pp = r.get("pingpong_half_us", {})
        cut = "—"
        if "cut_reply" in r:
            cut = fmt_us(r["cut_s"] * 1e6) if r.get("cut_s") is not None else \
                "still held after 60 s (B's release after the cut: `%s`)" % r["cut_b_release"].split()[0]
        out.append("| %s | %s | %s | %s | %s (%g s, %s) | %s | %s |" % (
            r["label"], r.get("impl", "?"), un, fmt_us(r.get("conflict_us", {}).get("p50")),
            fmt_us(pp.get("p50")), r.get("interval_s", 0), r.get("pingpong_polls_p50"),
            fmt_us(r["death_s"] * 1e6) if "death_s" in r else "—", cut))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", required=True)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--path-a", required=True)
    ap.add_argument("--path-b", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--death", action="store_true")
    ap.add_argument("--backend", help="backend= for open (flock, lockf, ofd); default the contender's")
    ap.add_argument("--cut")
    ap.add_argument("--uncut")
    ap.add_argument("--json")
    ap.add_argument("--md")
    args = ap.parse_args()
    try:
        res = run(args)
    except Exception as e:  # one row either way, with the reason
        res = {"label": args.label, "error": str(e)}
        sys.stderr.write("netfs.py: %s: %s\n" % (args.label, e))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(res) + "\n")
    if "error" not in res:
        sys.stdout.write(markdown([res]))
    if args.md and "error" not in res:
        with open(args.md, "a") as f:
            f.write(markdown([res]).splitlines()[-1] + "\n")
    return 0 if "error" not in res else 1


if __name__ == "__main__":
    sys.exit(main())
