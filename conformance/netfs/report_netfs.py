#!/usr/bin/python3
"""report_netfs.py -- the protocol-level / two-host section of
conformance/RESULTS.md from the JSON lines the netfs runs wrote
(PL_CONFORMANCE_RESULTS of conformance/netfs/run-netfs.sh and run-2host.sh).

  report_netfs.py RESULTS.jsonl [COMMAND]   markdown on stdout
"""
import json
import sys

ORDER = ["nfs-ganesha", "nfs-ganesha-netns", "samba", "samba-netns", "plfwd-2host"]
WHAT = {
    "nfs-ganesha": "nfs-ganesha 4.3, two libnfs NFSv4.0 clients on this host (loopback)",
    "nfs-ganesha-netns": "nfs-ganesha in namespace plnS; client A here, client B in namespace plnA",
    "samba": "samba 4.17 (posix locking), two impacket SMB 3.0 sessions on this host",
    "samba-netns": "samba in namespace plnS; session A here, session B in namespace plnA",
    "plfwd-2host": "our library on plfwd: host A here, host B = namespace plnB via its own sshd, "
                   "each on its own mount of one backing directory",
}


def fmt(m):
    out = []
    for k, v in sorted(m.items()):
        if k.endswith("_s"):
            out.append("%s %s" % (k[:-2].replace("_", " "), "%.3f s" % v if v < 10 else "%.1f s" % v))
        elif k.endswith("_ms_median") or k.endswith("_ms"):
            out.append("%s %.2f ms" % (k.replace("_ms_median", " median").replace("_ms", "").replace("_", " "), v))
        else:
            out.append("%s %g" % (k.replace("_", " "), v))
    return ", ".join(out)


def main():
    if len(sys.argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    cmd = sys.argv[2] if len(sys.argv) > 2 else "ctest -L netfs"
    print("## Protocol-level network filesystems (no kernel client) and two hosts")
    print()
    print("**protocol-level (no kernel client)**: this machine has no NFS or CIFS client, so the NFS runs "
          "speak NFSv4.0 LOCK/LOCKU with libnfs 4.0.0 (`conformance/netfs/pl_nfs_contender`, one libnfs "
          "context = one client) and the SMB runs send SMB2 LOCK with python3-impacket "
          "(`conformance/netfs/smb2_contender.py`). They measure the server's lock manager and the network, "
          "not a kernel client's cache. Scenarios: `conformance/netfs/test_netfs.c` (two clients A and B); the "
          "plfwd-2host run is the file suite's exclusivity, handoff, release_on_death and cross_mount with "
          "participants on two \"hosts\" (`PORTALOCK_CONTENDER_B`). Produced by `%s`; the machine was shared, "
          "so times are indicative." % cmd)
    print()
    print("| filesystem | scenario | verdict | measured / observed |")
    print("|---|---|---|---|")
    seen = []
    for fs in ORDER + sorted({r["filesystem"] for r in rows} - set(ORDER)):
        for r in sorted((r for r in rows if r["filesystem"] == fs), key=lambda r: r["scenario"]):
            if fs not in seen:
                seen.append(fs)
            note = fmt(r.get("measured", {}))
            obs = "; ".join("%s: %s" % (k, v) for k, v in sorted(r.get("observed", {}).items()))
            why = r.get("reason") or "; ".join(r.get("violations", []))
            cell = "; ".join(x for x in (note, obs, why) if x).replace("|", "/")
            print("| %s | %s | %s | %s |" % (fs, r["scenario"].replace("netfs_", ""),
                                            r["verdict"] if r["verdict"] != "fail" else "**FAIL**", cell))
    print()
    for fs in seen:
        print("- `%s`: %s" % (fs, WHAT.get(fs, fs)))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
