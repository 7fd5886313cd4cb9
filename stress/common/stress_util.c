/*
 * stress_util.c -- see stress_util.h.
 */
#include "stress_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t ps_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ps_sleep_us(long us) {
    struct timespec ts;
    if (us <= 0)
        return;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void ps_rng_seed(ps_rng_t *r, uint64_t seed) {
    /* splitmix64 once, so nearby seeds give unrelated streams */
    uint64_t z = seed + 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    r->s = z != 0 ? z : 1;
}

uint64_t ps_rng_next(ps_rng_t *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1Du;
}

unsigned ps_rng_below(ps_rng_t *r, unsigned n) {
    return (unsigned)((ps_rng_next(r) >> 32) % n);
}

void *ps_shared_alloc(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("stress: mmap");
        exit(1);
    }
    return p; /* anonymous mappings are zeroed */
}

void ps_shared_free(void *p, size_t len) {
    munmap(p, len);
}

int ps_workdir(char *out, size_t len, const char *base, const char *prefix) {
    if (base == NULL)
        base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    if ((size_t)snprintf(out, len, "%s/%s.XXXXXX", base, prefix) >= len)
        return -1;
    return mkdtemp(out) != NULL ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void ps_rmtree(const char *path) {
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int ps_kill(long pid, int sig) {
    if (pid <= 0) {
        errno = EINVAL;
        return -1;
    }
    return kill((pid_t)pid, sig);
}

static int count_entries(const char *dir) {
    return ps_dir_count(dir, NULL, NULL, 0);
}

int ps_count_fds(void) {
    int n = count_entries("/proc/self/fd");
    return n > 0 ? n - 1 : n; /* minus the directory stream's own fd */
}

int ps_count_threads(void) {
    return count_entries("/proc/self/task");
}

int ps_wait_threads(int want, int ms) {
    int n = ps_count_threads();
    for (int i = 0; i < ms && n > want; i++) {
        ps_sleep_us(1000);
        n = ps_count_threads();
    }
    return n;
}

int ps_dir_count(const char *dir, const char *needle, char *first,
                 size_t first_len) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (first != NULL && first_len > 0)
        first[0] = '\0';
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (needle != NULL && strstr(e->d_name, needle) == NULL)
            continue;
        if (n++ == 0 && first != NULL && first_len > 0)
            snprintf(first, first_len, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

int ps_backdate(const char *dir, const char *needle, int seconds) {
    DIR *d = opendir(dir);
    struct dirent *e;
    struct timespec ts[2];
    int n = 0;

    if (d == NULL)
        return 0;
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= seconds;
    ts[1] = ts[0];
    while ((e = readdir(d)) != NULL) {
        if (strstr(e->d_name, needle) == NULL)
            continue;
        if (utimensat(dirfd(d), e->d_name, ts, AT_SYMLINK_NOFOLLOW) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static int checks_passed, checks_failed;

void ps_check(const char *name, int ok, const char *fmt, ...) {
    va_list ap;
    if (ok) {
        checks_passed++;
        return;
    }
    checks_failed++;
    fprintf(stderr, "FAIL %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ps_checks_failed(void) {
    return checks_failed;
}

int ps_checks_summary(const char *prog) {
    printf("%s: %d checks passed, %d failed\n", prog, checks_passed,
           checks_failed);
    fflush(stdout);
    return checks_failed;
}

long ps_parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: '%s' is not an integer in %ld..%ld\n", opt, s, lo,
                hi);
        exit(64);
    }
    return v;
}

double ps_parse_double(const char *opt, const char *s, double lo, double hi) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: '%s' is not a number in %g..%g\n", opt, s, lo, hi);
        exit(64);
    }
    return v;
}
