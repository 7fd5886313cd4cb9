/*
 * sys_hooks.h -- a hooked pl__sys table (lib/src/posix/sys.h) for the fault
 * and crash programs: every entry counts its calls, can fail with a chosen
 * errno (the k-th call, every call from the k-th on, or a share of calls at
 * random), and reports each call before and after the real one to an
 * observer (the crash program SIGKILLs itself there).
 *
 * Install before the library is used on other threads; the counters are
 * atomic, the fault list is read-only while installed.
 */
#ifndef PS_SYS_HOOKS_H
#define PS_SYS_HOOKS_H

#include "posix/sys.h"

#include <stdatomic.h>

typedef enum ps_entry {
    E_OPEN,
    E_CLOSE,
    E_FLOCK,
    E_FCNTL,
    E_FSTAT,
    E_STAT,
    E_FTRUNCATE,
    E_FSYNC,
    E_UNLINK,
    E_RENAME,
    E_LINK,
    E_MKDIR,
    E_READ,
    E_WRITE,
    E_LSTAT,
    E_LINKAT,
    E_PTHREAD_CREATE,
    E_COUNT
} ps_entry_t;

extern const char *const ps_entry_names[E_COUNT];
/* Calls per entry since the last ps_hooks_install / ps_faults_clear. */
extern atomic_long ps_calls[E_COUNT];
/* The real table, saved by ps_hooks_install. */
extern pl__sys_table_t ps_real;
/* Called before (after = 0) and after (after = 1) every real call; may be
 * NULL.  Only fcntl's lock commands count as fcntl calls. */
extern void (*ps_hook_observer)(ps_entry_t e, int after);
/* Non-zero: open(O_TMPFILE) fails with EOPNOTSUPP, as on filesystems
 * without it, so the library takes its named-temporary-file path (the one
 * that can leave ".tmp" files behind: issue 9 defect 1). */
extern int ps_no_tmpfile;

/* Replaces every entry with a counting hook, no fault set. */
void ps_hooks_install(void);
/* Restores the real table and clears faults and counters. */
void ps_hooks_remove(void);
void ps_faults_clear(void);
/*
 * Calls to e fail with err: the first `skip` pass, the next `times` fail
 * (times < 0: all); or, with percent > 0, that share of calls at random.
 * blocking_only: flock/fcntl calls that would wait only.  A failing close
 * really closes first (as Linux does); pthread_create returns err.
 */
void ps_fault_add(ps_entry_t e, int err, long skip, long times, int percent,
                  int blocking_only);

#endif /* PS_SYS_HOOKS_H */
