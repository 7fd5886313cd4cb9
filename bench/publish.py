#!/usr/bin/python3
"""Copies a report directory into the repository as bench/RESULTS.md.

  bench/publish.py [--dest DIR] REPORT_DIR   (ci/bench.sh --publish does this)

report.md becomes bench/RESULTS.md with its plot links rewritten to
results/NAME.svg; the plots and results.json go to bench/results/.  A report
that carries an absolute machine path (ci/pl_paths.py: anything but system
locations such as /dev/shm) is refused with exit status 1 and nothing is
written: committed reports use repository-relative paths.  --dest (default:
bench/) is for tests.

Sections measured by hand (commands the full run does not make: the Redis
server load, the Windows handoff under Wine, ...) live after the KEEP line
in bench/RESULTS.md; publishing keeps them, after the new report.
"""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ci"))
import pl_paths  # noqa: E402


KEEP = ("<!-- Measured by hand: bench/publish.py keeps everything below "
        "this line. -->")


def kept_part(path):
    """The existing report's hand-measured sections (from KEEP on), or ''."""
    try:
        old = open(path).read()
    except OSError:
        return ""
    i = old.find(KEEP)
    return old[i:] if i >= 0 else ""


def main(argv):
    dest = HERE
    if len(argv) == 3 and argv[0] == "--dest":
        dest, argv = argv[1], argv[2:]
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    src = argv[0]
    text = open(os.path.join(src, "report.md")).read()
    res_text = open(os.path.join(src, "results.json")).read()
    bad = pl_paths.machine_paths(text) + pl_paths.machine_paths(res_text)
    if bad:
        sys.stderr.write("publish: %s carries absolute machine paths (%d), "
                         "e.g. %s; not published\n"
                         % (src, len(bad), ", ".join(sorted(set(bad))[:3])))
        return 1
    dst = os.path.join(dest, "results")
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(dst):
        if f.endswith(".svg") or f.endswith(".json"):
            os.unlink(os.path.join(dst, f))
    for name in sorted(set(re.findall(r"\]\(([A-Za-z0-9_.-]+\.svg)\)", text))):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    text = re.sub(r"\]\(([A-Za-z0-9_.-]+\.svg)\)", r"](results/\1)", text)
    head = ("<!-- Copied from a bench-report/ by bench/publish.py; regenerate with "
            "`ci/bench.sh --publish`. -->\n")
    keep = kept_part(os.path.join(dest, "RESULTS.md"))
    if keep:
        text = text.rstrip("\n") + "\n\n" + keep
    with open(os.path.join(dest, "RESULTS.md"), "w") as f:
        f.write(head + text)
    res = json.loads(res_text)
    with open(os.path.join(dst, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("published %s -> %s" % (src, os.path.join(dest, "RESULTS.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
