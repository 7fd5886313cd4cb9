#!/usr/bin/python3
"""ctest bench.publish_paths: committed reports carry no machine paths,
and publishing keeps the hand-measured sections.

relativize() turns the repository's absolute paths (and the report
directory's) into relative ones; publish.py refuses a report with an
absolute machine path and writes nothing, and publishes a clean one.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "ci"))
import pl_paths  # noqa: E402

fails = []


def check(name, cond):
    print(("ok - " if cond else "FAIL - ") + name)
    if not cond:
        fails.append(name)


def publish(report, dest):
    return subprocess.run([sys.executable, os.path.join(HERE, "publish.py"),
                           "--dest", dest, report],
                          capture_output=True, text=True)


with tempfile.TemporaryDirectory() as t:
    rep, dest = os.path.join(t, "report"), os.path.join(t, "dest")
    os.makedirs(rep)
    os.makedirs(dest)
    cmd = "%s/build/bench/pl_core_check --dir %s/.work/x --json %s/raw/c.json" % (
        ROOT, rep, rep)
    res = {"core_check": {"cmd": cmd}, "fs": ["/dev/shm"]}
    rel = pl_paths.relativize(res, ROOT, rep)
    check("relativize: the build path is repository-relative",
          rel["core_check"]["cmd"].startswith("build/bench/pl_core_check --dir "))
    check("relativize: nothing absolute is left",
          pl_paths.machine_paths(json.dumps(rel)) == [])
    check("relativize: system locations are kept", rel["fs"] == ["/dev/shm"])
    check("machine_paths: finds a home directory",
          pl_paths.machine_paths("Command: `/home/u/x/pl_bench`") == ["/home/u/x/pl_bench"])
    check("machine_paths: URLs, ratios and relative paths are not paths",
          pl_paths.machine_paths("redis://127.0.0.1:6379/0 µs/op a/b 1/2 "
                                 "[x](results/a.svg) /proc/PID/task/") == [])

    with open(os.path.join(rep, "report.md"), "w") as f:
        f.write("Command: `%s`\n" % cmd)
    with open(os.path.join(rep, "results.json"), "w") as f:
        json.dump(res, f)
    r = publish(rep, dest)
    check("publish: a report with an absolute path fails (exit 1)", r.returncode == 1)
    check("publish: ... and says why", "absolute machine path" in r.stderr)
    check("publish: ... and writes nothing",
          not os.path.exists(os.path.join(dest, "RESULTS.md")))

    with open(os.path.join(rep, "report.md"), "w") as f:
        f.write("Command: `%s`\n" % rel["core_check"]["cmd"])
    with open(os.path.join(rep, "results.json"), "w") as f:
        json.dump(rel, f)
    r = publish(rep, dest)
    check("publish: a relative report is published (exit 0)", r.returncode == 0)
    check("publish: RESULTS.md written",
          os.path.exists(os.path.join(dest, "RESULTS.md")))

    # Hand-measured sections after the KEEP line survive a new report.
    sys.path.insert(0, HERE)
    import publish as pub  # noqa: E402
    res_md = os.path.join(dest, "RESULTS.md")
    with open(res_md, "a") as f:
        f.write("\n" + pub.KEEP + "\n\n## By hand\n\n| n | 1.04 ms |\n")
    with open(os.path.join(rep, "report.md"), "w") as f:
        f.write("## Fresh\n\nCommand: `%s`\n" % rel["core_check"]["cmd"])
    r = publish(rep, dest)
    text = open(res_md).read()
    check("publish: the new report replaces the generated part",
          r.returncode == 0 and "## Fresh" in text)
    check("publish: the hand-measured part after KEEP is kept, once, last",
          text.count(pub.KEEP) == 1 and text.endswith("| n | 1.04 ms |\n")
          and text.index("## Fresh") < text.index(pub.KEEP))

print("publish paths: %d failed" % len(fails))
sys.exit(1 if fails else 0)
