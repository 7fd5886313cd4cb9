/*
 * common.c -- helpers shared by the file-lock scenarios (see common.h).
 */
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

plt_proc_t *sc_begin(const char *scenario, const char *kind,
                     const char *features) {
    plt_proc_t *a;
    char list[256];
    char *save = NULL;
    char *f;

    plt_begin(scenario);
    a = plt_start("a");
    if (!plt_has(a, "backends", plt_backend()))
        plt_not_applicable("%s %s has no %s backend (backends=%s)", a->impl,
                           a->version, plt_backend(), a->backends);
    if (kind != NULL && !plt_has(a, "kinds", kind))
        plt_not_applicable("%s %s has no '%s' lock kind (kinds=%s)", a->impl,
                           a->version, kind, a->kinds);
    if (features != NULL) {
        snprintf(list, sizeof(list), "%s", features);
        for (f = strtok_r(list, ",", &save); f != NULL;
             f = strtok_r(NULL, ",", &save))
            if (!plt_has(a, "features", f))
                plt_not_applicable("%s %s lacks the '%s' feature", a->impl,
                                   a->version, f);
    }
    return a;
}

const char *sc_backend_for(const plt_proc_t *p) {
    if (!plt_has(p, "backends", plt_backend()) &&
        strcmp(plt_backend(), "ofd") == 0 && plt_has(p, "backends", "lockf"))
        return "lockf";
    return plt_backend();
}

void sc_need_peer_backend(const plt_proc_t *subject, const plt_proc_t *peer) {
    if (!plt_has(peer, "backends", sc_backend_for(peer)))
        plt_not_applicable(
            "the other side (%s %s, backends=%s) has no %s "
            "backend%s",
            peer->impl, peer->version, peer->backends, sc_backend_for(peer),
            subject->windows ? "; Windows and Linux contenders on one file "
                               "are semantics/mixed_backends"
                             : "");
}

void sc_open(plt_proc_t *p, const char *id, const char *kind, const char *path,
             const char *extra) {
    plt_reply_t r;
    plt_must(p, &r, PLT_REPLY, "opened",
             "open id=%s kind=%s path=%s backend=%s %s", id, kind, plt_q(path),
             sc_backend_for(p), extra != NULL ? extra : "");
    plt_reply_free(&r);
}

const char *sc_acquire(plt_proc_t *p, plt_reply_t *r, const char *id,
                       const char *extra) {
    plt_cmd(p, r, 60, "acquire id=%s %s", id, extra != NULL ? extra : "");
    return r->word[0] != '\0' ? r->word : "(no reply)";
}

int64_t sc_release(plt_proc_t *p, const char *id) {
    plt_reply_t r;
    int64_t t;
    plt_must(p, &r, PLT_REPLY, "released", "release id=%s", id);
    t = plt_get_i64(&r, "t");
    plt_reply_free(&r);
    return t;
}

double sc_elapsed(const plt_reply_t *r) {
    return (double)(plt_get_i64(r, "t") - plt_get_i64(r, "t0")) / 1e9;
}

long sc_read_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return (long)n;
}

int sc_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}
