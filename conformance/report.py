#!/usr/bin/python3
"""Turns the conformance matrix's JSON lines into RESULTS.md and results.json.

Input: --results (one JSON object per scenario run, written by the suite
through PL_CONFORMANCE_RESULTS) and --runs (one per suite run or skipped
filesystem, written by ci/conformance-matrix.sh).  Exit status 1 when any
scenario is "fail" or "unexpected-pass", else 0.
"""

import argparse
import collections
import datetime
import json
import os
import io
import platform
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'ci'))
import pl_paths  # noqa: E402

SCENARIOS = [
    ('exclusivity', '8 contenders x 200 acquisitions: no overlapping '
     'intervals, no lost counter update'),
    ('exclusivity_cross_impl', 'the same with 4 portalock and 4 '
     'portalocker contenders on one file'),
    ('shared', 'shared holders coexist; exclusive waits for all; shared '
     'waits for exclusive'),
    ('nonblocking', 'fail_when_locked: AlreadyLocked at once (< 50 ms)'),
    ('timeout_zero', 'timeout 0: one attempt'),
    ('timeout_expires', 'timeout 0.5 s gives up in [0.498, 0.75] s'),
    ('handoff', 'waiter wakes on release: median of 5 < 50 ms with '
     'check_interval 0.5 s'),
    ('release_on_death', 'SIGKILLed holder: waiter takes over < 1 s'),
    ('semaphore', 'BoundedSemaphore(3), 6 contenders: max 3 holders, '
     'reaches 3'),
    ('semaphore_cross_impl', 'the same with portalock and portalocker '
     'contenders sharing the slots'),
    ('rlock', 'RLock depth, second object contends, over-release error'),
    ('temporary_split_inode', 'TemporaryFileLock #115: at most one holder '
     'after the split-inode race'),
    ('pidfile_holder', "PidFileLock: holder's pid and liveness"),
    ('same_process_objects', 'two lock objects on one path in one process'),
    ('close_pitfall', 'closing another descriptor of the file keeps the '
     'lock'),
    ('fork_child_exit', "a forked child's exit keeps the parent's lock"),
    ('fork_child_release', "a forked child's release keeps the parent's "
     'lock'),
    ('w_mode', "'w' truncates only once the lock is held"),
    ('cross_impl', 'portalock and portalocker exclude each other on one '
     'file'),
    ('bad_input', 'bad paths through the protocol: clear errors, nothing '
     'created'),
    ('bad_input_cli', 'bad paths through the portalock CLI'),
    ('cross_mount', 'two mounts of one export exclude each other'),
    ('mixed_backends', 'two lock families on one file (the native side on '
     'PL_CONFORMANCE_PEER_BACKEND): the recorded exclusion is the known '
     'one'),
]
SHORT = {
    'pass': 'pass',
    'fail': '**FAIL**',
    'expected-fail': 'expected-fail',
    'unexpected-pass': '**unexpected-pass**',
    'not-applicable': 'n/a',
    'not-coherent': 'not coherent',
}
BACKENDS = ['flock', 'lockf', 'ofd']


def load_lines(path):
    out = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def where_str(where, ran_fs):
    """'lockf: all filesystems; flock: ext4, tmpfs' from {'fs/backend'}."""
    by_be = collections.OrderedDict()
    for item in sorted(where):
        fs, be = item.rsplit('/', 1)
        by_be.setdefault(be, []).append(fs)
    parts = []
    for be in sorted(by_be, key=lambda b: BACKENDS.index(b)
                     if b in BACKENDS else 99):
        fss = by_be[be]
        parts.append('%s: %s' % (be, 'all filesystems'
                                 if len(ran_fs) > 1 and set(ran_fs) <= set(fss)
                                 else ', '.join(fss)))
    return '; '.join(parts)


def impl_name(r):
    return '%s %s' % (r['implementation'], r['version'])


# ---- the Windows column (ci/windows.sh) -----------------------------------

WIN_JSON = os.path.join(ROOT, 'conformance', 'results-windows.json')
WIN_MD = os.path.join(ROOT, 'conformance', 'RESULTS.md')
WIN_BEGIN = '<!-- windows (wine): begin (conformance/report.py --windows-update) -->'
WIN_END = '<!-- windows (wine): end -->'


def win_cell(r):
    cell = SHORT.get(r['verdict'], r['verdict'])
    m, o = r.get('measured', {}), r.get('observed', {})
    if r['scenario'] == 'handoff' and 'handoff_ms_median' in m:
        cell += ' (%.1f ms, wait=%s)' % (m['handoff_ms_median'],
                                         o.get('wait', 'kernel'))
    if r['scenario'] == 'release_on_death' and 'takeover_ms' in m:
        cell += ' (%.0f / %.0f ms)' % (m['takeover_ms'],
                                       m.get('takeover_sigkill_ms', -1))
    if r['verdict'] == 'not-applicable':
        cell += ': ' + r['reason']
    return cell.replace('|', '/')


def windows_section(win, linux_results):
    """Markdown lines of the Windows section from results-windows.json."""
    w = []
    meta = win['meta']
    w.append(WIN_BEGIN)
    w.append('## windows (wine)')
    w.append('')
    w.append('The Windows port (`lib/src/win32`, backend `lockfileex`) driven '
             'by the Linux suite: `pl_contender.exe` (mingw-w64) under %s, '
             'one run of every scenario; generated by `%s` on %s (Linux %s, '
             '%s CPUs shared with other jobs). The short form runs in '
             '`ci/test.sh` through `ci/windows.sh`. What differs from a '
             'Linux contender is announced in hello and handled by the '
             'suite (`conformance/PROTOCOL.md`): `clock=realtime` (the '
             'timestamps are converted to CLOCK_MONOTONIC), '
             '`crash=terminate` (TerminateProcess, exit status 137), '
             '`wait=poll` (Wine 8 has no asynchronous lock wait, so the '
             'hand-off bound is a polling one), `platform=windows`. Totals: '
             '%s.' % (meta.get('wine', 'Wine'), meta['invocation'],
                      meta['generated'], meta['kernel'], meta['cpus'],
                      ', '.join('%s %d' % (k, v) for k, v in sorted(
                          collections.Counter(
                              r['verdict'] for r in win['results']).items()))))
    w.append('')
    lin = {(r['scenario']): r for r in linux_results
           if r['implementation'] == 'portalock' and r['filesystem'] == 'ext4'
           and r['backend'] == 'flock'}
    by_sc = {r['scenario']: r for r in win['results']}
    w.append('| scenario | linux (ext4, flock) | windows (wine) |')
    w.append('|---|---|---|')
    names = [sc for sc, _ in SCENARIOS]
    names += sorted(sc for sc in by_sc if sc not in names)
    for sc in names:
        if sc not in by_sc:
            continue
        lr = lin.get(sc)
        cell = win_cell(by_sc[sc])
        if sc == 'mixed_backends' and win['mixed']:
            # Its runs need PL_CONFORMANCE_PEER_BACKEND: the table below.
            c = collections.Counter(r['verdict'] for r in win['mixed'])
            cell = '%s (%d mixed runs, below)' % (', '.join(
                '%s %d' % (SHORT.get(k, k), v) for k, v in sorted(c.items())),
                len(win['mixed']))
        w.append('| %s | %s | %s |' % (
            sc, SHORT.get(lr['verdict'], lr['verdict']) if lr else '-', cell))
    w.append('')
    w.append('### Windows and Linux contenders on one file')
    w.append('')
    w.append('`semantics/mixed_backends`: the Windows contender (lockfileex '
             'under Wine) and the native `pl_contender` on one file, each '
             'holding in turn while the other tries; where they exclude '
             'each other, both then cycle 40 times with a shared counter '
             '(no overlapping intervals on one clock, no lost update). '
             "Wine's wineserver keeps LockFileEx locks as fcntl (F_SETLK) "
             'locks on its own descriptor, so they meet native lockf and '
             'OFD locks and not flock. The verdict is asserted: a change in '
             'Wine fails the run.')
    w.append('')
    w.append('| native backend | Windows holds, native tries | native holds, '
             'Windows tries | exclusion | expected | verdict |')
    w.append('|---|---|---|---|---|---|')
    for r in win['mixed']:
        o = r.get('observed', {})
        pair = o.get('pair', '')
        be = pair.rsplit('/', 1)[-1] if '/' in pair else r['backend']
        w.append('| %s | %s | %s | %s | %s | %s |' % (
            be,
            'refused' if o.get('subject_holds_other_excluded') == 'yes'
            else 'acquires',
            'refused' if o.get('other_holds_subject_excluded') == 'yes'
            else 'acquires',
            o.get('exclusion', '-'), o.get('expected', '-'),
            SHORT.get(r['verdict'], r['verdict'])))
    w.append('')
    w.append(WIN_END)
    return w


def windows_load(wine_path, mixed_path):
    wine = load_lines(wine_path)
    mixed = [r for r in load_lines(mixed_path)
             if r['scenario'] == 'mixed_backends']
    # The mixed_backends row of the plain run is n/a (no peer backend).
    return wine, mixed


def windows_summary(wine, mixed):
    c = collections.Counter(r['verdict'] for r in wine)
    bad = [r for r in wine + mixed
           if r['verdict'] in ('fail', 'unexpected-pass')]
    print('windows (wine): %s' % ', '.join(
        '%s %d' % (SHORT.get(k, k), v) for k, v in sorted(c.items())))
    for r in wine:
        if r['verdict'] == 'not-applicable':
            print('  n/a %s: %s' % (r['scenario'], r['reason']))
    for r in mixed:
        o = r.get('observed', {})
        print('mixed %s: exclusion %s (expected %s): %s'
              % (o.get('pair', '?'), o.get('exclusion', '?'),
                 o.get('expected', '?'), r['verdict']))
    for r in bad:
        print('FAIL %s: %s' % (r['scenario'], r['reason']), file=sys.stderr)
    if not wine or len(mixed) < 3:
        print('windows (wine): results missing (%d scenario rows, %d mixed '
              'runs)' % (len(wine), len(mixed)), file=sys.stderr)
        return 1
    return 1 if bad else 0


def unwine(o):
    """The Windows contender names files as Wine sees them (Z:\\ is /):
    the repository's own Windows path made relative, as relativize does."""
    root_win = 'Z:' + os.path.realpath(ROOT).replace('/', '\\')
    if isinstance(o, str):
        return o.replace(root_win + '\\', '').replace(root_win, '.')
    if isinstance(o, list):
        return [unwine(x) for x in o]
    if isinstance(o, dict):
        return {k: unwine(v) for k, v in o.items()}
    return o


def windows_update(wine, mixed, invocation, wine_version):
    now = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        'generated': now.strftime('%Y-%m-%d %H:%M UTC'),
        'kernel': platform.release(),
        'cpus': os.cpu_count(),
        'invocation': invocation,
        'wine': wine_version or 'Wine',
    }
    win = unwine(pl_paths.relativize({'meta': meta, 'results': wine,
                                      'mixed': mixed}, ROOT))
    text = json.dumps(win, sort_keys=True, indent=1) + '\n'
    linux = []
    if os.path.exists(os.path.join(ROOT, 'conformance', 'results.json')):
        with open(os.path.join(ROOT, 'conformance', 'results.json')) as f:
            linux = json.load(f).get('results', [])
    section = '\n'.join(windows_section(win, linux)) + '\n'
    bad = pl_paths.machine_paths(text) + pl_paths.machine_paths(section)
    bad += re.findall(r'[A-Z]:\\\\[^ "]*', text)
    if bad:
        print('windows report: absolute machine paths, e.g. %s; nothing '
              'written' % ', '.join(sorted(set(bad))[:3]), file=sys.stderr)
        return 1
    with open(WIN_JSON, 'w') as f:
        f.write(text)
    with open(WIN_MD) as f:
        md = f.read()
    if WIN_BEGIN in md and WIN_END in md:
        head, rest = md.split(WIN_BEGIN, 1)
        tail = rest.split(WIN_END, 1)[1].lstrip('\n')
        md = head + section + ('\n' + tail if tail else '')
    else:
        md = md.rstrip('\n') + '\n\n' + section
    with open(WIN_MD, 'w') as f:
        f.write(md)
    print('windows report: wrote %s and the Windows section of %s'
          % (os.path.relpath(WIN_JSON, ROOT), os.path.relpath(WIN_MD, ROOT)),
          file=sys.stderr)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--results')
    ap.add_argument('--runs')
    ap.add_argument('--markdown')
    ap.add_argument('--json')
    ap.add_argument('--kinds', default='')
    ap.add_argument('--invocation', default='ci/conformance-matrix.sh',
                    help='the command that made the results, for the report')
    ap.add_argument('--windows-summary', nargs=2, metavar=('WINE', 'MIXED'),
                    help='print the Windows run (ci/windows.sh); exit 1 on '
                    'a failure')
    ap.add_argument('--windows-update', nargs=2, metavar=('WINE', 'MIXED'),
                    help='write conformance/results-windows.json and the '
                    'Windows section of conformance/RESULTS.md')
    ap.add_argument('--wine', default='', help='wine --version, for the report')
    a = ap.parse_args()
    if a.windows_summary:
        return windows_summary(*windows_load(*a.windows_summary))
    if a.windows_update:
        wine, mixed = windows_load(*a.windows_update)
        rc = windows_summary(wine, mixed)
        return rc or windows_update(wine, mixed, a.invocation, a.wine)
    if not (a.results and a.runs and a.markdown and a.json):
        ap.error('--results, --runs, --markdown and --json are required')

    results = load_lines(a.results)
    runs = load_lines(a.runs)
    # Committed reports carry repository-relative paths; whatever absolute
    # machine path is left makes this step fail below, before writing.
    results = pl_paths.relativize(results, ROOT)
    runs = pl_paths.relativize(runs, ROOT)
    invocation = pl_paths.relativize(a.invocation, ROOT)
    kinds = a.kinds.split() or sorted({r['filesystem'] for r in results})
    impls = []
    for r in results:
        if impl_name(r) not in impls:
            impls.append(impl_name(r))
    skipped_fs = {r['filesystem']: r['reason'] for r in runs
                  if r['status'] == 'skipped' and r['implementation'] == '*'}
    ran_fs = [k for k in kinds if k not in skipped_fs]
    by_key = {}
    for r in results:
        by_key[(impl_name(r), r['filesystem'], r['backend'],
                r['scenario'])] = r
    counts = collections.Counter(r['verdict'] for r in results)
    bad = [r for r in results if r['verdict'] in ('fail', 'unexpected-pass')]
    failed_runs = [r for r in runs if r['status'] == 'failed']

    now = datetime.datetime.now(datetime.timezone.utc)
    meta = {
        'generated': now.strftime('%Y-%m-%d %H:%M UTC'),
        'kernel': platform.release(),
        'machine': platform.machine(),
        'cpus': os.cpu_count(),
        'protocol': 'portalock-conformance/1',
    }
    for r in runs:
        r['log'] = os.path.basename(r.get('log') or '')
    # One run / one result per line: valid JSON that diffs well.
    with io.StringIO() as f:
        f.write('{"meta": %s,\n' % json.dumps(meta, sort_keys=True))
        f.write(' "filesystems": %s,\n' % json.dumps(kinds))
        f.write(' "skipped_filesystems": %s,\n'
                % json.dumps(skipped_fs, sort_keys=True))
        f.write(' "runs": [\n  %s\n ],\n' % ',\n  '.join(
            json.dumps(r, sort_keys=True) for r in runs))
        f.write(' "results": [\n  %s\n ]}\n' % ',\n  '.join(
            json.dumps(r, sort_keys=True) for r in results))
        json_text = f.getvalue()

    md = []
    w = md.append
    w('# Conformance results')
    w('')
    w('Generated by `ci/conformance-matrix.sh` on %s (Linux %s, %s, %s CPUs, '
      'shared with other jobs: timing bounds are generous, see '
      '`conformance/file/test_timing.c`). Protocol `%s`; scenarios in '
      '`conformance/file/`, contenders described in '
      '`conformance/PROTOCOL.md`.' % (meta['generated'], meta['kernel'],
                                      meta['machine'], meta['cpus'],
                                      meta['protocol']))
    w('')
    w('Command: `%s`' % invocation)
    w('')
    w('Verdicts: **pass**; **FAIL** (a violation not in the '
      "implementation's known-results file); **expected-fail** (listed in "
      '`conformance/known/`, reason below); **n/a** (the implementation '
      'does not offer it, or the setup does not allow it); **not coherent** '
      '(two mounts of one export do not exclude each other, and `pl_probe()` '
      'says so). Totals: ' + ', '.join('%s %d' % (k, v) for k, v in
                                        sorted(counts.items())) + '.')
    w('')
    w('## Summary')
    w('')
    for impl in impls:
        rs = [r for r in results if impl_name(r) == impl]
        c = collections.Counter(r['verdict'] for r in rs)
        hand = [r['measured']['handoff_ms_median'] for r in rs
                if r['scenario'] == 'handoff'
                and 'handoff_ms_median' in r['measured']]
        line = '- **%s**: %s.' % (impl, ', '.join(
            '%d %s' % (c[v], v) for v in ('pass', 'fail', 'expected-fail',
                                          'unexpected-pass', 'not-coherent',
                                          'not-applicable') if c[v]))
        if hand:
            line += (' Hand-off median %.2f to %.2f ms over %d '
                     'filesystem/backend runs.' % (min(hand), max(hand),
                                                   len(hand)))
        w(line)
    w('')
    w('## Scenarios')
    w('')
    for sc, desc in SCENARIOS:
        w('- `%s`: %s' % (sc, desc))
    w('')
    w('## Filesystems')
    w('')
    w('| filesystem | status |')
    w('|---|---|')
    for k in kinds:
        if k in skipped_fs:
            w('| %s | **not run**: %s |' % (k, skipped_fs[k].replace('|', '/')))
        else:
            w('| %s | ran (`ci/fs.sh setup %s`) |' % (k, k))
    w('')
    if failed_runs:
        w('Suite runs that did not exit 0 (see the logs under the build '
          'directory): ' + ', '.join('%s/%s/%s' % (r['implementation'],
                                                  r['filesystem'],
                                                  r['backend'])
                                     for r in failed_runs) + '.')
        w('')

    for impl in impls:
        w('## %s' % impl)
        w('')
        w('| scenario | backend | ' + ' | '.join(ran_fs) + ' |')
        w('|---|---|' + '---|' * len(ran_fs))
        known_sc = [sc for sc, _ in SCENARIOS]
        extra = sorted({r['scenario'] for r in results
                        if r['scenario'] not in known_sc})
        for sc in known_sc + extra:
            for be in BACKENDS:
                cells = []
                for fs in ran_fs:
                    r = by_key.get((impl, fs, be, sc))
                    if r is None:
                        cells.append('-')
                        continue
                    cell = SHORT.get(r['verdict'], r['verdict'])
                    if sc == 'handoff' and 'handoff_ms_median' in r['measured']:
                        cell += ' (%.2f ms)' % r['measured']['handoff_ms_median']
                    if sc == 'close_pitfall' and r['observed'].get(
                            'close_pitfall') == 'present':
                        cell += ' (pitfall present)'
                    if sc == 'same_process_objects' and r['observed'].get(
                            'same_process_exclusion') == 'no':
                        cell += ' (no exclusion)'
                    cells.append(cell)
                if all(c in ('-', 'n/a') for c in cells) and all(
                        'backend' in by_key[(impl, fs, be, sc)]['reason']
                        for fs in ran_fs if (impl, fs, be, sc) in by_key):
                    continue  # backend not offered: listed under n/a
                w('| %s | %s | %s |' % (sc, be, ' | '.join(cells)))
        w('')

    w('## Measured hand-off (median of 5, ms) and take-over after SIGKILL (ms)')
    w('')
    w('Hand-off: the holder releases 0.15 s after the waiter started waiting '
      'with check_interval 0.5 s; the time from the release call to the '
      "waiter's acquire returning. A kernel wait wakes at once; a polling "
      'loop wakes at its next attempt (here about 350 ms later).')
    w('')
    w('| implementation | backend | ' + ' | '.join(
        '%s handoff / takeover' % fs for fs in ran_fs) + ' |')
    w('|---|---|' + '---|' * len(ran_fs))
    for impl in impls:
        for be in BACKENDS:
            cells = []
            for fs in ran_fs:
                h = by_key.get((impl, fs, be, 'handoff'))
                d = by_key.get((impl, fs, be, 'release_on_death'))
                hv = h['measured'].get('handoff_ms_median') if h else None
                dv = d['measured'].get('takeover_ms') if d else None
                cells.append('%s / %s' % ('%.2f' % hv if hv is not None
                                          else '-',
                                          '%.1f' % dv if dv is not None
                                          else '-'))
            if all(c == '- / -' for c in cells):
                continue
            w('| %s | %s | %s |' % (impl, be, ' | '.join(cells)))
    w('')

    w('Exclusivity: wall time of 8 contenders x 200 acquisitions (s), '
      'own implementation / mixed with the other one:')
    w('')
    w('| implementation | backend | ' + ' | '.join(ran_fs) + ' |')
    w('|---|---|' + '---|' * len(ran_fs))
    for impl in impls:
        for be in BACKENDS:
            cells = []
            for fs in ran_fs:
                vals = []
                for sc in ('exclusivity', 'exclusivity_cross_impl'):
                    r = by_key.get((impl, fs, be, sc))
                    v = r['measured'].get('wall_s') if r else None
                    vals.append('%.2f' % v if v is not None else '-')
                cells.append(' / '.join(vals))
            if all(c == '- / -' for c in cells):
                continue
            w('| %s | %s | %s |' % (impl, be, ' | '.join(cells)))
    w('')

    w('## Observed properties (not failures)')
    w('')
    seen = collections.OrderedDict()
    for r in results:
        for key in ('close_pitfall', 'same_process_exclusion', 'coherent',
                    'child_result'):
            if key in r['observed']:
                k = (impl_name(r), r['scenario'], key, r['observed'][key])
                seen.setdefault(k, set()).add('%s/%s' % (r['filesystem'],
                                                         r['backend']))
    w('| implementation | scenario | property | value | where |')
    w('|---|---|---|---|---|')
    for (impl, sc, key, val), where in seen.items():
        w('| %s | %s | %s | %s | %s |' % (impl, sc, key, val,
                                          where_str(where, ran_fs)))
    w('')
    notrun = collections.OrderedDict()
    for r in results:
        if r['scenario'] in ('bad_input', 'bad_input_cli'):
            for k, v in r['observed'].items():
                if v.startswith('not run'):
                    notrun.setdefault((r['filesystem'], k, v), True)
    if notrun:
        w('Bad-input cases the filesystem itself cannot stage (not run):')
        w('')
        for fs, k, v in notrun:
            w('- %s, %s: %s' % (fs, k, v))
        w('')

    w('## Expected failures and other verdicts with reasons')
    w('')
    reasons = collections.OrderedDict()
    for r in results:
        if r['verdict'] in ('expected-fail', 'not-coherent', 'fail',
                            'unexpected-pass'):
            k = (impl_name(r), r['scenario'], r['verdict'], r['reason'])
            reasons.setdefault(k, set()).add('%s/%s' % (r['filesystem'],
                                                        r['backend']))
    if not reasons:
        w('None.')
    for (impl, sc, verdict, reason), where in reasons.items():
        w('- **%s** %s: %s (%s). %s' % (impl, sc, verdict,
                                       where_str(where, ran_fs), reason))
    w('')
    na = collections.OrderedDict()
    for r in results:
        if r['verdict'] == 'not-applicable':
            entry = na.setdefault((impl_name(r), r['reason']),
                                  [set(), set()])
            entry[0].add(r['scenario'])
            entry[1].add('%s/%s' % (r['filesystem'], r['backend']))
    if na:
        w('Not applicable:')
        w('')
        for (impl, reason), (scs, where) in na.items():
            w('- %s: %s: %s (%s)' % (impl, reason,
                                     'every scenario' if len(scs) > 10
                                     else ', '.join(sorted(scs)),
                                     where_str(where, ran_fs)))
        w('')
    if os.path.exists(WIN_JSON):
        # The Windows column comes from ci/windows.sh --report (kept as
        # it was when the Linux matrix is made again).
        with open(WIN_JSON) as f:
            md.extend(windows_section(json.load(f), results))
        md.append('')
    md_text = '\n'.join(md) + '\n'
    bad_paths = pl_paths.machine_paths(md_text) + \
        pl_paths.machine_paths(json_text)
    if bad_paths:
        print('conformance report: absolute machine paths (%d), e.g. %s; '
              'nothing written' % (len(bad_paths),
                                   ', '.join(sorted(set(bad_paths))[:3])),
              file=sys.stderr)
        return 1
    with open(a.json, 'w') as f:
        f.write(json_text)
    with open(a.markdown, 'w') as f:
        f.write(md_text)
    print('conformance-matrix: %d scenario results, %s; wrote %s and %s'
          % (len(results), dict(counts), a.markdown, a.json), file=sys.stderr)
    return 1 if bad or failed_runs else 0


if __name__ == '__main__':
    sys.exit(main())
