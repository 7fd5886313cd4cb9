#!/usr/bin/python3
"""Python portalocker (Debian python3-portalocker 2.2.1) as a benchmark peer.

  portalocker_driver.py actor|cycle|contend lock|redis:PORT TARGET [...]

See driverlib.py for the commands.  "lock" is portalocker.Lock(TARGET,
timeout=T) with its default check_interval (0.25 s): a waiter polls with
LOCK_NB.  "redis:PORT" is portalocker.RedisLock(TARGET) on 127.0.0.1:PORT.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driverlib  # noqa: E402
import portalocker  # noqa: E402


class _Redis:
    def __init__(self, channel, port, timeout):
        from portalocker import redis as plredis
        self.lock = plredis.RedisLock(
            channel, timeout=timeout,
            redis_kwargs={"host": "127.0.0.1", "port": port})

    def acquire(self):
        self.lock.acquire()

    def release(self):
        self.lock.release()


def make_lock(kind, target, timeout):
    if kind == "lock":
        return portalocker.Lock(target, timeout=timeout)
    if kind.startswith("redis:"):
        return _Redis(target, int(kind.split(":", 1)[1]), timeout)
    raise SystemExit("unknown kind %s" % kind)


if __name__ == "__main__":
    sys.exit(driverlib.main(make_lock, sys.argv))
