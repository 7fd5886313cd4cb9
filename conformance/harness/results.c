/*
 * results.c -- verdicts, the known-results files and the JSON results line,
 * plus the interval oracle.
 *
 * Known-results file (conformance/known/<impl>-<version>.txt, or
 * <impl>.txt, or PL_CONFORMANCE_KNOWN): one expectation per line,
 *
 *     <scenario> <backend-glob> <fs-glob> fail <reason ...>
 *
 * Lines starting with '#' are comments.  A scenario that fails and matches a
 * line is an "expected-fail" (the test passes and the reason is printed and
 * recorded); a scenario that passes although a line says it fails is an
 * "unexpected-pass" and fails the test, so the file stays true.
 */
#include "harness.h"
#include "portalock.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PLT_KNOWN_DIR
# define PLT_KNOWN_DIR "."
#endif

#define MAX_FAILURES 16
#define MAX_ITEMS    24

extern char plt__impl[32];
extern char plt__version[32];

static char scenario[64];
static char failures[MAX_FAILURES][512];
static int nfailures;
static char mkeys[MAX_ITEMS][48];
static double mvals[MAX_ITEMS];
static int nmeasures;
static char okeys[MAX_ITEMS][48];
static char ovals[MAX_ITEMS][160];
static int nobserved;
static char forced_verdict[32];
static char forced_reason[256];
static int finished;

void plt__results_reset(void);
int plt__probe_fstype(const char *dir, char *out, size_t len);

void plt__results_reset(void) {
    scenario[0] = '\0';
    nfailures = nmeasures = nobserved = 0;
    forced_verdict[0] = forced_reason[0] = '\0';
    finished = 0;
}

int plt__probe_fstype(const char *dir, char *out, size_t len) {
    pl_probe_t probe;
    if (pl_probe(dir, &probe, NULL) != PL_OK || probe.fstype[0] == '\0')
        return -1;
    snprintf(out, len, "%s", probe.fstype);
    return 0;
}

void plt_begin(const char *name) {
    plt__results_reset();
    snprintf(scenario, sizeof(scenario), "%s", name);
}

int plt_check(int cond, const char *fmt, ...) {
    va_list ap;
    char msg[512];
    if (cond)
        return 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[conformance] %s/%s/%s: violation: %s\n", scenario,
            plt_backend(), plt__impl, msg);
    if (nfailures < MAX_FAILURES)
        snprintf(failures[nfailures], sizeof(failures[0]), "%s", msg);
    nfailures++;
    return 0;
}

void plt_measure(const char *key, double value) {
    int i;
    for (i = 0; i < nmeasures; i++)
        if (strcmp(mkeys[i], key) == 0)
            break;
    if (i == MAX_ITEMS)
        return;
    snprintf(mkeys[i], sizeof(mkeys[0]), "%s", key);
    mvals[i] = value;
    if (i == nmeasures)
        nmeasures++;
}

void plt_observe(const char *key, const char *fmt, ...) {
    va_list ap;
    int i;
    for (i = 0; i < nobserved; i++)
        if (strcmp(okeys[i], key) == 0)
            break;
    if (i == MAX_ITEMS)
        return;
    snprintf(okeys[i], sizeof(okeys[0]), "%s", key);
    va_start(ap, fmt);
    vsnprintf(ovals[i], sizeof(ovals[0]), fmt, ap);
    va_end(ap);
    if (i == nobserved)
        nobserved++;
}

void plt_set_verdict(const char *verdict, const char *reason) {
    snprintf(forced_verdict, sizeof(forced_verdict), "%s", verdict);
    snprintf(forced_reason, sizeof(forced_reason), "%s", reason);
}

/* ---- known file ---------------------------------------------------------- */

static int known_path(char *buf, size_t len) {
    const char *env = getenv("PL_CONFORMANCE_KNOWN");
    if (env != NULL && env[0] != '\0') {
        snprintf(buf, len, "%s", env);
        return 0;
    }
    snprintf(buf, len, "%s/%s-%s.txt", PLT_KNOWN_DIR, plt__impl, plt__version);
    if (access(buf, R_OK) == 0)
        return 0;
    snprintf(buf, len, "%s/%s.txt", PLT_KNOWN_DIR, plt__impl);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

/* 1 and the reason if the known file expects this scenario to fail. */
static int known_failure(char *reason, size_t len) {
    char path[1024], line[1024];
    FILE *f;
    int found = 0;
    if (known_path(path, sizeof(path)) != 0)
        return 0;
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        char sc[64], be[32], fs[64], verdict[32];
        int off = 0;
        if (line[strspn(line, " \t")] == '#')
            continue; /* comment line ('#' inside a reason is text) */
        if (sscanf(line, "%63s %31s %63s %31s %n", sc, be, fs, verdict, &off) <
            4)
            continue;
        if (strcmp(sc, scenario) != 0 || fnmatch(be, plt_backend(), 0) != 0 ||
            fnmatch(fs, plt_fs(), 0) != 0 || strcmp(verdict, "fail") != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(reason, len, "%s", off > 0 ? line + off : "");
        found = 1;
    }
    fclose(f);
    return found;
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void write_result(const char *verdict, const char *reason) {
    const char *path = getenv("PL_CONFORMANCE_RESULTS");
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    int i, fd;
    if (path == NULL || path[0] == '\0')
        return;
    f = open_memstream(&buf, &len);
    if (f == NULL)
        return;
    fputs("{\"scenario\":", f);
    json_str(f, scenario);
    fputs(",\"implementation\":", f);
    json_str(f, plt__impl);
    fputs(",\"version\":", f);
    json_str(f, plt__version);
    fputs(",\"backend\":", f);
    json_str(f, plt_backend());
    fputs(",\"filesystem\":", f);
    json_str(f, plt_fs());
    fputs(",\"verdict\":", f);
    json_str(f, verdict);
    fputs(",\"reason\":", f);
    json_str(f, reason);
    fputs(",\"measured\":{", f);
    for (i = 0; i < nmeasures; i++) {
        fprintf(f, "%s", i > 0 ? "," : "");
        json_str(f, mkeys[i]);
        fprintf(f, ":%.3f", mvals[i]);
    }
    fputs("},\"observed\":{", f);
    for (i = 0; i < nobserved; i++) {
        fprintf(f, "%s", i > 0 ? "," : "");
        json_str(f, okeys[i]);
        fputc(':', f);
        json_str(f, ovals[i]);
    }
    fputs("},\"violations\":[", f);
    for (i = 0; i < nfailures && i < MAX_FAILURES; i++) {
        fprintf(f, "%s", i > 0 ? "," : "");
        json_str(f, failures[i]);
    }
    fputs("]}\n", f);
    fclose(f);
    /* One write with O_APPEND: lines of parallel tests never interleave. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, buf, len);
        (void)w;
        close(fd);
    }
    free(buf);
}

void plt_not_applicable(const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[conformance] %s/%s/%s/%s: not applicable: %s\n", scenario,
            plt_backend(), plt_fs(), plt__impl, reason);
    if (!finished) {
        finished = 1;
        write_result("not-applicable", reason);
    }
    cr_skip_test("%s: not applicable: %s", scenario, reason);
    abort(); /* cr_skip_test does not return */
}

void plt_finish(void) {
    char reason[512] = "";
    char all[2048] = "";
    int i;
    if (finished)
        return;
    finished = 1;
    for (i = 0; i < nfailures && i < MAX_FAILURES; i++) {
        size_t used = strlen(all);
        /* Joined with "; ", cut at the buffer's end. */
        snprintf(all + used, sizeof(all) - used, "%s%.*s", i > 0 ? "; " : "",
                 (int)(sizeof(all) - used), failures[i]);
    }
    if (nfailures == 0 && forced_verdict[0] != '\0') {
        fprintf(stderr, "[conformance] %s/%s/%s/%s: %s: %s\n", scenario,
                plt_backend(), plt_fs(), plt__impl, forced_verdict,
                forced_reason);
        write_result(forced_verdict, forced_reason);
        return;
    }
    if (known_failure(reason, sizeof(reason))) {
        if (nfailures > 0) {
            fprintf(stderr,
                    "[conformance] %s/%s/%s/%s: expected-fail (%s): %s\n",
                    scenario, plt_backend(), plt_fs(), plt__impl, reason, all);
            write_result("expected-fail", reason);
            return;
        }
        write_result("unexpected-pass", reason);
        cr_assert_fail(
            "%s/%s/%s/%s: passes, but the known-results file expects a "
            "failure (%s): update it",
            scenario, plt_backend(), plt_fs(), plt__impl, reason);
        return;
    }
    if (nfailures > 0) {
        write_result("fail", all);
        cr_assert_fail("%s/%s/%s/%s: %d violation(s): %s", scenario,
                       plt_backend(), plt_fs(), plt__impl, nfailures, all);
        return;
    }
    write_result("pass", "");
}

/* ---- oracle -------------------------------------------------------------- */

int plt_parse_intervals(const char *s, plt_interval_t *iv, int max, int who) {
    int n = 0;
    while (s != NULL && *s != '\0') {
        char *end;
        long long a = strtoll(s, &end, 10);
        long long b;
        if (*end != ':')
            return -1;
        b = strtoll(end + 1, &end, 10);
        if (n >= max)
            return -1;
        iv[n].a = a;
        iv[n].b = b;
        iv[n].who = who;
        n++;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return -1;
        s = end;
    }
    return n;
}

typedef struct event {
    int64_t t;
    int delta;
} event_t;

static int event_cmp(const void *x, const void *y) {
    const event_t *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->delta - b->delta; /* releases before acquisitions */
}

int plt_max_concurrency(const plt_interval_t *iv, int n) {
    event_t *ev = malloc(sizeof(*ev) * (size_t)n * 2 + 1);
    int i, cur = 0, best = 0;
    cr_assert(ev != NULL);
    for (i = 0; i < n; i++) {
        ev[2 * i].t = iv[i].a;
        ev[2 * i].delta = 1;
        ev[2 * i + 1].t = iv[i].b;
        ev[2 * i + 1].delta = -1;
    }
    qsort(ev, (size_t)n * 2, sizeof(*ev), event_cmp);
    for (i = 0; i < 2 * n; i++) {
        cur += ev[i].delta;
        if (cur > best)
            best = cur;
    }
    free(ev);
    return best;
}

static int iv_cmp(const void *x, const void *y) {
    const plt_interval_t *a = x, *b = y;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return 0;
}

int plt_find_overlap(const plt_interval_t *iv, int n, plt_interval_t *x,
                     plt_interval_t *y) {
    plt_interval_t *s = malloc(sizeof(*s) * (size_t)n + 1);
    int i, far = 0;
    cr_assert(s != NULL);
    memcpy(s, iv, sizeof(*s) * (size_t)n);
    qsort(s, (size_t)n, sizeof(*s), iv_cmp);
    for (i = 1; i < n; i++) {
        if (s[i].a < s[far].b) {
            *x = s[far];
            *y = s[i];
            free(s);
            return 1;
        }
        if (s[i].b > s[far].b)
            far = i;
    }
    free(s);
    return 0;
}
