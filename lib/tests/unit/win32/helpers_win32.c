/*
 * helpers_win32.c -- helpers.h for the Windows unit build.
 *
 * On POSIX the helpers fork contender processes.  Windows has no fork, but
 * it does not need one for what most tests check: LockFileEx locks belong
 * to the handle, so a thread of this process that opens its own handle is a
 * genuine contender, excluded exactly like another process.  plt_in_child,
 * plt_holder_* and plt_race therefore run their functions in threads.  What
 * threads cannot model -- a child inheriting a lock object (PL_EFORKED), a
 * holder killed with SIGKILL, dropping privileges -- belongs to POSIX-only
 * tests, excluded by name in excluded.txt; the helpers those tests need fail
 * loudly here (cr_fatal), they never pretend.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "internal.h"

char plt_dir[1024];
static char extra_dirs[4][1024];
static int n_extra_dirs;

/* ---- temporary directory ------------------------------------------------- */

static void sanitize(char *s) {
    for (; *s != '\0'; s++)
        if (*s == '/' || *s == '\\' || *s == ' ' || *s == ':')
            *s = '_';
}

static void make_temp_dir(char *out, size_t len, const char *base) {
    const char *suite = criterion_current_test != NULL
                            ? criterion_current_test->category
                            : "none";
    const char *test =
        criterion_current_test != NULL ? criterion_current_test->name : "none";
    char name[256];
    static unsigned serial;

    snprintf(name, sizeof(name), "pl-unit.%.60s.%.80s.%lu.%u", suite, test,
             (unsigned long)GetCurrentProcessId(), ++serial);
    sanitize(name);
    snprintf(out, len, "%s\\%s", base, name);
    cr_assert(CreateDirectoryA(out, NULL), "CreateDirectory(%s): error %lu",
              out, (unsigned long)GetLastError());
}

static const char *temp_base(void) {
    static char base[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof(base), base);
    if (n == 0 || n > MAX_PATH)
        return "C:\\Windows\\Temp";
    while (n > 3 && base[n - 1] == '\\')
        base[--n] = '\0';
    return base;
}

void plt_setup(void) {
    pl__sys_reset();
    n_extra_dirs = 0;
    make_temp_dir(plt_dir, sizeof(plt_dir), temp_base());
}

const char *plt_mkdtemp_in(const char *base) {
    cr_assert(lt(int, n_extra_dirs, 4));
    make_temp_dir(extra_dirs[n_extra_dirs], sizeof(extra_dirs[0]), base);
    return extra_dirs[n_extra_dirs++];
}

void plt_rmtree(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    if (d == NULL) {
        SetFileAttributesA(path, FILE_ATTRIBUTE_NORMAL);
        DeleteFileA(path);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[2048];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s\\%s", path, e->d_name);
        plt_rmtree(sub);
    }
    closedir(d);
    RemoveDirectoryA(path);
}

void plt_teardown(void) {
    pl__sys_reset();
    if (plt_dir[0] != '\0')
        plt_rmtree(plt_dir);
    for (int i = 0; i < n_extra_dirs; i++)
        plt_rmtree(extra_dirs[i]);
    n_extra_dirs = 0;
    plt_dir[0] = '\0';
}

const char *plt_path(const char *name) {
    static char bufs[16][1200];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof(bufs[0]), "%s\\%s", plt_dir, name);
    return b;
}

/* ---- files --------------------------------------------------------------- */

void plt_write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f != NULL, "fopen(%s): %s", path, strerror(errno));
    fputs(text, f);
    cr_assert(eq(int, fclose(f), 0));
}

long plt_read_file(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL)
        return -1;
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

int plt_exists(const char *path) {
    return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

int plt_dir_entries(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Open handles of this process: the Windows counterpart of /proc/self/fd
 * for leak checks.  Handle values are multiples of 4; probing them works on
 * Windows and under Wine (whose GetProcessHandleCount reports 0). */
int plt_count_fds(void) {
    int n = 0;
    for (uintptr_t h = 4; h < 0x4000; h += 4) {
        DWORD flags;
        if (GetHandleInformation((HANDLE)h, &flags))
            n++;
    }
    return n;
}

int plt_contains_any(const char *hay, const char *const *needles) {
    for (; *needles != NULL; needles++)
        if (strstr(hay, *needles) != NULL)
            return 1;
    return 0;
}

/* ---- time ---------------------------------------------------------------- */

double plt_now(void) {
    return pl__os_monotonic();
}

void plt_sleep_ms(int ms) {
    Sleep(ms > 0 ? (DWORD)ms : 0);
}

/* ---- other "processes": threads with their own handles ------------------- */

typedef struct child {
    plt_fn fn;
    void *arg;
    int rc;
} child_t;

static DWORD WINAPI child_main(LPVOID p) {
    child_t *c = p;
    c->rc = c->fn(c->arg);
    return 0;
}

int plt_in_child(plt_fn fn, void *arg) {
    child_t c = {fn, arg, PLT_CHILD_FAILED};
    HANDLE t = CreateThread(NULL, 0, child_main, &c, 0, NULL);
    cr_assert(t != NULL, "CreateThread: error %lu",
              (unsigned long)GetLastError());
    if (WaitForSingleObject(t, 30000) != WAIT_OBJECT_0)
        cr_fatal("child thread still running after 30 s");
    CloseHandle(t);
    return c.rc;
}

typedef struct holder_slot {
    HANDLE thread, ready, go;
    plt_fn acquire, release;
    void *arg;
    int release_after_ms;
    int acquire_rc, release_rc;
    int used;
} holder_slot_t;

static holder_slot_t slots[64];

static DWORD WINAPI holder_main(LPVOID p) {
    holder_slot_t *s = p;
    s->acquire_rc = s->acquire(s->arg);
    SetEvent(s->ready);
    if (s->acquire_rc != PL_OK)
        return 0;
    WaitForSingleObject(
        s->go, s->release_after_ms < 0 ? INFINITE : (DWORD)s->release_after_ms);
    s->release_rc = s->release(s->arg);
    return 0;
}

int plt_holder_start(plt_holder_t *h, plt_fn acquire, plt_fn release, void *arg,
                     int release_after_ms) {
    int i;
    holder_slot_t *s;

    for (i = 0; i < 64 && slots[i].used; i++)
        ;
    cr_assert(lt(int, i, 64), "more than 64 holders at once");
    s = &slots[i];
    memset(s, 0, sizeof(*s));
    s->used = 1;
    s->acquire = acquire;
    s->release = release;
    s->arg = arg;
    s->release_after_ms = release_after_ms;
    s->acquire_rc = s->release_rc = PLT_CHILD_FAILED;
    s->ready = CreateEventW(NULL, TRUE, FALSE, NULL);
    s->go = CreateEventW(NULL, TRUE, FALSE, NULL);
    s->thread = CreateThread(NULL, 0, holder_main, s, 0, NULL);
    cr_assert(s->thread != NULL && s->ready != NULL && s->go != NULL);
    h->pid = (pid_t)GetThreadId(s->thread);
    h->ready_fd = i;
    h->go_fd = i;
    h->timed = release_after_ms >= 0;
    if (WaitForSingleObject(s->ready, 30000) != WAIT_OBJECT_0)
        return PLT_CHILD_FAILED;
    if (s->acquire_rc != PL_OK) {
        WaitForSingleObject(s->thread, 30000);
        CloseHandle(s->thread);
        CloseHandle(s->ready);
        CloseHandle(s->go);
        s->used = 0;
        h->ready_fd = h->go_fd = -1;
    }
    return s->acquire_rc;
}

int plt_holder_finish(plt_holder_t *h) {
    holder_slot_t *s;
    int rc;
    if (h->ready_fd < 0)
        return PLT_CHILD_FAILED;
    s = &slots[h->ready_fd];
    SetEvent(s->go);
    if (WaitForSingleObject(s->thread, 30000) != WAIT_OBJECT_0)
        return PLT_CHILD_FAILED;
    rc = s->release_rc;
    CloseHandle(s->thread);
    CloseHandle(s->ready);
    CloseHandle(s->go);
    s->used = 0;
    h->ready_fd = h->go_fd = -1;
    return rc;
}

void plt_holder_kill(plt_holder_t *h) {
    (void)h;
    cr_fatal("plt_holder_kill: killing a holder process is POSIX-only here "
             "(holders are threads on Windows); exclude the test");
}

/* The descriptor field is an int: Windows handles fit in 32 bits (they are
 * sign-extended for 32/64-bit interoperability). */
int plt_fd_acquire(void *arg) {
    plt_fd_hold_t *a = arg;
    pl_fd_t fd;
    if (pl__os_open_lockfile(a->path, "a+", 0644, &fd, NULL) != PL_OK)
        return PLT_OPEN_FAILED;
    a->fd = (int)(intptr_t)fd;
    return pl_lock_fd(fd, a->flags, a->backend, NULL);
}

int plt_fd_release(void *arg) {
    plt_fd_hold_t *a = arg;
    pl_fd_t fd = (pl_fd_t)(intptr_t)a->fd;
    int rc = pl_unlock_fd(fd, a->backend, NULL);
    CloseHandle((HANDLE)fd);
    return rc;
}

int plt_open_kind(plt_kind_t kind, pl_lock_t **out, const char *path,
                  const pl_lock_options_t *opts) {
    switch (kind) {
    case PLT_LOCK: return pl_lock_open(out, path, opts);
    case PLT_RLOCK: return pl_rlock_open(out, path, opts);
    case PLT_TEMPORARY: return pl_temporary_lock_open(out, path, opts);
    case PLT_PIDFILE: return pl_pidfile_lock_open(out, path, opts);
    }
    return PL_EINVAL;
}

int plt_obj_acquire(void *arg) {
    plt_obj_hold_t *a = arg;
    int rc = plt_open_kind(a->kind, &a->lock, a->path, &a->opts);
    if (rc != PL_OK)
        return rc;
    return pl_lock_acquire(a->lock);
}

int plt_obj_release(void *arg) {
    plt_obj_hold_t *a = arg;
    int rc = pl_lock_release(a->lock);
    pl_lock_close(a->lock);
    return rc;
}

typedef struct try_args {
    const char *path;
    pl_backend_t backend;
    unsigned flags;
} try_args_t;

static int try_once(void *arg) {
    try_args_t *t = arg;
    pl_fd_t fd;
    int rc;
    if (pl__os_open_lockfile(t->path, "r+", 0644, &fd, NULL) != PL_OK &&
        pl__os_open_lockfile(t->path, "r", 0644, &fd, NULL) != PL_OK)
        return PL_ENOENT;
    rc = pl_lock_fd(fd, t->flags | PL_NON_BLOCKING, t->backend, NULL);
    if (rc == PL_OK)
        pl_unlock_fd(fd, t->backend, NULL);
    CloseHandle((HANDLE)fd);
    return rc;
}

int plt_try_other_process(const char *path, pl_backend_t backend,
                          unsigned flags) {
    try_args_t t = {path, backend, flags};
    return plt_in_child(try_once, &t);
}

int plt_try_this_process(const char *path, pl_backend_t backend,
                         unsigned flags) {
    try_args_t t = {path, backend, flags};
    return try_once(&t);
}

/* ---- lock helpers -------------------------------------------------------- */

/* Windows has one backend; loops "over every backend" run it each time. */
const pl_backend_t plt_backends[PLT_N_BACKENDS] = {
    PL_BACKEND_LOCKFILEEX, PL_BACKEND_LOCKFILEEX, PL_BACKEND_LOCKFILEEX};
const pl_backend_t plt_desc_backends[2] = {PL_BACKEND_LOCKFILEEX,
                                           PL_BACKEND_LOCKFILEEX};

int plt_child_acquire(void *lock) {
    return pl_lock_acquire(lock);
}
int plt_child_release(void *lock) {
    return pl_lock_release(lock);
}
int plt_child_close(void *lock) {
    return pl_lock_close(lock);
}
int plt_child_ok(void *arg) {
    (void)arg;
    return PL_OK;
}

/* 1 if the handle is not inheritable (the O_CLOEXEC counterpart). */
int plt_cloexec(pl_fd_t fd) {
    DWORD flags = 0;
    if (!GetHandleInformation((HANDLE)fd, &flags))
        return -1;
    return (flags & HANDLE_FLAG_INHERIT) == 0;
}

typedef struct race_shared {
    atomic_int inside, overlaps, acquired;
} race_shared_t;

typedef struct race_arg {
    race_shared_t *sh;
    plt_kind_t kind;
    const char *path;
    pl_backend_t backend;
    int iterations;
} race_arg_t;

static int race_loop(void *arg) {
    race_arg_t *r = arg;
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    int failures = 0;
    pl_lock_options_init(&o);
    o.timeout = 20;
    o.check_interval = 0.001;
    o.fail_when_locked = 0;
    o.backend = r->backend;
    if (plt_open_kind(r->kind, &lock, r->path, &o) != PL_OK)
        return 100;
    for (int i = 0; i < r->iterations; i++) {
        if (pl_lock_acquire(lock) != PL_OK) {
            failures++;
            continue;
        }
        if (atomic_fetch_add(&r->sh->inside, 1) != 0)
            atomic_fetch_add(&r->sh->overlaps, 1);
        atomic_fetch_add(&r->sh->acquired, 1);
        SwitchToThread();
        atomic_fetch_sub(&r->sh->inside, 1);
        if (pl_lock_release(lock) != PL_OK)
            failures++;
    }
    pl_lock_close(lock);
    return failures > 99 ? 99 : failures;
}

plt_race_t plt_race(plt_kind_t kind, const char *path, pl_backend_t backend,
                    int processes, int iterations) {
    plt_race_t res = {0, 0, 0};
    plt_holder_t h[16];
    /* static: a thread that outlives the 30 s limit must not write into a
     * dead stack frame */
    static race_shared_t sh;
    race_arg_t r = {&sh, kind, path, backend, iterations};
    cr_assert(processes <= 16);
    atomic_init(&sh.inside, 0);
    atomic_init(&sh.overlaps, 0);
    atomic_init(&sh.acquired, 0);
    for (int k = 0; k < processes; k++)
        cr_assert(eq(int,
                     plt_holder_start(&h[k], plt_child_ok, race_loop, &r, 0),
                     PL_OK));
    for (int k = 0; k < processes; k++) {
        int rc = plt_holder_finish(&h[k]);
        res.failures += rc == PLT_CHILD_FAILED ? 1000 : rc;
    }
    res.acquired = atomic_load(&sh.acquired);
    res.overlaps = atomic_load(&sh.overlaps);
    return res;
}

/* ---- fault injection: the POSIX syscall table only ----------------------- */

pl__sys_table_t plt_real;

#define POSIX_ONLY(what)                                                       \
 cr_fatal("%s: fault injection drives the POSIX syscall table; exclude the "   \
          "test on Windows",                                                   \
          what)

const char *plt_sys_name(plt_sys_t which) {
    (void)which;
    POSIX_ONLY("plt_sys_name");
    return "";
}
const char *const *plt_sys_words(plt_sys_t which) {
    (void)which;
    POSIX_ONLY("plt_sys_words");
    return NULL;
}
void plt_sys_install(void) {
    POSIX_ONLY("plt_sys_install");
}
void plt_sys_reset_counts(void) {
    POSIX_ONLY("plt_sys_reset_counts");
}
int plt_sys_calls(plt_sys_t which) {
    (void)which;
    POSIX_ONLY("plt_sys_calls");
    return 0;
}
void plt_fault(plt_sys_t which, int err, int skip, int times,
               const char *match) {
    (void)which, (void)err, (void)skip, (void)times, (void)match;
    POSIX_ONLY("plt_fault");
}
void plt_fault_clear(void) {
    pl__sys_reset();
}
void plt_sys_before(plt_sys_t which, void (*fn)(void *arg, int nth),
                    void *arg) {
    (void)which, (void)fn, (void)arg;
    POSIX_ONLY("plt_sys_before");
}
void plt_stat_lie(const char *path, int times) {
    (void)path, (void)times;
    POSIX_ONLY("plt_stat_lie");
}

/* ---- POSIX calls of the excluded tests (see shim/posix_shim.h) ----------- */

#define NOSYS(...)                                                             \
 do {                                                                          \
  errno = ENOSYS;                                                              \
  return __VA_ARGS__;                                                          \
 } while (0)

int fcntl(int fd, int cmd, ...) {
    (void)fd, (void)cmd;
    NOSYS(-1);
}
pid_t fork(void) {
    NOSYS(-1);
}
pid_t waitpid(pid_t pid, int *status, int options) {
    (void)pid, (void)status, (void)options;
    NOSYS(-1);
}
int kill(pid_t pid, int sig) {
    (void)pid, (void)sig;
    NOSYS(-1);
}
int setuid(int uid) {
    (void)uid;
    NOSYS(-1);
}
int setgid(int gid) {
    (void)gid;
    NOSYS(-1);
}
int getuid(void) {
    NOSYS(-1);
}
int geteuid(void) {
    NOSYS(-1);
}
int unshare(int flags) {
    (void)flags;
    NOSYS(-1);
}
int setenv(const char *name, const char *value, int overwrite) {
    if (!overwrite && getenv(name) != NULL)
        return 0;
    return _putenv_s(name, value) == 0 ? 0 : -1;
}
int unsetenv(const char *name) {
    return _putenv_s(name, "") == 0 ? 0 : -1;
}
int gethostname(char *name, size_t len) {
    DWORD n = (DWORD)len;
    return GetComputerNameExA(ComputerNameDnsHostname, name, &n) ? 0 : -1;
}
int plw_mkdir(const char *path, int mode) {
    (void)mode;
    return _mkdir(path);
}
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off) {
    (void)addr, (void)len, (void)prot, (void)flags, (void)fd, (void)off;
    NOSYS(MAP_FAILED);
}
int munmap(void *addr, size_t len) {
    (void)addr, (void)len;
    NOSYS(-1);
}
int mount(const char *src, const char *target, const char *type,
          unsigned long flags, const void *data) {
    (void)src, (void)target, (void)type, (void)flags, (void)data;
    NOSYS(-1);
}
int umount2(const char *target, int flags) {
    (void)target, (void)flags;
    NOSYS(-1);
}
int getrlimit(int resource, struct rlimit *rl) {
    (void)resource, (void)rl;
    NOSYS(-1);
}
int setrlimit(int resource, const struct rlimit *rl) {
    (void)resource, (void)rl;
    NOSYS(-1);
}
int socket(int domain, int type, int protocol) {
    (void)domain, (void)type, (void)protocol;
    NOSYS(-1);
}
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    (void)fd, (void)addr, (void)len;
    NOSYS(-1);
}
int mkfifo(const char *path, int mode) {
    (void)path, (void)mode;
    NOSYS(-1);
}
int statfs(const char *path, struct statfs *st) {
    (void)path, (void)st;
    NOSYS(-1);
}
