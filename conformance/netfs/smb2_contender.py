#!/usr/bin/python3
"""smb2_contender.py -- a portalock-conformance/1 contender (PROTOCOL.md) whose
lock is an SMB2 LOCK request (byte range 0..2**63-1, exclusive or shared,
SMB2_LOCKFLAG_FAIL_IMMEDIATELY) sent by python3-impacket's SMB3 client: no
kernel CIFS client, the server's lock manager (samba here) and the network
are what is measured.  Each lock object is its own SMB session (its own TCP
connection, login and tree connect): one object = one client.

Usage: smb2_contender.py --server HOST:PORT --share NAME [--root DIR]
                         [--user U --password P] [--dialect 3.0|2.1|2.0.2]
  --root DIR  the share's directory on the server: lock paths under DIR are
              sent relative to it; other paths are taken as share-relative.

Why impacket: Debian's samba client libraries do not expose SMB2 LOCK to a
program (python3-samba's libsmb Conn has no lock method; libsmbclient and
python3-smbc have no byte-range lock call; smbclient's "lock" command is
SMB1 POSIX locking; smbtorture's smb2.lock tests send it but are tests, not a
client).  impacket's SMB3 class has lock(), but 0.10.0 builds the request with
str() of each element, which is wrong on Python 3, so lock() below builds the
same SMB2 LOCK packet with the element's bytes.  impacket 0.10.0 also signs
SMB 3.1.1 wrongly (samba logs "Bad SMB2 (sign_algo_id=1) signature"), so the
default dialect is 3.0.

Waiting is polling (SMB2 has a blocking LOCK without FAIL_IMMEDIATELY, but a
client that must honour a timeout polls, as portalock does on Windows under
Wine): acquire retries every check_interval.  Replies carry polls=N.
"""
import os
import signal
import sys
import time

from impacket import smb3structs as s3
from impacket.smbconnection import SMBConnection

PROTOCOL = "portalock-conformance/1"
STATUS_LOCK_NOT_GRANTED = 0xC0000055
STATUS_FILE_LOCK_CONFLICT = 0xC0000054
LENGTH = (1 << 63) - 1
DIALECTS = {"3.0": s3.SMB2_DIALECT_30, "2.1": s3.SMB2_DIALECT_21, "2.0.2": s3.SMB2_DIALECT_002}

out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # impacket must not print on the protocol


def now_ns():
    return time.monotonic_ns()


def reply(s):
    out.write(s + "\n")
    out.flush()


def unq(v):
    b, i, r = v.encode(), 0, bytearray()
    while i < len(b):
        if b[i] == 0x25 and i + 2 < len(b):
            r.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            r.append(b[i])
            i += 1
    return r.decode()


class Client:
    """One SMB session holding one open file."""

    def __init__(self, cfg, path):
        host, port = cfg["server"].rsplit(":", 1)
        self.conn = SMBConnection(host, host, sess_port=int(port), timeout=10,
                                  preferredDialect=DIALECTS[cfg["dialect"]])
        self.conn.login(cfg["user"], cfg["password"])
        self.smb = self.conn.getSMBServer()
        self.tid = self.conn.connectTree(cfg["share"])
        self.fid = self.smb.create(
            self.tid, path, s3.FILE_READ_DATA | s3.FILE_WRITE_DATA,
            s3.FILE_SHARE_READ | s3.FILE_SHARE_WRITE | s3.FILE_SHARE_DELETE,
            s3.FILE_NON_DIRECTORY_FILE, s3.FILE_OPEN_IF, 0)

    def lock(self, flags):
        """One SMB2 LOCK of [0, 2**63-1); returns the NT status."""
        el = s3.SMB2_LOCK_ELEMENT()
        el["Offset"], el["Length"], el["Flags"] = 0, LENGTH, flags
        pkt = self.smb.SMB_PACKET()
        pkt["Command"] = s3.SMB2_LOCK
        pkt["TreeID"] = self.tid
        req = s3.SMB2Lock()
        req["FileID"], req["LockCount"], req["LockSequence"] = self.fid, 1, 0
        req["Locks"] = el.getData()
        pkt["Data"] = req
        return self.smb.recvSMB(self.smb.sendSMB(pkt))["Status"]

    def close(self):
        try:
            self.conn.close()
        except Exception:  # the connection may be gone (network cut)
            pass


class Obj:
    def __init__(self, oid, kv):
        self.id = oid
        self.held = False
        self.shared = kv.get("shared") == "1"
        self.timeout = seconds(kv.get("timeout"), 5.0)
        self.interval = seconds(kv.get("check_interval"), 0.25)
        self.fwl = kv.get("fail_when_locked") == "1"
        self.c = None


def seconds(v, dflt):
    if v is None:
        return dflt
    if v in ("inf", "forever"):
        return -1.0
    return float(v)


class Contender:
    def __init__(self, cfg):
        self.cfg = cfg
        self.objs = {}

    def share_path(self, path):
        root = self.cfg["root"]
        if root and path.startswith(root.rstrip("/") + "/"):
            path = path[len(root.rstrip("/")) + 1:]
        return path.lstrip("/").replace("/", "\\")

    def try_lock(self, o):
        flags = (s3.SMB2_LOCKFLAG_SHARED_LOCK if o.shared else s3.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)
        st = o.c.lock(flags | s3.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)
        if st == 0:
            o.held = True
            return "ok"
        if st in (STATUS_LOCK_NOT_GRANTED, STATUS_FILE_LOCK_CONFLICT):
            return "denied"
        raise OSError("SMB2 LOCK: NT status 0x%08x" % st)

    def acquire(self, o, timeout, interval, fwl):
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            polls += 1
            if self.try_lock(o) == "ok":
                return "acquired", polls
            if timeout == 0 or fwl:
                return "already-locked", polls
            if timeout > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout", polls
                time.sleep(min(interval, left))
            else:
                time.sleep(interval)

    def unlock(self, o):
        st = o.c.lock(s3.SMB2_LOCKFLAG_UNLOCK)
        if st != 0:
            raise OSError("SMB2 LOCK (unlock): NT status 0x%08x" % st)
        o.held = False

    def cmd(self, verb, words, kv):
        oid = kv.get("id", "0")
        o = self.objs.get(oid)
        if verb == "hello":
            return ("hello protocol=%s impl=impacket-smb2 version=0.10.0 pid=%d kinds=lock "
                    "backends=smb2 features=shared,cycle,counter,crash,bench" % (PROTOCOL, os.getpid()))
        if verb == "open":
            if o is not None or "path" not in kv:
                return "error PL_EINVAL open: need path= and a new id="
            if kv.get("kind", "lock") != "lock":
                return "error PL_ENOTSUP kind %s: only lock" % kv["kind"]
            o = Obj(oid, kv)
            o.shared = o.shared or "shared" in words
            o.c = Client(self.cfg, self.share_path(kv["path"]))
            self.objs[oid] = o
            return "opened id=%s t=%d" % (oid, now_ns())
        if o is None:
            return "error PL_EINVAL no such object"
        if verb == "acquire":
            if o.held:
                return "error PL_EHELD already held"
            if "shared" in words:
                o.shared = True
            elif "exclusive" in words:
                o.shared = False
            t0 = now_ns()
            word, polls = self.acquire(o, seconds(kv.get("timeout"), o.timeout),
                                       seconds(kv.get("check_interval"), o.interval),
                                       kv.get("fail_when_locked", "1" if o.fwl else "0") == "1")
            t = now_ns()
            return "%s id=%s t0=%d t=%d%s polls=%d" % (word, oid, t0, t,
                                                       " count=1" if word == "acquired" else "", polls)
        if verb == "release":
            if not o.held:
                return "error PL_ENOTHELD not held"
            t = now_ns()
            self.unlock(o)
            return "released id=%s t=%d count=0" % (oid, t)
        if verb == "close":
            if o.held:
                self.unlock(o)
            o.c.close()
            del self.objs[oid]
            return "closed id=%s t=%d" % (oid, now_ns())
        if verb == "cycle":
            n, hold = int(kv.get("n", "1")), seconds(kv.get("hold"), 0)
            timeout = seconds(kv.get("timeout"), o.timeout)
            interval = seconds(kv.get("check_interval"), o.interval)
            iv = []
            for i in range(n):
                word, _ = self.acquire(o, timeout, interval, False)
                if word != "acquired":
                    return "error %s cycle %d/%d: %s" % (
                        "PL_ETIMEDOUT" if word == "timeout" else "PL_ELOCKED", i + 1, n, word)
                a = now_ns()
                if "counter" in kv:
                    bump(kv["counter"])
                if hold > 0:
                    time.sleep(hold)
                b = now_ns()
                self.unlock(o)
                iv.append("%d:%d" % (a, b))
            return "cycled id=%s n=%d intervals=%s t=%d" % (oid, n, ",".join(iv), now_ns())
        if verb == "bench":
            n = int(kv.get("n", "200"))
            d = []
            for _ in range(n):
                t0 = now_ns()
                if self.try_lock(o) != "ok":
                    return "error PL_ELOCKED bench: the lock is held elsewhere"
                self.unlock(o)
                d.append(now_ns() - t0)
            d.sort()
            return "bench id=%s n=%d p50_us=%.1f p99_us=%.1f" % (oid, n, d[n // 2] / 1e3, d[n * 99 // 100] / 1e3)
        return "error PL_EINVAL unknown command '%s'" % verb


def bump(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        data = os.pread(fd, 32, 0)
        v = int(data) if data.strip() else 0
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % (v + 1), 0)
    finally:
        os.close(fd)


def main(argv):
    cfg = {"server": None, "share": None, "root": "", "user": "root", "password": "portalock",
           "dialect": "3.0"}
    i = 1
    while i < len(argv):
        k = argv[i].lstrip("-")
        if k not in cfg or i + 1 >= len(argv):
            sys.stderr.write(__doc__)
            return 2
        cfg[k] = argv[i + 1]
        i += 2
    if not cfg["server"] or not cfg["share"] or cfg["dialect"] not in DIALECTS:
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    c = Contender(cfg)
    for line in sys.stdin:
        toks = line.split()
        if not toks:
            reply("error PL_EINVAL empty command")
            continue
        words = {t for t in toks[1:] if "=" not in t}
        kv = {t.split("=", 1)[0]: unq(t.split("=", 1)[1]) for t in toks[1:] if "=" in t}
        verb = toks[0]
        if verb == "crash":
            out.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if verb == "quit":
            reply("bye t=%d" % now_ns())
            break
        try:
            reply(c.cmd(verb, words, kv))
        except Exception as e:  # one reply per command, whatever happened
            reply("error PL_EOS %s" % (" ".join(str(e).split()) or type(e).__name__))
    for o in c.objs.values():
        try:
            if o.held:
                c.unlock(o)
        except Exception:
            pass
        o.c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
