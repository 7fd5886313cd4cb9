"""Machine paths in committed reports (imported by bench/ and conformance/).

Committed reports (bench/RESULTS.md, bench/results/results.json,
conformance/RESULTS.md, conformance/results.json) carry paths relative to the
repository, never the absolute paths of the machine that made them.

  relativize(obj, root, *dirs)  strings in obj (str, list, dict) with the
                                repository root and dirs (e.g. the report
                                directory) made relative to root
  machine_paths(text)           the absolute paths in text that are not
                                system locations (/dev/shm, /proc, /usr/bin...)
  python3 ci/pl_paths.py FILE.. exit 1 and list them if any file has one
"""
import os
import re
import sys

# System locations that mean the same on every machine.
ALLOWED_PREFIXES = ("/dev/", "/proc/", "/sys/", "/usr/", "/bin/", "/sbin/",
                    "/etc/", "/lib/", "/run/lock/", "/var/lock/")
ALLOWED_EXACT = ("/", "/dev/shm", "/proc", "/sys", "/tmp", "/run/lock",
                 "/var/lock", "/dev/null")
# A '/' that starts a path: at the start, after white space or one of
# ( ` ' " = [ < , ; (so not inside a word, a URL or a relative path a/b/*),
# and followed by a path character.
PATH_RE = re.compile(r"(?<![^\s(`'\"=\[<,;])/[\w.+@-][\w.+@/-]*")


def machine_paths(text):
    bad = []
    for m in PATH_RE.finditer(text):
        p = m.group(0).rstrip(".")
        if p in ALLOWED_EXACT or p.startswith(ALLOWED_PREFIXES):
            continue
        bad.append(p)
    return bad


def _rel_str(s, pairs):
    for absdir, rel in pairs:
        s = s.replace(absdir + "/", "" if rel == "." else rel + "/")
        s = re.sub(re.escape(absdir) + r"(?![\w.+@-])", rel, s)
    return s


def relativize(obj, root, *dirs):
    root = os.path.realpath(root)
    pairs = []
    for d in dirs:
        if d:
            d = os.path.abspath(d)
            pairs.append((d, os.path.relpath(d, root)))
            pairs.append((os.path.realpath(d), os.path.relpath(d, root)))
    pairs.append((root, "."))
    pairs.sort(key=lambda p: -len(p[0]))  # longest first

    def walk(o):
        if isinstance(o, str):
            return _rel_str(o, pairs)
        if isinstance(o, list):
            return [walk(x) for x in o]
        if isinstance(o, dict):
            return {walk(k): walk(v) for k, v in o.items()}
        return o
    return walk(obj)


def main(argv):
    bad = 0
    for path in argv:
        for p in machine_paths(open(path, encoding="utf-8").read()):
            print("%s: absolute machine path: %s" % (path, p))
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
