#!/usr/bin/python3
"""Contender for the portalock Redis conformance cases driving portalocker's
RedisLock (Debian 12: python3-portalocker 2.2.1 with python3-redis 4.3).

Speaks the portalock-conformance/1 lines that conformance/redis/ uses:
hello, open, acquire, release, cycle, check, bench, crash, quit (see
conformance/redis/redis_contender.c for the Redis additions).  Lock "paths"
are RedisLock channel names.  What RedisLock lacks is reported, never faked:

* hello advertises only the features this portalocker has: no "shared"
  before 4.0, no "token" (fencing) and no "check"/"lost" (LockLostError,
  on_lost) before 4.2.  The suite records the scenarios that need them as
  failures, expected by conformance/known/portalocker-2.2.1-redis.txt.
* "check" answers from what the object knows (its pubsub thread alive).

Usage: portalocker_redis_contender.py --redis redis://[[user]:pass@]host:port
"""

import os
import signal
import sys
import time
import urllib.parse

import portalocker
from portalocker import exceptions as pl_exc
from portalocker import redis as pl_redis

PROTOCOL = 'portalock-conformance/1'

# The protocol goes to a private copy of stdout; whatever the library
# prints goes to stderr.
_proto = os.fdopen(os.dup(1), 'w', buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

VERSION = getattr(portalocker, '__version__', None)
if VERSION is None:
    from portalocker import __about__
    VERSION = __about__.__version__

HAS_SHARED = hasattr(portalocker, 'LockFlags') and \
    hasattr(portalocker.LockFlags, 'SHARED') and \
    'flags' in pl_redis.RedisLock.__init__.__code__.co_varnames
HAS_FENCING = 'fencing' in pl_redis.RedisLock.__init__.__code__.co_varnames


def now():
    return time.monotonic_ns()


def reply(line):
    _proto.write(line + '\n')
    _proto.flush()


def reply_error(code, msg):
    msg = ' '.join(str(msg).split()) or '-'
    reply(f'error {code} {msg}')


def parse(line):
    words = line.split()
    args, bare = {}, set()
    for w in words[1:]:
        if '=' in w:
            k, v = w.split('=', 1)
            args[k] = urllib.parse.unquote(v)
        else:
            bare.add(w)
    return (words[0] if words else ''), args, bare


def seconds(v, default):
    if v is None:
        return default
    if v in ('inf', 'forever'):
        return 1e9
    return float(v)


class Contender:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.redis_kwargs = dict(host=u.hostname or '127.0.0.1',
                                 port=u.port or 6379,
                                 health_check_interval=10)
        if u.password:
            self.redis_kwargs['password'] = urllib.parse.unquote(u.password)
        if u.username:
            self.redis_kwargs['username'] = urllib.parse.unquote(u.username)
        self.objects = {}

    def hello(self, args, bare):
        features = ['cycle', 'crash']
        if HAS_SHARED:
            features.append('shared')
        if HAS_FENCING:
            features.append('token')
        reply(f'hello protocol={PROTOCOL} impl=portalocker version={VERSION} '
              f'pid={os.getpid()} kinds=lock backends=redis '
              f'features={",".join(features)}')

    def open(self, args, bare):
        oid = args.get('id', '0')
        if oid in self.objects or 'path' not in args:
            return reply_error('PL_EINVAL', 'open: need path= and a new id=')
        kw = dict(timeout=seconds(args.get('timeout'), 5),
                  check_interval=seconds(args.get('check_interval'), 0.25),
                  fail_when_locked=args.get('fail_when_locked') == '1',
                  unavailable_timeout=seconds(
                      args.get('unavailable_timeout'), 1),
                  redis_kwargs=dict(self.redis_kwargs))
        if 'shared' in bare or args.get('shared') == '1':
            if not HAS_SHARED:
                return reply_error('PL_ENOTSUP',
                                   f'portalocker {VERSION}: RedisLock has '
                                   'no shared mode')
            kw['flags'] = portalocker.LockFlags.SHARED
        self.objects[oid] = pl_redis.RedisLock(args['path'], **kw)
        reply(f'opened id={oid} t={now()}')

    def _acquire(self, lock, args):
        kw = {}
        if 'timeout' in args:
            kw['timeout'] = seconds(args['timeout'], None)
        if 'check_interval' in args:
            kw['check_interval'] = seconds(args['check_interval'], None)
        if 'fail_when_locked' in args:
            kw['fail_when_locked'] = args['fail_when_locked'] == '1'
        lock.acquire(**kw)

    def acquire(self, args, bare):
        oid = args.get('id', '0')
        lock = self.objects.get(oid)
        if lock is None:
            return reply_error('PL_EINVAL', 'no such object')
        t0 = now()
        try:
            self._acquire(lock, args)
        except pl_exc.AlreadyLocked:
            t = now()
            word = 'already-locked' if args.get('fail_when_locked') == '1' \
                else 'timeout'
            return reply(f'{word} id={oid} t0={t0} t={t}')
        except Exception as e:  # connection errors and the like
            return reply_error('PL_ECONN', f'{type(e).__name__}: {e}')
        t = now()
        token = getattr(lock, 'fence_token', None)
        extra = f' token={token}' if token is not None else ''
        reply(f'acquired id={oid} t0={t0} t={t} count=1{extra}')

    def release(self, args, bare):
        oid = args.get('id', '0')
        lock = self.objects.get(oid)
        if lock is None:
            return reply_error('PL_EINVAL', 'no such object')
        t = now()
        try:
            lock.release()
        except Exception as e:
            return reply_error('PL_ELOST', f'{type(e).__name__}: {e}')
        reply(f'released id={oid} t={t} count=0')

    def check(self, args, bare):
        oid = args.get('id', '0')
        lock = self.objects.get(oid)
        if lock is None:
            return reply_error('PL_EINVAL', 'no such object')
        ensure = getattr(lock, 'ensure_held', None)
        if ensure is None:
            # 2.2.1 has no way to ask: report what the object believes.
            held = lock.thread is not None and lock.thread.is_alive()
            result = 'PL_OK' if held else 'PL_ELOST'
        else:
            try:
                ensure()
                result = 'PL_OK'
            except Exception:
                result = 'PL_ELOST'
        reply(f'checked id={oid} result={result} lost=0 t={now()}')

    def cycle(self, args, bare):
        oid = args.get('id', '0')
        lock = self.objects.get(oid)
        if lock is None:
            return reply_error('PL_EINVAL', 'no such object')
        n = int(args.get('n', '1'))
        hold = float(args.get('hold', '0'))
        intervals, tokens = [], []
        for i in range(n):
            try:
                self._acquire(lock, args)
            except pl_exc.AlreadyLocked:
                return reply_error('PL_ETIMEDOUT',
                                   f'cycle {i + 1}/{n}: AlreadyLocked')
            except Exception as e:
                return reply_error('PL_ECONN', f'cycle {i + 1}/{n}: {e}')
            ta = now()
            token = getattr(lock, 'fence_token', None)
            if token is not None:
                tokens.append(str(token))
            if hold > 0:
                time.sleep(hold)
            tr = now()
            lock.release()
            intervals.append(f'{ta}:{tr}')
        extra = f' tokens={",".join(tokens)}' if tokens else ''
        reply(f'cycled id={oid} n={n} intervals={",".join(intervals)}'
              f'{extra} t={now()}')

    def bench(self, args, bare):
        # Uncontended acquire+release latency, as pl_redis_contender's bench.
        oid = args.get('id', '0')
        lock = self.objects.get(oid)
        if lock is None:
            return reply_error('PL_EINVAL', 'no such object')
        n = int(args.get('n', '100'))
        d = []
        for _ in range(n):
            t0 = now()
            lock.acquire()
            lock.release()
            d.append(now() - t0)
        d.sort()
        reply(f'bench id={oid} n={n} p50_us={d[n // 2] / 1e3:.1f} '
              f'p99_us={d[n * 99 // 100] / 1e3:.1f}')

    def quit(self, args, bare):
        for lock in self.objects.values():
            try:
                lock.release()
            except Exception:
                pass
        reply(f'bye t={now()}')
        return True


def serve(c):
    for line in sys.stdin:
        word, args, bare = parse(line.strip())
        if word == 'crash':
            _proto.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        fn = getattr(c, word, None) if word in (
            'hello', 'open', 'acquire', 'release', 'check', 'cycle',
            'bench', 'quit') else None
        if fn is None:
            reply_error('PL_EINVAL', f'unknown command {word!r}')
            continue
        if fn(args, bare):
            break


def main():
    if len(sys.argv) != 3 or sys.argv[1] != '--redis':
        print('usage: portalocker_redis_contender.py --redis URL',
              file=sys.stderr)
        return 2
    code = 0
    try:
        serve(Contender(sys.argv[2]))
    except BaseException as e:
        # 2.2.1's PubSubWorkerThread calls _thread.interrupt_main() when it
        # fails (e.g. on a foreign message or a server restart): report it
        # and leave.
        print(f'portalocker_redis_contender: {type(e).__name__}: {e}',
              file=sys.stderr)
        code = 1
    # Lock threads are not daemons: leave without waiting for them.
    try:
        _proto.flush()
    except BaseException:
        pass
    os._exit(code)


if __name__ == '__main__':
    sys.exit(main())
