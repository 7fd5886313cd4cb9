#!/usr/bin/python3
"""ctest conformance.report_paths: conformance/RESULTS.md and results.json
carry repository-relative paths, print the command that made them, and the
report step fails (writing nothing) if an absolute machine path is left."""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
fails = []


def check(name, cond):
    print(("ok - " if cond else "FAIL - ") + name)
    if not cond:
        fails.append(name)


def report(t, detail, invocation):
    res, runs = os.path.join(t, "results.jsonl"), os.path.join(t, "runs.jsonl")
    md, js = os.path.join(t, "RESULTS.md"), os.path.join(t, "results.json")
    for f in (md, js):
        if os.path.exists(f):
            os.unlink(f)
    with open(res, "w") as f:
        f.write(json.dumps({"implementation": "portalock", "version": "0.1.0",
                            "filesystem": "ext4", "backend": "flock",
                            "scenario": "bad_input", "verdict": "pass",
                            "observed": {"directory as lock path": detail},
                            "measured": {}, "reason": "",
                            "violations": []}) + "\n")
    with open(runs, "w") as f:
        f.write(json.dumps({"implementation": "portalock", "backend": "flock",
                            "filesystem": "ext4", "status": "ok",
                            "reason": "", "log": ROOT + "/build-matrix/x.log"}) + "\n")
    r = subprocess.run([sys.executable, os.path.join(HERE, "report.py"),
                        "--results", res, "--runs", runs, "--markdown", md,
                        "--json", js, "--kinds", "ext4",
                        "--invocation", invocation],
                       capture_output=True, text=True)
    text = ""
    if os.path.exists(md) and os.path.exists(js):
        text = open(md).read() + open(js).read()
    return r, text, os.path.exists(md) or os.path.exists(js)


with tempfile.TemporaryDirectory() as t:
    inside = ROOT + "/build-matrix/conformance/matrix-work/fs-ext4/dir/x.lock"
    r, text, wrote = report(t, "open(%s): Permission denied" % inside,
                            "ci/conformance-matrix.sh -B %s/build-matrix -k ext4" % ROOT)
    check("paths inside the checkout: report written (exit 0)",
          r.returncode == 0 and wrote)
    if r.returncode != 0:
        print(r.stderr)
    check("... the checkout's absolute path is gone", ROOT + "/" not in text)
    check("... relative instead", "build-matrix/conformance/matrix-work/" in text)
    check("... the command is printed, relative",
          "Command: `ci/conformance-matrix.sh -B build-matrix -k ext4`" in text)
    r, text, wrote = report(t, "open(/home/someone/x.lock): Permission denied",
                            "ci/conformance-matrix.sh")
    check("an absolute machine path outside the checkout: exit 1",
          r.returncode == 1)
    check("... and nothing written", not wrote)
    check("... and says why", "absolute machine path" in r.stderr)

print("report paths: %d failed" % len(fails))
sys.exit(1 if fails else 0)
