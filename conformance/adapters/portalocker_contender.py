#!/usr/bin/python3
"""Contender for the portalock conformance suite driving Python's portalocker.

Speaks portalock-conformance/1 (conformance/PROTOCOL.md) on stdin/stdout.
Written against Debian 12's python3-portalocker 2.2.1 and tolerant of newer
releases:

* Backends: "flock" (portalocker's default) and "lockf".  2.2.1 has no
  LOCKER setting: portalocker.portalocker calls fcntl.flock directly, so for
  lockf this adapter replaces the module's fcntl reference by a shim whose
  flock is fcntl.lockf.  Releases with a LOCKER global (>= 2.10/3.x) get
  LOCKER = fcntl.lockf instead.  The locker is process-global in portalocker,
  so one contender process uses one backend.  No OFD.
* Kinds: lock, rlock, temporary (TemporaryFileLock), semaphore
  (BoundedSemaphore); pidfile only when portalocker has PidFileLock (>= 4.0).
* 2.2.1 prints diagnostics from BoundedSemaphore.acquire to stdout, so the
  protocol goes to a private duplicate of fd 1 and fd 1 is pointed at
  /dev/null.

Everything portalocker does is reported as it is; the suite compares the
results with conformance/known/portalocker-<version>.txt.
"""

import errno
import fcntl
import os
import signal
import sys
import time
import urllib.parse

import portalocker
import portalocker.portalocker as pl_impl
from portalocker import exceptions as pl_exc

PROTOCOL = 'portalock-conformance/1'

# The protocol channel is a private copy of the original stdout; what the
# library prints (2.2.1's BoundedSemaphore chatter) goes to /dev/null.
_proto = os.fdopen(os.dup(1), 'w', buffering=1)
_null = os.open(os.devnull, os.O_WRONLY)
os.dup2(_null, 1)
os.close(_null)
sys.stdout = open(1, 'w', closefd=False)

ERRNO_CODES = {
    errno.ENOENT: 'PL_ENOENT',
    errno.EACCES: 'PL_EACCES',
    errno.EPERM: 'PL_EACCES',
    errno.EISDIR: 'PL_EISDIR',
    errno.ENAMETOOLONG: 'PL_ENAMETOOLONG',
    errno.EROFS: 'PL_EROFS',
    errno.EEXIST: 'PL_EEXIST',
    errno.ENOLCK: 'PL_ENOTSUP',
    errno.EOPNOTSUPP: 'PL_ENOTSUP',
    errno.ENOTDIR: 'PL_ENOENT',
}
CONTENTION = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def now():
    return time.monotonic_ns()


def reply(text):
    _proto.write(text + '\n')
    _proto.flush()


def reply_error(code, msg):
    msg = ' '.join(str(msg).split()) or '-'
    reply('error %s %s' % (code, msg))


class ProtocolError(Exception):
    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code


class _LockfShim:
    """Stands in for the fcntl module inside portalocker.portalocker."""

    def __getattr__(self, name):
        return getattr(fcntl, name)

    @staticmethod
    def flock(fd, op):
        return fcntl.lockf(fd, op)


_backend = None  # process-global, like portalocker's locker


def set_backend(name):
    global _backend
    if name in (None, 'default'):
        name = _backend or 'flock'
    if name == 'fcntl':
        name = 'lockf'
    if name not in ('flock', 'lockf'):
        raise ProtocolError('PL_ENOTSUP',
                            'backend %r is not available in portalocker' % name)
    if _backend is not None and name != _backend:
        raise ProtocolError('PL_ENOTSUP',
                            "portalocker's locker is process-global: this "
                            'contender already uses %s' % _backend)
    func = fcntl.flock if name == 'flock' else fcntl.lockf
    if hasattr(pl_impl, 'LOCKER'):
        pl_impl.LOCKER = func
    elif name == 'lockf':
        pl_impl.fcntl = _LockfShim()
    _backend = name


def find_oserror(exc, depth=0):
    """The OSError behind a (possibly nested) portalocker exception."""
    if exc is None or depth > 8:
        return None
    if isinstance(exc, OSError):
        return exc
    for a in getattr(exc, 'args', ()):
        if isinstance(a, BaseException):
            found = find_oserror(a, depth + 1)
            if found is not None:
                return found
    return find_oserror(exc.__cause__ or exc.__context__, depth + 1)


def classify(exc, waited):
    """('already-locked'|'timeout'|'error', code, message)."""
    if isinstance(exc, pl_exc.AlreadyLocked):
        return 'already-locked', None, None
    oserr = find_oserror(exc)
    if isinstance(exc, pl_exc.LockException):
        if oserr is not None and oserr.errno in CONTENTION:
            return ('timeout' if waited else 'already-locked'), None, None
        if 'more times than acquired' in str(exc):
            return 'error', 'PL_ENOTHELD', str(exc)
        if oserr is not None:
            return ('error', ERRNO_CODES.get(oserr.errno, 'PL_EOS'),
                    '%s: %s' % (type(exc).__name__, oserr))
        return 'error', 'PL_EOS', '%s: %s' % (type(exc).__name__, exc)
    if oserr is not None:
        return ('error', ERRNO_CODES.get(oserr.errno, 'PL_EOS'),
                '%s: %s' % (type(exc).__name__, oserr))
    return 'error', 'PL_EOS', '%s: %r' % (type(exc).__name__, exc)


class Obj:
    def __init__(self, oid, kind, args):
        self.id = oid
        self.kind = kind
        self.path = args.get('path')
        self.mode = args.get('mode')
        self.shared = args.get('shared') == '1' or 'shared' in args['_words']
        self.timeout = seconds(args, 'timeout')
        self.check_interval = seconds(args, 'check_interval')
        fwl = args.get('fail_when_locked')
        self.fail_when_locked = None if fwl in (None, '-1') else fwl == '1'
        self.maximum = int(args.get('maximum', '1'))
        self.name = args.get('name', 'bounded_semaphore')
        self.directory = args.get('directory')
        self.lock = None
        self.made_shared = None
        self.make(self.shared)

    def flags(self, shared):
        f = portalocker.LockFlags
        return (f.SHARED if shared else f.EXCLUSIVE) | f.NON_BLOCKING

    def make(self, shared):
        if self.lock is not None and self.made_shared == shared:
            return
        kw = {}
        if self.timeout is not None:
            kw['timeout'] = self.timeout
        if self.check_interval is not None:
            kw['check_interval'] = self.check_interval
        if self.kind == 'semaphore':
            if shared:
                raise ProtocolError('PL_EINVAL', 'a semaphore has no shared '
                                    'mode')
            if self.directory is not None:
                kw['directory'] = self.directory
            self.lock = portalocker.BoundedSemaphore(self.maximum,
                                                     name=self.name, **kw)
        else:
            if self.path is None:
                raise ProtocolError('PL_EINVAL', 'open: path= is required')
            if self.fail_when_locked is not None:
                kw['fail_when_locked'] = self.fail_when_locked
            kw['flags'] = self.flags(shared)
            if self.kind == 'lock':
                self.lock = portalocker.Lock(self.path, mode=self.mode or 'a',
                                             **kw)
            elif self.kind == 'rlock':
                self.lock = portalocker.RLock(self.path,
                                              mode=self.mode or 'a', **kw)
            elif self.kind == 'temporary':
                self.lock = portalocker.TemporaryFileLock(self.path, **kw)
            elif self.kind == 'pidfile':
                cls = getattr(portalocker, 'PidFileLock', None)
                if cls is None:
                    raise ProtocolError('PL_ENOTSUP', 'portalocker %s has no '
                                        'PidFileLock' % portalocker.__version__)
                self.lock = cls(self.path, **kw)
            else:
                raise ProtocolError('PL_EINVAL', 'unknown kind %r' % self.kind)
        self.made_shared = shared

    def held(self):
        if self.kind == 'semaphore':
            return bool(self.lock.lock)
        if self.kind == 'rlock':
            return self.lock._acquire_count > 0
        return bool(getattr(self.lock, 'fh', None))

    def count(self):
        if self.kind == 'rlock':
            return self.lock._acquire_count
        return 1 if self.held() else 0

    def file(self):
        return None if self.kind == 'semaphore' else self.lock.fh

    def lock_path(self):
        if self.kind == 'semaphore':
            return str(self.lock.lock.filename) if self.lock.lock else None
        if self.kind == 'pidfile':
            return self.path + '.lock'
        return self.path


def seconds(args, key):
    v = args.get(key)
    if v is None:
        return None
    if v in ('inf', 'forever'):
        return float('inf')
    try:
        f = float(v)
    except ValueError:
        raise ProtocolError('PL_EINVAL', '%s=%s: not a number of seconds'
                            % (key, v))
    return float('inf') if f < 0 else f


def parse(line):
    words = line.split()
    if not words:
        return None, {}
    args = {'_words': []}
    for w in words[1:]:
        if '=' in w:
            k, v = w.split('=', 1)
            args[k] = urllib.parse.unquote(v)
        else:
            args['_words'].append(w)
    return words[0], args


objects = {}


def need(args):
    oid = args.get('id', '0')
    if oid not in objects:
        raise ProtocolError('PL_EINVAL', 'no object id=%s (send open first)'
                            % oid)
    return objects[oid]


def acquire_params(obj, args):
    timeout = seconds(args, 'timeout')
    ci = seconds(args, 'check_interval')
    fwl = args.get('fail_when_locked')
    fwl = None if fwl in (None, '-1') else fwl == '1'
    shared = obj.made_shared
    if 'shared' in args['_words']:
        shared = True
    elif 'exclusive' in args['_words']:
        shared = False
    if shared != obj.made_shared:
        if obj.held():
            raise ProtocolError('PL_EHELD', 'id=%s is held in the other mode'
                                % obj.id)
        obj.make(shared)
    return timeout, ci, fwl


def effective_wait(obj, timeout, fwl):
    """Whether this acquire may wait (for already-locked vs timeout)."""
    if fwl is None:
        fwl = obj.fail_when_locked
    if fwl is None:
        fwl = obj.kind in ('temporary', 'pidfile')
    t = timeout if timeout is not None else obj.timeout
    if t is None:
        t = 5
    return (not fwl) and t > 0


def do_acquire(obj, timeout, ci, fwl):
    kw = {}
    if timeout is not None:
        kw['timeout'] = timeout
    if ci is not None:
        kw['check_interval'] = ci
    if fwl is not None:
        kw['fail_when_locked'] = fwl
    obj.lock.acquire(**kw)


def bump_counter(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = os.pread(fd, 32, 0)
        v = int(data.decode() or '0')
        os.ftruncate(fd, 0)
        os.pwrite(fd, ('%d\n' % (v + 1)).encode(), 0)
    finally:
        os.close(fd)


def cmd_hello(args):
    kinds = ['lock', 'rlock', 'temporary', 'semaphore']
    if hasattr(portalocker, 'PidFileLock'):
        kinds.append('pidfile')
    reply('hello protocol=%s impl=portalocker version=%s pid=%d kinds=%s '
          'backends=flock,lockf features=shared,cycle,counter,crash,fork,'
          'close-other,write,same-process-objects,w-mode'
          % (PROTOCOL, portalocker.__version__, os.getpid(), ','.join(kinds)))


def cmd_open(args):
    oid = args.get('id', '0')
    kind = args.get('kind', 'lock')
    if oid in objects:
        raise ProtocolError('PL_EINVAL', 'object id=%s is already open' % oid)
    set_backend(args.get('backend'))
    try:
        objects[oid] = Obj(oid, kind, args)
    except ProtocolError:
        raise
    except Exception as exc:  # constructor failures are data too
        _, code, msg = classify(exc, False)
        raise ProtocolError(code or 'PL_EOS', msg or repr(exc))
    reply('opened id=%s t=%d' % (oid, now()))


def cmd_acquire(args):
    obj = need(args)
    timeout, ci, fwl = acquire_params(obj, args)
    t0 = now()
    try:
        do_acquire(obj, timeout, ci, fwl)
    except Exception as exc:
        t = now()
        what, code, msg = classify(exc, effective_wait(obj, timeout, fwl))
        if what == 'error':
            reply_error(code, msg)
        else:
            reply('%s id=%s t0=%d t=%d' % (what, obj.id, t0, t))
        return
    t = now()
    reply('acquired id=%s t0=%d t=%d count=%d' % (obj.id, t0, t, obj.count()))


def cmd_release(args):
    obj = need(args)
    t = now()
    try:
        obj.lock.release()
    except Exception as exc:
        _, code, msg = classify(exc, False)
        reply_error(code or 'PL_EOS', msg or repr(exc))
        return
    reply('released id=%s t=%d count=%d' % (obj.id, t, obj.count()))


def cmd_close(args):
    obj = need(args)
    try:
        while obj.held():
            obj.lock.release()
    except Exception:
        pass
    del objects[obj.id]
    reply('closed id=%s t=%d' % (obj.id, now()))


def cmd_cycle(args):
    obj = need(args)
    timeout, ci, fwl = acquire_params(obj, args)
    n = int(args.get('n', '1'))
    hold = seconds(args, 'hold') or 0.0
    counter = args.get('counter')
    out = []
    for i in range(n):
        try:
            do_acquire(obj, timeout, ci, fwl)
        except Exception as exc:
            what, code, msg = classify(exc, effective_wait(obj, timeout, fwl))
            if what != 'error':
                code, msg = ('PL_ETIMEDOUT' if what == 'timeout'
                             else 'PL_ELOCKED'), what
            reply_error(code, 'cycle %d/%d: acquire: %s' % (i + 1, n, msg))
            return
        ta = now()
        if counter:
            bump_counter(counter)
        if hold > 0:
            time.sleep(hold)
        tr = now()
        obj.lock.release()
        out.append('%d:%d' % (ta, tr))
    reply('cycled id=%s n=%d intervals=%s t=%d'
          % (obj.id, n, ','.join(out), now()))


def cmd_holder(args):
    obj = need(args)
    if obj.kind != 'pidfile':
        raise ProtocolError('PL_EINVAL', 'holder: id=%s is not a pidfile lock'
                            % obj.id)
    pid = obj.lock.read_pid()
    if pid is None:
        raise ProtocolError('PL_ENOENT', 'no PID published')
    try:
        os.kill(pid, 0)
        alive = 1
    except ProcessLookupError:
        alive = 0
    except PermissionError:
        alive = 1
    reply('holder id=%s pid=%d alive=%d t=%d' % (obj.id, pid, alive, now()))


def cmd_fork_child(args):
    obj = need(args)
    action = args.get('action', 'exit')
    if action not in ('exit', 'release', 'close'):
        raise ProtocolError('PL_EINVAL', 'fork-child: action=%s' % action)
    _proto.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        if action in ('release', 'close'):
            try:
                obj.lock.release()
            except Exception:
                code = 5  # PL_EOS
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    result = 'PL_OK' if code == 0 else 'PL_EOS'
    reply('forked id=%s pid=%d action=%s result=%s t=%d'
          % (obj.id, pid, action, result, now()))


def cmd_close_other(args):
    obj = need(args)
    path = obj.lock_path()
    os.close(os.open(path, os.O_RDONLY))
    reply('closed-other id=%s t=%d' % (obj.id, now()))


def cmd_write(args):
    obj = need(args)
    fh = obj.file()
    if not fh:
        raise ProtocolError('PL_ENOTHELD', 'write: id=%s holds no file'
                            % obj.id)
    data = args.get('data', '')
    fh.write(data)
    fh.flush()
    reply('written id=%s bytes=%d t=%d' % (obj.id, len(data.encode()), now()))


COMMANDS = {
    'hello': cmd_hello,
    'open': cmd_open,
    'acquire': cmd_acquire,
    'release': cmd_release,
    'close': cmd_close,
    'cycle': cmd_cycle,
    'holder': cmd_holder,
    'fork-child': cmd_fork_child,
    'close-other': cmd_close_other,
    'write': cmd_write,
}


def main():
    for raw in sys.stdin:
        cmd, args = parse(raw)
        if cmd is None:
            reply_error('PL_EINVAL', 'empty command')
            continue
        if cmd == 'quit':
            reply('bye t=%d' % now())
            return 0
        if cmd == 'crash':
            _proto.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        handler = COMMANDS.get(cmd)
        if handler is None:
            reply_error('PL_EINVAL', "unknown command '%s'" % cmd)
            continue
        try:
            handler(args)
        except ProtocolError as exc:
            reply_error(exc.code, str(exc))
        except Exception as exc:
            _, code, msg = classify(exc, False)
            reply_error(code or 'PL_EOS', msg or repr(exc))
    return 0


if __name__ == '__main__':
    sys.exit(main())
