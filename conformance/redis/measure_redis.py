#!/usr/bin/python3
"""measure_redis.py -- latency of Redis locks, driven through contenders that
speak the conformance line protocol (pl_redis_contender, and portalocker's
RedisLock through adapters/portalocker_redis_contender.py).

For each implementation, in the same run and against the same server:
  uncontended  acquire+release in one process (contender's "bench" command)
  release      holder releases -> a waiting process's acquire returns
               (from the holder's timestamp taken just before its release
               call to the waiter's timestamp just after acquire returned)
  kill         holder SIGKILLed -> the waiting process's acquire returns
All timestamps are CLOCK_MONOTONIC (time.monotonic_ns in Python), comparable
across processes.  Prints one line per measurement; --json for a JSON line.

  measure_redis.py --port 56379 --ours build/conformance/contender/pl_redis_contender
                   [--portalocker conformance/adapters/portalocker_redis_contender.py]
                   [--rounds 20] [--bench-n 2000] [--json]
                   [--waiters N] [--open-args 'fair']

With --waiters N (> 1, ours only) the release and kill handoffs are measured
with N processes waiting: from the release (kill) to the first waiter's
acquire; then every waiter takes and releases the lock once before the next
round (issue 8 item 9: the queue's head polls, the others wait for
notifications).  --open-args adds words to every waiter's "open" line.
"""
import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import time


class Proc:
    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True,
                                  bufsize=1)
        self.cmd('hello')

    def send(self, line):
        self.p.stdin.write(line + '\n')
        self.p.stdin.flush()

    def recv(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError('contender exited')
        words = line.split()
        fields = dict(w.split('=', 1) for w in words[1:] if '=' in w)
        return words[0], fields, line.strip()

    def cmd(self, line, want=None):
        self.send(line)
        word, fields, raw = self.recv()
        if want is not None and word != want:
            raise RuntimeError(f'{line!r} -> {raw}')
        return fields

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def p50(v):
    return statistics.median(v)


def measure(argv, name, rounds, bench_n):
    lock = f'measure.{os.getpid()}.{name}'
    out = {}
    a = Proc(argv)
    a.cmd(f'open id=a path={lock}.u timeout=10', 'opened')
    f = a.cmd(f'bench id=a n={bench_n}', 'bench')
    out['uncontended_p50_ms'] = float(f['p50_us']) / 1e3
    a.kill()

    h, w = Proc(argv), Proc(argv)
    h.cmd(f'open id=h path={lock}.r timeout=10', 'opened')
    w.cmd(f'open id=w path={lock}.r timeout=10', 'opened')
    d = []
    for _ in range(rounds):
        h.cmd('acquire id=h', 'acquired')
        w.send('acquire id=w timeout=10')
        time.sleep(0.05)
        t_rel = int(h.cmd('release id=h', 'released')['t'])
        word, f, raw = w.recv()
        if word != 'acquired':
            raise RuntimeError(raw)
        d.append((int(f['t']) - t_rel) / 1e6)
        w.cmd('release id=w', 'released')
    out['release_handoff_p50_ms'] = p50(d)
    h.kill()

    w.cmd(f'open id=k path={lock}.k timeout=10', 'opened')
    d = []
    for _ in range(rounds):
        h = Proc(argv)
        h.cmd(f'open id=h path={lock}.k timeout=10', 'opened')
        h.cmd('acquire id=h', 'acquired')
        w.send('acquire id=k timeout=10')
        time.sleep(0.1)
        t_kill = time.monotonic_ns()
        os.kill(h.p.pid, signal.SIGKILL)
        word, f, raw = w.recv()
        if word != 'acquired':
            raise RuntimeError(raw)
        d.append((int(f['t']) - t_kill) / 1e6)
        w.cmd('release id=k', 'released')
        h.kill()
    out['kill_handoff_p50_ms'] = p50(d)
    w.kill()
    return out


def first_acquired(ws, t_from):
    """Waits for the first waiter to report its acquire; returns its index
    and the handoff in ms."""
    fds = {w.p.stdout.fileno(): i for i, w in enumerate(ws)}
    ready, _, _ = select.select(list(fds), [], [], 30)
    if not ready:
        raise RuntimeError('no waiter acquired within 30 s')
    i = fds[ready[0]]
    word, f, raw = ws[i].recv()
    if word != 'acquired':
        raise RuntimeError(raw)
    return i, (int(f['t']) - t_from) / 1e6


def drain(ws, first, wid):
    """The first winner releases; every other waiter then acquires and
    releases in turn."""
    ws[first].cmd(f'release id={wid}', 'released')
    left = set(range(len(ws))) - {first}
    while left:
        fds = {ws[i].p.stdout.fileno(): i for i in left}
        ready, _, _ = select.select(list(fds), [], [], 30)
        if not ready:
            raise RuntimeError('a waiter never acquired')
        i = fds[ready[0]]
        word, f, raw = ws[i].recv()
        if word != 'acquired':
            raise RuntimeError(raw)
        ws[i].cmd(f'release id={wid}', 'released')
        left.discard(i)


def measure_many(argv, name, rounds, n, open_args):
    lock = f'measure.{os.getpid()}.{name}.n{n}'
    out = {}
    ws = [Proc(argv) for _ in range(n)]
    settle = 0.05 + 0.01 * n
    for kind in ('release', 'kill'):
        wid = kind[0]
        for w in ws:
            w.cmd(f'open id={wid} path={lock}.{kind} timeout=60 {open_args}',
                  'opened')
        d = []
        for _ in range(rounds):
            h = Proc(argv)
            h.cmd(f'open id=h path={lock}.{kind} timeout=10', 'opened')
            h.cmd('acquire id=h', 'acquired')
            for w in ws:
                w.send(f'acquire id={wid} timeout=60')
            time.sleep(settle)
            if kind == 'release':
                t0 = int(h.cmd('release id=h', 'released')['t'])
            else:
                t0 = time.monotonic_ns()
                os.kill(h.p.pid, signal.SIGKILL)
            i, ms = first_acquired(ws, t0)
            d.append(ms)
            drain(ws, i, wid)
            h.kill()
        out[f'{kind}_handoff_p50_ms'] = p50(d)
    for w in ws:
        w.kill()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--ours', required=True)
    ap.add_argument('--portalocker')
    ap.add_argument('--rounds', type=int, default=20)
    ap.add_argument('--bench-n', type=int, default=2000)
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--waiters', type=int, default=1)
    ap.add_argument('--open-args', default='')
    a = ap.parse_args()
    url = f'redis://127.0.0.1:{a.port}'
    impls = [('portalock', [a.ours, '--redis', url])]
    if a.portalocker:
        impls.append(('portalocker', ['/usr/bin/python3', a.portalocker,
                                      '--redis', url]))
    results = {}
    for name, argv in impls:
        n = a.bench_n if name == 'portalock' else min(a.bench_n, 50)
        if a.waiters > 1 and name == 'portalock':
            results[name] = measure_many(argv, name, a.rounds, a.waiters,
                                         a.open_args)
        else:
            results[name] = measure(argv, name, a.rounds, n)
    if a.json:
        print(json.dumps(results))
    else:
        for name, r in results.items():
            for k, v in r.items():
                print(f'{name:12s} {k:24s} {v:9.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
