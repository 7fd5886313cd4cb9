#!/usr/bin/python3
"""Writes report.md and the SVG plots from results.json (see run.py).

  bench/report.py RESULTS.json OUTDIR
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "ci"))
import pl_paths  # noqa: E402
import svgplot  # noqa: E402
from svgplot import fmt_ns  # noqa: E402


def p50(r):
    return (r or {}).get("stats", {}).get("p50_ns") if (r or {}).get("ok") else None


def p99(r):
    return (r or {}).get("stats", {}).get("p99_ns") if (r or {}).get("ok") else None


def ratio(a, b):
    return a / b if a and b else None


def fr(x, digits=2):
    if x is None:
        return "n/a"
    if x >= 100:
        return "%.0f×" % x
    if x >= 10:
        return "%.1f×" % x
    return ("%." + str(digits) + "f×") % x


def verdict(ok):
    return "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")


def why(r):
    if not r:
        return "not run"
    e = r.get("error") or r.get("reason") or "failed"
    return "not available: " + e.replace("|", "/")[:160]


class Report:
    def __init__(self, res, out):
        self.res, self.out = res, out
        self.md = []
        self.sec = res["sections"]

    def w(self, *lines):
        self.md.extend(lines)

    def svg(self, name, text, alt):
        with open(os.path.join(self.out, name), "w") as f:
            f.write(text)
        self.w("", "![%s](%s)" % (alt, name), "")

    def table(self, head, rows):
        self.w("| " + " | ".join(head) + " |", "|" + "---|" * len(head))
        for r in rows:
            self.w("| " + " | ".join(str(c) for c in r) + " |")
        self.w("")

    # ---- sections --------------------------------------------------------
    def header(self):
        e = self.res["env"]
        self.w("# portalock benchmark report", "",
               "Produced by `%s` on %s, %s mode, in %s s. "
               "Every number is wall-clock time on this machine, which was shared with other "
               "work; ratios against the raw system calls measured in the same run are the "
               "meaningful figures." % (self.res.get("invocation") or "bench/run.py", e["date"],
                                          e["mode"], e.get("duration_s", "?")), "")
        rows = [("Date", e["date"]), ("Git commit", e["git_commit"]),
                ("Kernel", e["kernel"]), ("OS", e["os"]), ("CPU", e["cpu"]),
                ("nproc", e["nproc"]), ("Memory", e["memory"]),
                ("Load average (start → end)", "%s → %s" % (" ".join(e["loadavg_start"]),
                                                            " ".join(e.get("loadavg_end", [])))),
                ("portalock", "%s (build type %s, linked statically into the bench programs)"
                 % (e["portalock"], e["build_type"])),
                ("Compiler", e["compiler"]), ("Google Benchmark (libbenchmark-dev)", e["libbenchmark"]),
                ("Python", e["python"]), ("python3-portalocker", e["python3-portalocker"]),
                ("python3-filelock", e["python3-filelock"]), ("python3-redis", e["python3-redis"]),
                ("redis-server", e["redis-server"]), ("libhiredis", e["libhiredis"]),
                ("util-linux (flock(1))", e["util-linux (flock(1))"])]
        self.env_rows = rows

    def environment(self):
        self.w("## Environment", "")
        self.table(["", ""], self.env_rows)

    def headline(self):
        cc = self.sec.get("core_check", {})
        hand = {r["id"]: r for r in self.sec.get("handoff", {}).get("rows", [])}
        cont = self.sec.get("contention", {}).get("rows", [])
        rows = []
        score = []  # (short label, measured / goal: <= 1 passes, text)

        def sc(label, x, goal, le=True):
            if x:
                score.append((label, x / goal if le else goal / x,
                              "%s (goal %s %s)" % (fr(x), "≤" if le else "≥", fr(goal))))
        c = cc.get("cycle", {})
        sc("Lock cycle ÷ raw", c.get("ratio_p50"), 1.15)
        rows.append(("Uncontended Lock cycle vs raw open+flock+unlock+close (p50)",
                     "%s vs %s = %s" % (fmt_ns(c.get("ours", {}).get("p50_ns")),
                                        fmt_ns(c.get("raw", {}).get("p50_ns")),
                                        fr(c.get("ratio_p50"))),
                     "≤ 1.15×", verdict(c.get("pass") if c else None)))
        h = cc.get("handoff", {})
        sc("timed handoff ÷ raw", h.get("ratio_p50"), 2.0)
        rows.append(("Timed-acquire handoff vs raw waiter blocked in flock (p50)",
                     "%s vs %s = %s" % (fmt_ns(h.get("ours", {}).get("p50_ns")),
                                        fmt_ns(h.get("raw", {}).get("p50_ns")),
                                        fr(h.get("ratio_p50"))),
                     "≤ 2×", verdict(h.get("pass") if h else None)))
        po, ou = p50(hand.get("portalocker")), p50(hand.get("ours"))
        rt = ratio(po, ou)
        sc("portalocker handoff ÷ ours", rt, 1000.0, le=False)
        rows.append(("Handoff: portalocker's polling waiter / ours (p50)",
                     "%s / %s = %s" % (fmt_ns(po), fmt_ns(ou), fr(rt)) if rt else why(hand.get("portalocker")),
                     "≥ 1000×", verdict(rt >= 1000 if rt else None)))
        n8 = [r for r in cont if r.get("impl") == "ours" and r.get("procs") == 8 and r.get("ok")]
        if n8:
            r = n8[0]
            if r["min_max_ratio"] > 0:
                score.append(("fairness min/max, N=8", 0.5 / r["min_max_ratio"],
                              "%.2f (goal ≥ 0.5)" % r["min_max_ratio"]))
            rows.append(("8 processes on one Lock: per-process min/max acquisitions",
                         "%d / %d = %.2f (Jain %.3f)" % (r["per_process_min"], r["per_process_max"],
                                                         r["min_max_ratio"], r["jain"]),
                         "≥ 0.5", verdict(r["min_max_ratio"] >= 0.5)))
        else:
            rows.append(("8 processes on one Lock: per-process min/max", "not measured (quick mode runs N ≤ 4)"
                         if self.res.get("quick") else "failed", "≥ 0.5", "n/a"))
        rd = self.sec.get("redis", {})
        ours = rd.get("ours", {}) if rd.get("available") else {}
        for key, label, goal in (("kill_handoff", "Redis: SIGKILL handoff (p50)", 10e6),
                                 ("release_handoff", "Redis: release handoff (p50)", 1e6),
                                 ("cycle", "Redis: uncontended acquire+release (p50)", 0.5e6)):
            v = p50(ours.get(key))
            if v:
                score.append((label.replace(" (p50)", ""), v / goal,
                              "%s (goal ≤ %s)" % (fmt_ns(v), fmt_ns(goal))))
            rows.append((label, fmt_ns(v) if v else (why(ours.get(key)) if ours else why(rd)),
                         "≤ " + fmt_ns(goal), verdict(v <= goal if v else None)))
        self.w("## Targets", "",
               "Measured on this %s-vCPU machine; printed, never asserted." % self.res["env"]["nproc"], "")
        self.table(["Target", "Measured", "Goal", "Verdict"], rows)
        if score:
            self.svg("targets.svg", svgplot.hbar(
                "Targets: how far from the goal (measured ÷ goal, log scale)",
                [(lab, [(2 if x <= 1 else 3, x, "%s  %s" % ("PASS" if x <= 1 else "MISS", txt))])
                 for lab, x, txt in score],
                log=True, fmt=lambda v: "%g×" % v, ref=(1.0, "goal"),
                subtitle="left of the dashed line = target met; for ≥ goals the ratio is inverted"),
                "targets")

    def core(self):
        cc = self.sec.get("core_check", {})
        self.w("## Core check (`pl_core_check`, issue 2)", "",
               "Ours and raw run in alternating blocks in one process (cycle) or against one holder "
               "process (handoff), so load drift hits both alike. Handoff = holder process's "
               "CLOCK_MONOTONIC just before its unlock → the waiter's CLOCK_MONOTONIC right after "
               "its acquire returned; the waiter is seen asleep in the kernel (/proc) before every "
               "release.", "", "Command: `%s`" % cc.get("cmd", "?"), "", "```",
               (cc.get("text") or why(cc)).rstrip(), "```", "")

    def cycle(self):
        rows = self.sec.get("cycle", {}).get("rows", [])
        by = {r["id"]: r for r in rows}
        raw, rawfd = p50(by.get("raw")), p50(by.get("rawfd"))
        t, bars = [], []
        for i, r in enumerate(rows):
            base = rawfd if r["id"] in ("rawfd", "oursfd") else raw
            v = p50(r)
            rt = ratio(v, base)
            t.append((r["label"], fmt_ns(v) if v else why(r), fmt_ns(p99(r)) if v else "",
                      (r.get("stats") or {}).get("n", ""), fr(rt) if v else ""))
            bars.append((r["label"], [(0 if r["id"].startswith("raw") else 1 if r["id"].startswith("ours") else 2,
                                       v, "%s  (%s raw)" % (fmt_ns(v), fr(rt)) if v else why(r)[:60])]))
        self.w("## Uncontended cycle: ours, raw syscalls, Python peers", "",
               "One process, lock file on the local disk, flock backend; each operation timed "
               "separately. Python peers include the interpreter's own cost: that is what their "
               "users pay.", "")
        self.table(["Implementation", "p50", "p99", "n", "× raw (p50)"], t)
        self.svg("cycle.svg", svgplot.hbar(
            "Uncontended lock + unlock (p50, log scale)", bars, log=True,
            subtitle="ratio to the raw syscalls measured in the same run; lower is better",
            series_names=["raw syscalls", "portalock", "Python peers"]), "uncontended cycle")

    def handoff(self):
        rows = self.sec.get("handoff", {}).get("rows", [])
        by = {r["id"]: r for r in rows}
        raw, ours = p50(by.get("raw")), p50(by.get("ours"))
        t, bars = [], []
        for r in rows:
            v, v99 = p50(r), p99(r)
            t.append((r["label"], fmt_ns(v) if v else why(r), fmt_ns(v99) if v else "",
                      fmt_ns((r.get("stats") or {}).get("max_ns")) if v else "",
                      (r.get("stats") or {}).get("n", ""), fr(ratio(v, raw)) if v else "",
                      fr(ratio(v, ours)) if v else ""))
            si = 0 if r["id"] == "raw" else 1 if r["id"].startswith("ours") else 2
            bars.append((r["label"], [(si, v, "p50 %s  (%s raw, %s ours)" % (
                fmt_ns(v), fr(ratio(v, raw)), fr(ratio(v, ours))) if v else why(r)[:60])]))
        self.w("## Handoff: holder process releases → waiter returns", "",
               "The holder is a separate process holding a raw flock; the waiter blocks with a "
               "30 s timeout. Polling waiters (the Python peers) are released at a random phase of "
               "their poll schedule (a random delay of up to one poll interval, 250 ms / 50 ms, after "
               "they are seen asleep), "
               "so their p50 is about half their poll interval.", "")
        self.table(["Waiter", "p50", "p99", "max", "n", "× raw", "× ours"], t)
        self.svg("handoff.svg", svgplot.hbar(
            "Handoff latency, release → waiter acquired (p50, log scale)", bars, log=True,
            subtitle="polling (portalocker, filelock) vs waking in the kernel (portalock, raw flock)",
            series_names=["raw flock waiter", "portalock", "Python peers"]), "handoff latency")

    def contention(self):
        sec = self.sec.get("contention", {})
        rows = sec.get("rows", [])
        lock_rows = [r for r in rows if r.get("impl") in ("ours", "raw", "oursfd", "rawfd")]
        t = []
        for r in lock_rows + [r for r in rows if r.get("impl") == "sem"]:
            if not r.get("ok"):
                t.append((r.get("impl", "?"), r.get("procs", "?"), why(r), "", "", "", "", "", ""))
                continue
            h = r.get("handoff", {})
            t.append(("%s%s" % (r["impl"], " (%d slots)" % r["slots"] if r["impl"] == "sem" else ""),
                      r["procs"], "%.0f" % r["throughput_per_s"],
                      fmt_ns(1e9 / r["throughput_per_s"]) if r["throughput_per_s"] else "—",
                      fmt_ns(h.get("p50_ns")) if h.get("n") else "—",
                      fmt_ns(h.get("p99_ns")) if h.get("n") else "—",
                      fmt_ns(h.get("max_ns")) if h.get("n") else "—",
                      "%d / %d = %.2f" % (r["per_process_min"], r["per_process_max"], r["min_max_ratio"]),
                      "%.3f" % r["jain"]))
        self.w("## Cross-process contention", "",
               "N processes (fork, not threads) loop acquire → release on one lock file (local "
               "disk, flock, no hold time) for a fixed time. *ours* = Lock object (open + lock + "
               "unlock + close per acquisition, timed acquire); *raw* = the same with bare "
               "syscalls and a blocking flock; *oursfd*/*rawfd* keep the descriptor open. Handoff "
               "= previous holder's release → next holder's acquire, counted only when the lock "
               "changes process. *sem* = `pl_semaphore` with M processes over N slots (exclusion "
               "checked: never more than N inside).", "")
        self.table(["Impl", "Processes", "Acquisitions/s", "Wall time per acquisition", "Handoff p50", "p99", "max",
                    "Per-process min / max", "Jain"], t)
        procs = sorted({r["procs"] for r in lock_rows if r.get("ok") and r["impl"] in ("ours", "raw")})
        if procs:
            def series(impl, f):
                m = {r["procs"]: r for r in lock_rows if r.get("impl") == impl and r.get("ok")}
                return [f(m[p]) if p in m else None for p in procs]
            self.svg("contention_throughput.svg", svgplot.line(
                "Acquisitions per second vs contending processes", procs,
                [("raw open+flock+close", series("raw", lambda r: r["throughput_per_s"])),
                 ("portalock Lock", series("ours", lambda r: r["throughput_per_s"]))],
                log=False, fmt=lambda v: "%.0f" % v if v < 1e4 else "%.0fk" % (v / 1e3),
                x_label="processes", subtitle="higher is better; one lock file, 2 vCPUs"),
                "throughput")
            self.svg("contention_handoff.svg", svgplot.line(
                "Handoff latency under contention (log scale)", procs,
                [("raw p50", series("raw", lambda r: r["handoff"].get("p50_ns")), {"color": 0}),
                 ("portalock p50", series("ours", lambda r: r["handoff"].get("p50_ns")), {"color": 1}),
                 ("raw p99", series("raw", lambda r: r["handoff"].get("p99_ns")), {"color": 0, "dash": True}),
                 ("portalock p99", series("ours", lambda r: r["handoff"].get("p99_ns")),
                  {"color": 1, "dash": True})],
                log=True, x_label="processes", subtitle="release → next holder's acquire, when the holder changes"),
                "handoff under contention")
            self.svg("fairness.svg", svgplot.hbar(
                "Fairness: per-process min/max acquisitions", [
                    ("N=%d" % p, [(0, m.get("raw", {}).get("min_max_ratio"),
                                   "raw %.2f" % m["raw"]["min_max_ratio"] if "raw" in m else "n/a"),
                                  (1, m.get("ours", {}).get("min_max_ratio"),
                                   "portalock %.2f (Jain %.3f)" % (m["ours"]["min_max_ratio"], m["ours"]["jain"])
                                   if "ours" in m else "n/a")])
                    for p in procs
                    for m in [{r["impl"]: r for r in lock_rows if r.get("procs") == p and r.get("ok")}]
                    if p > 1],
                log=False, fmt=lambda v: "%.1f" % v, ref=(0.5, "goal ≥ 0.5 at N=8"),
                series_names=["raw", "portalock"], subtitle="1.0 = every process got the same share"),
                "fairness")
        peers = sec.get("peers", [])
        if peers:
            self.w("Python peers contending (processes; counts only):", "")
            self.table(["Peer", "Processes", "Acquisitions/s", "Per-process min / max", "Jain", "Status"],
                       [(p["impl"], p["procs"], "%.0f" % p["throughput_per_s"],
                         "%d / %d = %.2f" % (p["per_process_min"], p["per_process_max"], p["min_max_ratio"]),
                         "%.3f" % p["jain"], "ok" if p["ok"] else why(p)) for p in peers])

    def spawn(self):
        sec = self.sec.get("spawn", {})
        rows = sec.get("rows", [])
        by = {r["id"]: r for r in rows}
        fl = p50(by.get("flock"))
        t, bars = [], []
        for r in rows:
            v = p50(r)
            t.append((r["label"], fmt_ns(v) if v else why(r), fmt_ns(p99(r)) if v else "",
                      (r.get("stats") or {}).get("n", ""), fr(ratio(v, fl)) if v else ""))
            bars.append((r["label"], [(0 if r["id"] == "flock" else 1 if r["id"] == "portalock" else 2,
                                       v, "%s  (%s flock(1))" % (fmt_ns(v), fr(ratio(v, fl))) if v else why(r)[:60])]))
        self.w("## CLI: spawn cost of `flock -n f true` vs `portalock -n f true`", "",
               "posix_spawn + waitpid of the whole command, timed in a loop (bench/pl_spawn.c); the "
               "commands take turns, so load drift hits them alike.", "")
        if sec.get("cli_reason"):
            self.w("portalock CLI: " + sec["cli_reason"], "")
        self.table(["Command", "p50", "p99", "n", "× flock(1)"], t)
        self.svg("spawn.svg", svgplot.hbar("Spawn + lock + run + unlock, one command (p50)", bars,
                                           log=False, series_names=["flock(1)", "portalock", "floor"],
                                           subtitle="lower is better"), "CLI spawn cost")

    def filesystems(self):
        sec = self.sec.get("filesystems", {})
        rows = sec.get("rows", [])
        t, groups = [], []
        for r in rows:
            pr = r.get("probe", {})
            verdict_line = (pr.get("probe") or {}).get("guarantee") if pr.get("ok") else why(pr)
            if pr.get("ok"):
                # the mount options' verdict and advice (NFS/CIFS/FUSE), when there is one
                mv, ma = (pr["probe"].get("mount_verdict") or ""), (pr["probe"].get("mount_advice") or "")
                if mv and mv not in (verdict_line or ""):
                    verdict_line = "%s. Mount options: %s" % (verdict_line, mv)
                if ma:
                    verdict_line = "%s. **Advice:** %s" % (verdict_line, ma)
            fstype = (pr.get("probe") or {}).get("fstype", "?")
            cyc = r.get("cycle", {})
            cells = []
            for b in ("flock", "lockf", "ofd"):
                rv, ov = p50(cyc.get("raw-" + b)), p50(cyc.get("ours-" + b))
                cells.append("%s / %s (%s)" % (fmt_ns(rv), fmt_ns(ov), fr(ratio(ov, rv)))
                             if rv and ov else why(cyc.get("ours-" + b) if rv else cyc.get("raw-" + b))[:70])
            hd = r.get("handoff", {})
            hr, ho = p50(hd.get("raw")), p50(hd.get("ours"))
            hcell = "%s / %s (%s)" % (fmt_ns(hr), fmt_ns(ho), fr(ratio(ho, hr))) if hr and ho else \
                why(hd.get("ours") if hr else hd.get("raw"))[:70]
            cr = r.get("cross")
            if cr is None:
                ccell = "—"
            elif cr.get("early"):
                ccell = "**not coherent**: the waiter got the lock while the other mount held it (%d of %d rounds)" % (
                    cr["early"], cr["early"] + (cr.get("stats") or {}).get("n", 0))
            elif p50(cr):
                ccell = "coherent: handoff p50 %s (n=%d)" % (fmt_ns(p50(cr)), cr["stats"]["n"])
            else:
                ccell = why(cr)[:80]
            t.append(["**%s** `%s` (%s)%s" % (r["name"], r["path"], fstype,
                                               " — " + r["note"] if r.get("note") else ""),
                      (verdict_line or r.get("error", "")).replace("|", "/")] + cells + [hcell, ccell])
            rv, ov = p50(cyc.get("raw-flock")), p50(cyc.get("ours-flock"))
            groups.append((r["name"] if r["name"] == fstype else "%s (%s)" % (r["name"], fstype),
                           [(0, rv, fmt_ns(rv) if rv else "n/a"),
                            (1, ov, "%s  (%s raw)" % (fmt_ns(ov), fr(ratio(ov, rv))) if ov else "n/a")]))
        self.w("## Filesystems", "",
               "Per directory: the probe's verdict (`pl_probe` guarantee line, plus the mount options' "
               "verdict and one-line advice for NFS, CIFS and FUSE mounts), the open + lock + "
               "unlock + close cycle (raw / ours, ratio) for each backend, and the flock handoff "
               "(raw waiter / our timed waiter). plfwd is the project's lock-forwarding FUSE mount; "
               "its injected delays stand in for NFS/SMB round trips. For two-mount kinds the last "
               "column has a raw flock holder on the second mount and our waiter on the first.", "")
        self.table(["Filesystem", "Probe verdict", "flock cycle raw / ours", "lockf", "ofd",
                    "Handoff raw / ours (p50)", "Second mount holds → waiter here"], [tuple(x) for x in t])
        for s in sec.get("skipped", []):
            self.w("- skipped: " + s)
        self.w("")
        hgroups = []
        for r in rows:
            hd = r.get("handoff", {})
            hr, ho = p50(hd.get("raw")), p50(hd.get("ours"))
            fstype = ((r.get("probe") or {}).get("probe") or {}).get("fstype", "?")
            hgroups.append((r["name"] if r["name"] == fstype else "%s (%s)" % (r["name"], fstype),
                            [(0, hr, fmt_ns(hr) if hr else "n/a"),
                             (1, ho, "%s  (%s raw)" % (fmt_ns(ho), fr(ratio(ho, hr))) if ho else "n/a")]))
        if hgroups:
            self.svg("filesystems_handoff.svg", svgplot.hbar(
                "Handoff per filesystem: release → blocked waiter returns (p50, log scale)", hgroups,
                log=True, series_names=["raw flock waiter", "portalock timed waiter"],
                subtitle="holder and waiter are processes on the same mount"), "filesystem handoff")
        if groups:
            self.svg("filesystems.svg", svgplot.hbar(
                "Lock cycle per filesystem (open+flock+unlock+close, p50, log scale)", groups, log=True,
                series_names=["raw syscalls", "portalock Lock"],
                subtitle="network and FUSE rows pay round trips; the ratio shows what the library adds"),
                "filesystems")

    def redis(self):
        rd = self.sec.get("redis", {})
        self.w("## Redis lock", "")
        if not rd.get("available"):
            self.w("portalock's Redis lock: %s" % why(rd), "")
        ours = rd.get("ours", {}) if rd.get("available") else {}
        pl = rd.get("portalocker", {})
        rows, groups = [], []
        for key, label in (("cycle", "uncontended acquire + release"),
                           ("release_handoff", "release handoff (holder releases → waiter acquires)"),
                           ("kill_handoff", "SIGKILL handoff (holder killed → waiter acquires)")):
            o, p = ours.get(key), pl.get(key)
            ov, pv = p50(o), p50(p)
            rows.append((label, "%s (p99 %s)" % (fmt_ns(ov), fmt_ns(p99(o))) if ov else why(o if ours else rd),
                         "%s (p99 %s)" % (fmt_ns(pv), fmt_ns(p99(p))) if pv else why(p),
                         fr(ratio(pv, ov)) if ov and pv else "n/a"))
            groups.append((label.split(" (")[0], [(1, ov, fmt_ns(ov) if ov else "n/a"),
                                                   (2, pv, "%s  (%s ours)" % (fmt_ns(pv), fr(ratio(pv, ov)))
                                                    if pv and ov else (fmt_ns(pv) if pv else "n/a"))]))
        self.w("Redis %s on 127.0.0.1:%s (private server started for the run). Handoffs: holder and "
               "waiter are separate processes; the waiter is seen asleep before the release or kill."
               % (self.res["env"]["redis-server"], rd.get("port")), "")
        self.table(["Operation (p50)", "portalock (C, hiredis)", "portalocker RedisLock (Python)",
                    "portalocker / ours"], rows)
        thr = ours.get("contention", [])
        if thr:
            self.table(["Contenders", "Acquisitions/s", "Handoff p50", "Handoff p99", "Per-process min / max"],
                       [(r.get("procs"), "%.0f" % r["throughput_per_s"],
                         fmt_ns(r["handoff"].get("p50_ns")) if r["handoff"].get("n") else "—",
                         fmt_ns(r["handoff"].get("p99_ns")) if r["handoff"].get("n") else "—",
                         "%d / %d" % (r["per_process_min"], r["per_process_max"])) if r.get("ok")
                        else (r.get("procs", "?"), why(r), "", "", "") for r in thr])
        pthr = pl.get("contention", [])
        if pthr:
            self.w("portalocker RedisLock contending (Python processes, counts only):", "")
            self.table(["Contenders", "Acquisitions/s", "Per-process min / max", "Status"],
                       [(p["procs"], "%.1f" % p["throughput_per_s"],
                         "%d / %d" % (p["per_process_min"], p["per_process_max"]),
                         "ok" if p["ok"] else why(p)) for p in pthr])
        self.svg("redis.svg", svgplot.hbar("Redis lock: portalock vs portalocker's RedisLock (p50, log scale)",
                                           groups, log=True, series_names=["", "portalock", "portalocker RedisLock"],
                                           subtitle="lower is better"), "redis")

    def gbench(self):
        g = self.sec.get("gbench", {})
        self.w("## Google Benchmark (`pl_bench`)", "")
        if not g.get("available") or not g.get("rows"):
            self.w(why(g), "")
            return
        self.w("`BM_<Backend>_<Op>`, UseRealTime; full mode: median of 5 repetitions, "
               "interleaved at random (`--benchmark_enable_random_interleaving`), so load drift hits "
               "every row alike. Raw rows are the physical limit measured in the same binary.", "",
               "*About `***WARNING*** Library was built as DEBUG`*: Debian 12's libbenchmark-dev 1.7.1 "
               "is compiled without NDEBUG, so Google Benchmark reports `library_build_type: debug` "
               "(context: `%s`). It concerns the benchmark library's own bookkeeping between timing "
               "batches, not portalock, which was built %s; the numbers agree with pl_cycle's "
               "per-operation timings." % (g.get("context", {}).get("library_build_type", "?"),
                                           self.res["env"]["build_type"]), "")
        def order(r):
            parts = r["name"].split("_")
            bk = parts[1] if len(parts) > 1 else ""
            raw = bk.startswith("Raw")
            bk = bk[3:] if raw else bk
            op = parts[2] if len(parts) > 2 else ""
            return (["Flock", "Lockf", "Ofd"].index(bk) if bk in ("Flock", "Lockf", "Ofd") else 9,
                    ["LockUnlock", "Cycle", "Semaphore", "RLockNest"].index(op)
                    if op in ("LockUnlock", "Cycle", "Semaphore", "RLockNest") else 9,
                    0 if raw else 1, r["name"])
        rows = sorted(g["rows"], key=order)
        byname = {r["name"]: r for r in rows}
        t, groups = [], []
        for r in rows:
            parts = r["name"].split("_")
            limit = None
            if len(parts) == 3 and parts[1] in ("Flock", "Lockf", "Ofd") and parts[2] in ("LockUnlock", "Cycle"):
                limit = byname.get("BM_Raw%s_%s" % (parts[1], parts[2]))
            lv = limit["real_ns"] if limit else None
            t.append(("`%s`" % r["name"], fmt_ns(r["real_ns"]) if not r["error"] else "error: " + r["error"],
                      r["iterations"], fr(ratio(r["real_ns"], lv)) if lv else "", r.get("label", "")))
        for op in ("LockUnlock", "Cycle", "Semaphore", "RLockNest"):
            bars = []
            for bi, bk in enumerate(("Flock", "Lockf", "Ofd")):
                r = byname.get("BM_%s_%s" % (bk, op))
                raw = byname.get("BM_Raw%s_%s" % (bk, op))
                if raw:
                    bars.append((0, raw["real_ns"], "raw %s %s" % (bk.lower(), fmt_ns(raw["real_ns"]))))
                if r:
                    bars.append((1, r["real_ns"], "%s %s%s" % (bk.lower(), fmt_ns(r["real_ns"]),
                                                              "  (%s raw)" % fr(ratio(r["real_ns"], raw["real_ns"]))
                                                              if raw else "")))
            if bars:
                groups.append((op, bars))
        self.table(["Benchmark", "Real time", "Iterations (quick) or repetitions (full)", "× raw", "Label"], t)
        self.svg("gbench.svg", svgplot.hbar("Google Benchmark: time per operation (log scale)", groups,
                                            log=True, series_names=["raw syscalls", "portalock"],
                                            subtitle="BM_<Backend>_<Op> vs BM_Raw<Backend>_<Op>"),
                 "google benchmark")

    def method(self):
        self.w("## Method and caveats", "",
               "- Programs: `bench/pl_core_check.c`, `pl_cycle.c`, `pl_handoff.c`, `pl_contend.c`, "
               "`pl_spawn.c`, `pl_bench.cc` (Google Benchmark), Python peers in `bench/drivers/`; "
               "raw outputs of every run are in `raw/`, all numbers in `results.json`.",
               "- Clock: CLOCK_MONOTONIC everywhere (Python: `time.clock_gettime_ns`), so "
               "cross-process latencies are differences of one clock.",
               "- Percentiles are nearest-rank on all samples; \"× raw\" divides p50 by p50.",
               "- A 2-vCPU VM shared with other jobs: absolute numbers move by tens of percent "
               "between runs, tail latencies (p99, max) more; compare ratios within a run.",
               "- Handoff is only counted when the waiter was observed asleep in the kernel "
               "(/proc/PID/task/*/stat all in S) before the release, so it measures wake-up, not "
               "a race to the lock.", "")
        fails = self.res.get("failures", [])
        if fails:
            self.w("### Problems during this run", "")
            for f in fails:
                self.w("- " + f.replace("\n", " "))
            self.w("")

    def write(self):
        self.header()
        self.headline()
        self.environment()
        self.core()
        self.cycle()
        self.handoff()
        self.contention()
        self.filesystems()
        self.redis()
        self.spawn()
        self.gbench()
        self.method()
        text = pl_paths.relativize("\n".join(self.md) + "\n", ROOT, self.out)
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write(text)


def write(res, out):
    os.makedirs(out, exist_ok=True)
    Report(res, out).write()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    write(json.load(open(sys.argv[1])), sys.argv[2])
