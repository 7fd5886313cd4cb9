#!/usr/bin/python3
"""py-filelock (Debian python3-filelock) as a benchmark peer.

  filelock_driver.py actor|cycle|contend lock TARGET [...]

See driverlib.py for the commands.  "lock" is filelock.FileLock(TARGET,
timeout=T) with its default poll interval (0.05 s): a waiter polls.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driverlib  # noqa: E402
import filelock  # noqa: E402


def make_lock(kind, target, timeout):
    if kind != "lock":
        raise SystemExit("unknown kind %s" % kind)
    return filelock.FileLock(target, timeout=timeout)


if __name__ == "__main__":
    sys.exit(driverlib.main(make_lock, sys.argv))
