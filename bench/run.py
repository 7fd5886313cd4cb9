#!/usr/bin/python3
"""Runs every portalock benchmark and writes a report directory.

  bench/run.py --bin-dir BUILD/bench --out bench-report [--quick] [--check]
               [--fs NAME=PATH[=NOTE] ...] [--cli PATH] [--redis-port P |
               --start-redis] [--no-root] [--build-type T] [--scale X]

ci/bench.sh is the usual entry point (it installs, builds in Release, mounts the
filesystems and starts Redis); ctest runs `run.py --quick --check` as the
smoke test bench.quick.  Output: OUT/results.json, OUT/report.md, OUT/*.svg,
OUT/raw/*.json (every program's own output).  Progress goes to stderr.

--check validates the output (JSON parses, every program that must work did,
every SVG is well-formed XML, the report links resolve); it never judges
speed.  Peers that are missing (Python packages, Redis, the CLI) are reported
"not available: <reason>" and do not fail the check.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ci"))
import pl_paths  # noqa: E402
REPO = os.path.dirname(HERE)
PY = "/usr/bin/python3"
T_START = time.monotonic()


def progress(msg):
    el = time.monotonic() - T_START
    sys.stderr.write("[bench %2d:%02d] %s\n" % (el // 60, el % 60, msg))
    sys.stderr.flush()


def stats(samples):
    """Same nearest-rank statistics as the C programs (kit/benchkit.c)."""
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return {"n": 0}

    def pct(p):
        return float(s[min(n - 1, int(p * (n - 1) + 0.5))])
    return {"n": n, "min_ns": float(s[0]), "p50_ns": pct(0.5), "p90_ns": pct(0.9),
            "p99_ns": pct(0.99), "max_ns": float(s[-1]), "mean_ns": sum(s) / n}


def sh(cmd, timeout=10):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Runner:
    def __init__(self, args):
        self.a = args
        self.bin = os.path.abspath(args.bin_dir)
        self.out = os.path.abspath(args.out)
        self.rawdir = os.path.join(self.out, "raw")
        self.quick = args.quick
        self.scale = args.scale
        self.res = {"quick": self.quick, "sections": {}, "failures": [],
                    "notes": [], "invocation": args.invocation}
        self.counter = 0

    # ---- helpers ---------------------------------------------------------
    def b(self, name):
        return os.path.join(self.bin, name)

    def q(self, quick, full):
        """quick or full parameter (full scaled by --scale)."""
        if self.quick:
            return quick
        if isinstance(full, int):
            return max(1, int(full * self.scale))
        return full * self.scale

    def run_json(self, cmd, timeout, name, required=True):
        """Runs a program that prints one JSON object; keeps a raw copy."""
        self.counter += 1
        rawname = "%03d-%s.json" % (self.counter, re.sub(r"[^A-Za-z0-9_.-]+", "_", name))
        env = dict(os.environ, PL_BENCH_QUIET="1")
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=timeout, env=env)
            out, err, rc = p.stdout, p.stderr, p.returncode
        except subprocess.TimeoutExpired:
            out, err, rc = "", "timed out after %ss" % timeout, -1
        except OSError as e:
            out, err, rc = "", str(e), -1
        obj = None
        for line in reversed(out.strip().splitlines()):
            try:
                obj = json.loads(line)
                break
            except ValueError:
                continue
        if obj is None:
            obj = {"ok": False, "error": (err.strip().splitlines() or ["no output"])[-1]
                   + " (exit %d)" % rc}
        obj.setdefault("ok", rc == 0)
        if rc != 0 and obj.get("ok"):
            obj["ok"] = False
            obj["error"] = "exit %d: %s" % (rc, err.strip()[-300:])
        obj["cmd"] = " ".join(cmd)
        with open(os.path.join(self.rawdir, rawname), "w") as f:
            json.dump(obj, f, indent=1)
        if not obj.get("ok") and name.startswith("fscross") and obj.get("early"):
            progress("  %s: the second mount does not exclude this one (%d rounds)"
                     % (name[8:], obj["early"]))
        elif not obj.get("ok"):
            msg = "%s: %s" % (name, obj.get("error", "failed"))
            progress("  FAILED " + msg)
            if required:
                self.res["failures"].append(msg)
        return obj

    def tmpdir(self, base):
        return tempfile.mkdtemp(prefix="plbench-", dir=base)

    # ---- environment -----------------------------------------------------
    def environment(self):
        cpu = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = ""
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal"):
                        mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
        except OSError:
            pass
        ver = ""
        try:
            with open(os.path.join(REPO, "lib/include/portalock.h")) as f:
                m = re.search(r'PL_VERSION_STRING "([^"]+)"', f.read())
                ver = m.group(1) if m else ""
        except OSError:
            pass
        commit = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
        if commit and sh(["git", "-C", REPO, "status", "--porcelain",
                          "--untracked-files=no"]):
            commit += " (with uncommitted changes)"

        def deb(p):
            return sh(["dpkg-query", "-W", "-f", "${Version}", p]) or "not installed"
        self.res["env"] = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "kernel": platform.release(),
            "os": "Debian " + (open("/etc/debian_version").read().strip()
                               if os.path.exists("/etc/debian_version") else "?"),
            "cpu": cpu, "nproc": os.cpu_count(), "memory": mem,
            "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "portalock": ver, "git_commit": commit or "unknown",
            "build_type": self.a.build_type,
            "compiler": sh(["cc", "--version"]).splitlines()[0] if sh(["cc", "--version"]) else "",
            "libbenchmark": deb("libbenchmark-dev"),
            "python3-portalocker": deb("python3-portalocker"),
            "python3-filelock": deb("python3-filelock"),
            "python3-redis": deb("python3-redis"),
            "redis-server": deb("redis-server"),
            "libhiredis": deb("libhiredis-dev"),
            "util-linux (flock(1))": deb("util-linux"),
            "python": sh([PY, "--version"]),
            "mode": "quick" if self.quick else "full",
        }

    # ---- sections ----------------------------------------------------------
    def gbench(self, local):
        progress("Google Benchmark (pl_bench)")
        exe = self.b("pl_bench")
        sec = {"available": os.path.exists(exe)}
        if not sec["available"]:
            sec["reason"] = "pl_bench not built (libbenchmark-dev missing?)"
            self.res["sections"]["gbench"] = sec
            return
        d = self.tmpdir(local)
        outf = os.path.join(self.rawdir, "gbench.json")
        cmd = [exe, "--pl_dir=" + d,
               "--benchmark_min_time=%s" % self.q(0.01, 0.1),
               "--benchmark_out=" + outf, "--benchmark_out_format=json"]
        if not self.quick:
            cmd += ["--benchmark_repetitions=5",
                    "--benchmark_enable_random_interleaving=true",
                    "--benchmark_report_aggregates_only=true"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            sec["stderr"] = p.stderr.strip()[-2000:]
            data = json.load(open(outf))
            sec["context"] = data.get("context", {})
            rows = []
            for bm in data.get("benchmarks", []):
                if bm.get("run_type") == "aggregate" and bm.get("aggregate_name") != "median":
                    continue
                name = bm.get("run_name", bm["name"]).split("/")[0]
                rows.append({"name": name, "real_ns": bm.get("real_time"),
                             "unit": bm.get("time_unit", "ns"),
                             "iterations": bm.get("iterations"),
                             "error": bm.get("error_message", ""),
                             "label": bm.get("label", "")})
            for r in rows:
                mul = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}.get(r["unit"], 1)
                if r["real_ns"] is not None:
                    r["real_ns"] *= mul
                if r["error"]:
                    self.res["failures"].append("pl_bench %s: %s" % (r["name"], r["error"]))
            sec["rows"] = rows
            sec["ok"] = p.returncode == 0 and bool(rows)
            if not sec["ok"]:
                self.res["failures"].append("pl_bench exit %d: %s" % (p.returncode, p.stderr[-300:]))
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            sec["ok"] = False
            sec["reason"] = str(e)
            self.res["failures"].append("pl_bench: %s" % e)
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["gbench"] = sec

    def core_check(self, local):
        progress("core check (pl_core_check): Lock cycle vs raw, timed handoff vs raw")
        d = self.tmpdir(local)
        outf = os.path.join(self.rawdir, "core_check.json")
        cmd = [self.b("pl_core_check"), "--dir", d,
               "--cycles", str(self.q(2000, 20000)),
               "--handoffs", str(self.q(100, 2000)), "--json", outf]
        sec = {"cmd": " ".join(cmd)}
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, PL_BENCH_QUIET="1"))
            sec["text"] = p.stdout
            sec["ok"] = p.returncode == 0
            if p.returncode == 0:
                sec.update(json.load(open(outf)))
            else:
                sec["error"] = p.stderr.strip()[-400:]
                self.res["failures"].append("pl_core_check: " + sec["error"])
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            sec["ok"] = False
            sec["error"] = str(e)
            self.res["failures"].append("pl_core_check: %s" % e)
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["core_check"] = sec

    def peers_cycle(self, local):
        progress("uncontended cycle: ours, raw, portalocker, py-filelock")
        d = self.tmpdir(local)
        n, budget = self.q(500, 20000), self.q(0.3, 2.0)
        rows = []
        labels = {"raw": "raw open+flock+unlock+close (limit)",
                  "ours": "portalock Lock (pl_lock_acquire+release)",
                  "rawfd": "raw flock+unlock on an open fd (limit)",
                  "oursfd": "portalock pl_lock_fd+pl_unlock_fd"}
        for pair in ("raw,ours", "rawfd,oursfd"):
            r = self.run_json([self.b("pl_cycle"), "--impl", pair, "--backend", "flock",
                               "--target", os.path.join(d, "cycle"),
                               "--n", str(n), "--budget", str(budget)],
                              60, "cycle-" + pair.replace(",", "-"))
            res = r.get("results") or [{"impl": i, "ok": False, "error": r.get("error", "failed")}
                                       for i in pair.split(",")]
            for x in res:
                rows.append({"id": x["impl"], "label": labels[x["impl"]], **x})
        for drv, label in (("portalocker_driver.py", "Python portalocker %s Lock" % self.res["env"]["python3-portalocker"]),
                           ("filelock_driver.py", "Python py-filelock %s FileLock" % self.res["env"]["python3-filelock"])):
            r = self.run_json([PY, os.path.join(HERE, "drivers", drv), "cycle", "lock",
                               os.path.join(d, drv + ".lock"), str(self.q(200, 5000)),
                               str(budget)], 120, "cycle-" + drv, required=False)
            rows.append({"id": drv.split("_")[0], "label": label, **r})
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["cycle"] = {"rows": rows, "fs": "local"}

    def peers_handoff(self, local):
        progress("handoff (holder process releases -> waiter returns): ours, raw, portalocker, py-filelock")
        d = self.tmpdir(local)
        rows = []
        drv = os.path.join(HERE, "drivers")
        specs = [
            ("raw", "raw waiter blocked in flock(LOCK_EX) (limit)", "raw:flock", self.q(50, 2000), 0),
            ("ours", "portalock Lock, timed acquire (timeout 30 s)", "ours:flock", self.q(50, 2000), 0),
            ("oursfd", "portalock pl_lock_fd_timed (timeout 30 s)", "oursfd:flock", self.q(50, 1000), 0),
            ("oursinf", "portalock Lock, timeout -1 (wait forever)", "oursinf:flock", self.q(50, 1000), 0),
            ("portalocker", "Python portalocker Lock (timeout 30 s, check_interval 0.25 s)",
             "cmd:%s %s/portalocker_driver.py actor lock" % (PY, drv), self.q(3, 40), 250000),
            ("filelock", "Python py-filelock FileLock (timeout 30 s, poll 0.05 s)",
             "cmd:%s %s/filelock_driver.py actor lock" % (PY, drv), self.q(3, 60), 50000),
        ]
        # The C waiters take turns in blocks (load drift hits them alike);
        # the polling Python peers run once each.
        blocks = 2 if self.quick else 5
        merged = {}
        for b in range(blocks):
            for k in range(4):
                rid, label, spec, n, jitter_us = specs[(b + k) % 4]
                progress("  handoff %s, block %d/%d (n=%d)" % (rid, b + 1, blocks, n // blocks))
                r = self.run_json([self.b("pl_handoff"), "--holder", "raw:flock", "--waiter", spec,
                                   "--target", os.path.join(d, "handoff.lock"),
                                   "--n", str(max(1, n // blocks)), "--samples",
                                   "--settle-us", "100", "--budget", str(self.q(3, 30)),
                                   "--timeout", "30"], 300, "handoff-%s-%d" % (rid, b))
                m = merged.setdefault(rid, {"samples": [], "ok": True, "error": "",
                                            "early": 0, "not_blocked": 0})
                m["samples"] += r.pop("samples_ns", [])
                m["early"] += r.get("early", 0)
                m["not_blocked"] += r.get("not_blocked", 0)
                if not r.get("ok"):
                    m["ok"] = False
                    m["error"] = r.get("error", "failed")
        for rid, label, spec, n, jitter_us in specs[:4]:
            m = merged[rid]
            rows.append({"id": rid, "label": label, "ok": m["ok"] and bool(m["samples"]),
                         "error": m["error"], "early": m["early"],
                         "not_blocked": m["not_blocked"], "stats": stats(m["samples"])})
        for rid, label, spec, n, jitter_us in specs[4:]:
            progress("  handoff %s (n=%d)" % (rid, n))
            r = self.run_json([self.b("pl_handoff"), "--holder", "raw:flock", "--waiter", spec,
                               "--target", os.path.join(d, "handoff.lock"), "--n", str(n),
                               "--settle-us", "100", "--jitter-us", str(jitter_us),
                               "--budget", str(self.q(5, 60)), "--timeout", "30"],
                              300, "handoff-" + rid, required=False)
            rows.append({"id": rid, "label": label, **r})
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["handoff"] = {"rows": rows}

    def spawn(self, local):
        progress("spawn cost: flock(1) vs the portalock CLI")
        d = self.tmpdir(local)
        f = os.path.join(d, "spawn.lock")
        rows = []
        n = self.q(30, 500)
        flock = shutil.which("flock")
        true = shutil.which("true") or "/bin/true"
        cmds = []
        if flock:
            cmds.append(("flock", "util-linux flock -n f true", [flock, "-n", f, true]))
        cli = self.a.cli
        if cli and os.path.exists(cli):
            cmds.append(("portalock", "portalock -n f true (our CLI)", [cli, "-n", f, true]))
        cmds.append(("true", "true alone (spawn floor)", [true]))
        argv = [self.b("pl_spawn"), "--n", str(n), "--budget", str(self.q(1, 6))]
        for _, _, cmd in cmds:
            argv += ["--"] + cmd
        r = self.run_json(argv, 120, "spawn", required=False)
        res = r.get("results") or []
        for i, (rid, label, _) in enumerate(cmds):
            row = res[i] if i < len(res) else {"ok": False, "error": r.get("error", "no result")}
            rows.append({"id": rid, "label": label, **row})
        sec = {"rows": rows}
        if not (cli and os.path.exists(cli)):
            sec["cli_reason"] = "portalock CLI not found (%s)" % (cli or "no --cli given")
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["spawn"] = sec

    def contention(self, local):
        d = self.tmpdir(local)
        procs = [1, 2, 4] if self.quick else [1, 2, 4, 8, 16, 32]
        secs = self.q(0.3, 2.0)
        rows = []
        for impl in ("raw", "ours", "rawfd", "oursfd"):
            for n in procs:
                if impl in ("rawfd", "oursfd") and n not in (2, 8):
                    continue
                progress("contention %s N=%d (%.1f s)" % (impl, n, secs))
                r = self.run_json([self.b("pl_contend"), "--impl", impl, "--backend", "flock",
                                   "--target", os.path.join(d, "contend.lock"),
                                   "--procs", str(n), "--seconds", str(secs)],
                                  120, "contend-%s-%d" % (impl, n))
                rows.append(r)
        sems = [(4, 2)] if self.quick else [(4, 2), (8, 2), (16, 4), (32, 8)]
        for m, slots in sems:
            progress("semaphore: %d contenders over %d slots" % (m, slots))
            r = self.run_json([self.b("pl_contend"), "--impl", "sem", "--backend", "flock",
                               "--target", os.path.join(d, "sem_%d_%d" % (m, slots)),
                               "--procs", str(m), "--slots", str(slots),
                               "--seconds", str(secs)], 120, "sem-%d-%d" % (m, slots))
            rows.append(r)
        # Python peers: processes too, counts only
        peers = []
        for drv, rid in (("portalocker_driver.py", "portalocker"),
                         ("filelock_driver.py", "filelock")):
            for n in ([2] if self.quick else [2, 8]):
                progress("contention %s N=%d" % (rid, n))
                peers.append(self.py_contend(drv, rid, "lock", os.path.join(d, rid + ".lock"),
                                             n, self.q(0.5, 3.0)))
        shutil.rmtree(d, ignore_errors=True)
        self.res["sections"]["contention"] = {"rows": rows, "peers": peers}

    def py_contend(self, drv, rid, kind, target, n, secs):
        start = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + int((0.5 + 0.15 * n) * 1e9)
        ps = [subprocess.Popen([PY, os.path.join(HERE, "drivers", drv), "contend", kind,
                                target, str(start), str(secs)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(n)]
        counts, errs = [], []
        for p in ps:
            try:
                o, e = p.communicate(timeout=secs + 60 + n)
                j = json.loads(o.strip().splitlines()[-1])
                counts.append(j["count"])
                if not j.get("ok"):
                    errs.append(j.get("error"))
            except (subprocess.TimeoutExpired, ValueError, IndexError, KeyError) as ex:
                p.kill()
                p.wait()
                errs.append(str(ex))
        total = sum(counts)
        sq = sum(c * c for c in counts)
        r = {"impl": rid, "procs": n, "seconds": secs, "counts": counts, "total": total,
             "throughput_per_s": total / secs if secs else 0,
             "per_process_min": min(counts) if counts else 0,
             "per_process_max": max(counts) if counts else 0,
             "min_max_ratio": (min(counts) / max(counts)) if counts and max(counts) else 0,
             "jain": (total * total / (len(counts) * sq)) if sq else 0,
             "ok": not errs, "error": "; ".join(map(str, errs))}
        with open(os.path.join(self.rawdir, "contend-%s-%s-%d.json" % (
                rid, kind.split(":")[0], n)), "w") as f:
            json.dump(r, f, indent=1)
        return r

    def filesystems(self, fslist):
        rows = []
        for name, path, note in fslist:
            progress("filesystem %s (%s)" % (name, path))
            row = {"name": name, "path": path, "note": note}
            try:
                d = self.tmpdir(path)
            except OSError as e:
                row["error"] = "cannot create a directory in %s: %s" % (path, e)
                rows.append(row)
                self.res["failures"].append("fs %s: %s" % (name, row["error"]))
                continue
            row["probe"] = self.run_json([self.b("pl_cycle"), "--impl", "probe",
                                          "--target", d, "--n", "1"], 120,
                                         "probe-" + name)
            budget = self.q(0.3, 2.0)
            cyc = {}
            for backend in ("flock", "lockf", "ofd"):
                r = self.run_json(
                    [self.b("pl_cycle"), "--impl", "raw,ours", "--backend", backend,
                     "--target", os.path.join(d, "c-%s" % backend),
                     "--n", str(self.q(300, 5000)), "--budget", str(budget)],
                    120, "fscycle-%s-%s" % (name, backend), required=False)
                for x in r.get("results") or [{"impl": i, "ok": False,
                                               "error": r.get("error", "failed")}
                                              for i in ("raw", "ours")]:
                    cyc["%s-%s" % (x["impl"], backend)] = x
            row["cycle"] = cyc
            hand = {}
            for rid, spec in (("raw", "raw:flock"), ("ours", "ours:flock")):
                hand[rid] = self.run_json(
                    [self.b("pl_handoff"), "--holder", "raw:flock", "--waiter", spec,
                     "--target", os.path.join(d, "h.lock"), "--n", str(self.q(20, 300)),
                     "--budget", str(self.q(1.0, 3.0)), "--settle-us", "200",
                     "--timeout", "30"], 120, "fshandoff-%s-%s" % (name, rid),
                    required=False)
            row["handoff"] = hand
            d2base = self.dir2.get(name)
            if d2base:
                # the same file through the second mount: does a holder there
                # exclude a waiter here?
                d2 = os.path.join(d2base, os.path.relpath(d, path))
                n = self.q(10, 40)
                row["cross"] = self.run_json(
                    [self.b("pl_handoff"), "--holder", "raw:flock", "--waiter", "ours:flock",
                     "--target", os.path.join(d, "x.lock"),
                     "--holder-target", os.path.join(d2, "x.lock"), "--n", str(n),
                     "--budget", str(self.q(1.0, 3.0)), "--settle-us", "200",
                     "--timeout", "30"], 120, "fscross-%s" % name, required=False)
                row["dir2"] = d2base
            shutil.rmtree(d, ignore_errors=True)
            rows.append(row)
        self.res["sections"]["filesystems"] = {"rows": rows,
                                               "skipped": self.a.fs_skipped}

    def redis(self, port):
        sec = {"port": port}
        if not port:
            sec["available"] = False
            sec["reason"] = self.redis_reason or "no Redis server (start one with --start-redis or --redis-port)"
            self.res["sections"]["redis"] = sec
            return
        chan = "plbench-%d" % os.getpid()
        hp = "127.0.0.1:%d" % port
        progress("redis: ours acquire+release")
        r = self.run_json([self.b("pl_cycle"), "--impl", "redis", "--redis", hp,
                           "--target", chan + "-cycle", "--n", str(self.q(100, 3000)),
                           "--budget", str(self.q(0.5, 3.0))], 120, "redis-cycle-ours",
                          required=False)
        sec["ours"] = {"cycle": r}
        if not r.get("ok"):
            sec["available"] = False
            sec["reason"] = r.get("error", "failed")
        else:
            sec["available"] = True
            ours_spec = "redis:" + hp
            for kill in (False, True):
                key = "kill_handoff" if kill else "release_handoff"
                progress("redis: ours %s" % key)
                sec["ours"][key] = self.run_json(
                    [self.b("pl_handoff"), "--holder", ours_spec, "--waiter", ours_spec,
                     "--target", "%s-%s" % (chan, key), "--n", str(self.q(10, 300 if not kill else 100)),
                     "--budget", str(self.q(3, 30)), "--settle-us", "2000", "--timeout", "30"]
                    + (["--kill"] if kill else []), 300, "redis-%s-ours" % key, required=False)
            thr = []
            for n in ([1, 2] if self.quick else [1, 2, 4, 8, 16]):
                progress("redis: ours throughput N=%d" % n)
                thr.append(self.run_json([self.b("pl_contend"), "--impl", "redis", "--redis", hp,
                                          "--target", "%s-contend-%d" % (chan, n), "--procs", str(n),
                                          "--seconds", str(self.q(0.5, 2.0))], 120,
                                         "redis-contend-%d" % n, required=False))
            sec["ours"]["contention"] = thr
        # portalocker's RedisLock
        drv = "cmd:%s %s/drivers/portalocker_driver.py actor redis:%d" % (PY, HERE, port)
        progress("redis: portalocker RedisLock acquire+release")
        pr = {"cycle": self.run_json([PY, os.path.join(HERE, "drivers", "portalocker_driver.py"),
                                      "cycle", "redis:%d" % port, chan + "-pl-cycle",
                                      str(self.q(10, 100)), str(self.q(1.0, 5.0))],
                                     120, "redis-cycle-portalocker", required=False)}
        for kill in (False, True):
            key = "kill_handoff" if kill else "release_handoff"
            progress("redis: portalocker %s" % key)
            pr[key] = self.run_json(
                [self.b("pl_handoff"), "--holder", drv, "--waiter", drv,
                 "--target", "%s-pl-%s" % (chan, key), "--n", str(self.q(3, 20)),
                 "--budget", str(self.q(5, 25)), "--settle-us", "20000", "--timeout", "30"]
                + (["--kill"] if kill else []), 300, "redis-%s-portalocker" % key,
                required=False)
        pthr = []
        for n in ([2] if self.quick else [2, 4]):
            progress("redis: portalocker RedisLock throughput N=%d" % n)
            pthr.append(self.py_contend("portalocker_driver.py", "portalocker", "redis:%d" % port,
                                        "%s-pl-contend-%d" % (chan, n), n, self.q(1.0, 3.0)))
        pr["contention"] = pthr
        sec["portalocker"] = pr
        self.res["sections"]["redis"] = sec

    # ---- driver ---------------------------------------------------------------
    def start_redis(self):
        self.redis_reason = ""
        self.redis_pid = None
        if self.a.redis_port:
            return self.a.redis_port
        if not self.a.start_redis:
            self.redis_reason = "no Redis server given (--redis-port / --start-redis)"
            return None
        exe = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
        if not exe:
            self.redis_reason = "redis-server not installed"
            return None
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rdir = tempfile.mkdtemp(prefix="plbench-redis-")
        self.redis_dir = rdir
        pidf = os.path.join(rdir, "redis.pid")
        subprocess.run([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                        "--appendonly", "no", "--daemonize", "yes", "--pidfile", pidf,
                        "--logfile", os.path.join(rdir, "redis.log"), "--dir", rdir],
                       capture_output=True, timeout=10)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        self.redis_pid = int(open(pidf).read().strip())
                        progress("started redis-server pid %d on 127.0.0.1:%d" % (self.redis_pid, port))
                        return port
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.redis_reason = "redis-server did not answer on 127.0.0.1:%d" % port
        return None

    def stop_redis(self):
        if self.redis_pid:
            try:
                os.kill(self.redis_pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(self.redis_pid, 0)
                    time.sleep(0.05)
                os.kill(self.redis_pid, signal.SIGKILL)
            except OSError:
                pass
            progress("stopped redis-server pid %d" % self.redis_pid)
            shutil.rmtree(self.redis_dir, ignore_errors=True)

    def run(self):
        os.makedirs(self.rawdir, exist_ok=True)
        for f in os.listdir(self.rawdir):
            os.unlink(os.path.join(self.rawdir, f))
        self.environment()
        fslist = []
        self.dir2 = dict(x.split("=", 1) for x in self.a.fs_dir2)
        for spec in self.a.fs:
            parts = spec.split("=", 2)
            if len(parts) < 2:
                raise SystemExit("--fs wants NAME=PATH[=NOTE], got %s" % spec)
            fslist.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
        if not fslist:
            fslist = [("local", self.a.local_dir or self.out, "the directory the report is written to")]
            if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
                fslist.append(("tmpfs", "/dev/shm", "/dev/shm"))
            else:
                self.a.fs_skipped.append("tmpfs: /dev/shm is missing or not writable")
        local = self.a.local_dir or fslist[0][1]
        self.res["local_dir"] = local
        port = self.start_redis()
        try:
            self.gbench(local)
            self.core_check(local)
            self.peers_cycle(local)
            self.peers_handoff(local)
            self.spawn(local)
            self.contention(local)
            self.filesystems(fslist)
            self.redis(port)
        finally:
            self.stop_redis()
        self.res["env"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        self.res["env"]["duration_s"] = round(time.monotonic() - T_START, 1)
        # Committed reports carry repository-relative paths (ci/pl_paths.py;
        # bench/publish.py refuses absolute ones).
        self.res = pl_paths.relativize(self.res, os.path.dirname(HERE),
                                       self.out, self.bin)
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.res, f, indent=1)
        sys.path.insert(0, HERE)
        import report
        report.write(self.res, self.out)
        progress("report: %s" % os.path.join(self.out, "report.md"))
        return self.res


def check(out, res):
    """Well-formedness only; never speed."""
    import xml.etree.ElementTree as ET
    problems = list(res.get("failures", []))
    rep = os.path.join(out, "report.md")
    if not os.path.exists(rep):
        problems.append("report.md missing")
    else:
        text = open(rep).read()
        for link in re.findall(r"\]\(([^)]+\.svg)\)", text):
            if not os.path.exists(os.path.join(out, link)):
                problems.append("report links a missing plot %s" % link)
        if len(re.findall(r"\]\(([^)]+\.svg)\)", text)) < 3:
            problems.append("report embeds fewer than 3 plots")
    for f in os.listdir(out):
        p = os.path.join(out, f)
        if f.endswith(".svg"):
            try:
                ET.parse(p)
            except ET.ParseError as e:
                problems.append("%s: %s" % (f, e))
    for f in os.listdir(os.path.join(out, "raw")):
        try:
            json.load(open(os.path.join(out, "raw", f)))
        except ValueError as e:
            problems.append("raw/%s: %s" % (f, e))
    sec = res["sections"]
    if not sec.get("core_check", {}).get("ok"):
        problems.append("pl_core_check did not run")
    for r in sec.get("contention", {}).get("rows", []):
        if r.get("ok") and r.get("exclusion_ok") is False:
            problems.append("exclusion broken in %s N=%s" % (r.get("impl"), r.get("procs")))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="build directory of bench/ (the programs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    ap.add_argument("--check", action="store_true", help="validate the output; exit 1 if malformed")
    ap.add_argument("--fs", action="append", default=[], metavar="NAME=PATH[=NOTE]")
    ap.add_argument("--fs-dir2", action="append", default=[], metavar="NAME=PATH",
                    help="a second mount of NAME's export (cross-mount exclusion row)")
    ap.add_argument("--fs-skipped", action="append", default=[], metavar="NAME: REASON",
                    help="filesystems the caller could not set up (listed in the report)")
    ap.add_argument("--local-dir", help="directory for the local-disk rows (default: --out)")
    ap.add_argument("--cli", help="path of the portalock CLI")
    ap.add_argument("--redis-port", type=int)
    ap.add_argument("--start-redis", action="store_true", help="start a private redis-server")
    ap.add_argument("--no-root", action="store_true", help="(informational) run without mounts")
    ap.add_argument("--build-type", default="unknown")
    ap.add_argument("--invocation", default="bench/run.py",
                    help="the command line to quote in the report")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the full run's sample counts and durations")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    r = Runner(a)
    res = r.run()
    if res["failures"]:
        progress("%d problem(s):" % len(res["failures"]))
        for f in res["failures"]:
            progress("  " + f)
    if a.check:
        probs = check(os.path.abspath(a.out), res)
        if probs:
            for p in probs:
                print("CHECK FAILED: " + p)
            return 1
        print("bench check: OK (%d raw results, report %s)" % (
            len(os.listdir(os.path.join(a.out, "raw"))), os.path.join(a.out, "report.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
