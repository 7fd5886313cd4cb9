#!/usr/bin/python3
"""Copies a report directory into the repository as bench/RESULTS.md.

  bench/publish.py REPORT_DIR        (ci/bench.sh --publish does this)

report.md becomes bench/RESULTS.md with its plot links rewritten to
results/NAME.svg; the plots and results.json go to bench/results/.
"""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    src = sys.argv[1]
    dst = os.path.join(HERE, "results")
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(dst):
        if f.endswith(".svg") or f.endswith(".json"):
            os.unlink(os.path.join(dst, f))
    text = open(os.path.join(src, "report.md")).read()
    for name in sorted(set(re.findall(r"\]\(([A-Za-z0-9_.-]+\.svg)\)", text))):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    text = re.sub(r"\]\(([A-Za-z0-9_.-]+\.svg)\)", r"](results/\1)", text)
    head = ("<!-- Copied from a bench-report/ by bench/publish.py; regenerate with "
            "`ci/bench.sh --publish`. -->\n")
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(head + text)
    res = json.load(open(os.path.join(src, "results.json")))
    with open(os.path.join(dst, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("published %s -> %s" % (src, os.path.join(HERE, "RESULTS.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
