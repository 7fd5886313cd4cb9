/*
 * pl_core_check -- issue 2's check of the core's two promises, in one run:
 *
 *  1. The uncontended Lock cycle (pl_lock_acquire + pl_lock_release: open,
 *     lock, unlock, close inside the library) costs at most 1.15x the bare
 *     open + flock + unlock + close.
 *  2. A waiter with a timeout (pl_lock_acquire, timeout 30 s) returns after a
 *     holder PROCESS releases at most 2x later (p50) than a raw waiter
 *     blocked in flock(LOCK_EX).
 *
 *  3. (issue 12) The opt-in wait (pl_set_wait_signal) hands off within
 *     1.2x of the raw waiter (p50), and the CLI's timed wait
 *     (portalock -w 30 FD) within 1.1x of flock(1)'s (flock -w 30 FD).
 *
 *   pl_core_check [--dir DIR] [--cycles N] [--handoffs N] [--backend B]
 *                 [--cli PATH] [--cli-handoffs N] [--json FILE]
 *
 * Ours and raw are measured in alternating blocks so that drift in the
 * machine's load hits all alike: the handoff table (raw waiter, default
 * timed acquire, opt-in signal, and with --cli the two commands) comes from
 * one run.  A command's handoff ends when we see it exit (waitpid), for
 * flock(1) and portalock alike; each locks a fresh open file description
 * of the file passed as descriptor 9.  The verdicts are printed
 * (PASS/MISS), not asserted: the exit status is 0 unless a measurement
 * failed.
 */
#include "benchkit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCKS 10

static int cycle_block(int ours, pl_lock_t *lock, const char *path,
                       pl_backend_t b, long n, bk_samples_t *s, char *err,
                       size_t errlen) {
    long i;
    for (i = 0; i < n; i++) {
        int64_t t0 = bk_now_ns();
        if (ours) {
            int rc = pl_lock_acquire(lock);
            if (rc == PL_OK)
                rc = pl_lock_release(lock);
            if (rc != PL_OK) {
                snprintf(err, errlen, "pl_lock: %s", pl_lock_errmsg(lock));
                return -1;
            }
        } else {
            int rc, fd = bk_raw_open(path);
            if (fd < 0) {
                snprintf(err, errlen, "open(%s): %s", path, strerror(errno));
                return -1;
            }
            rc = bk_raw_lock(fd, b, 0);
            if (rc == 0)
                rc = bk_raw_unlock(fd, b);
            close(fd);
            if (rc != 0) {
                snprintf(err, errlen, "lock: %s", strerror(rc));
                return -1;
            }
        }
        bk_samples_add(s, bk_now_ns() - t0);
    }
    return 0;
}

/*
 * One command handoff round: we hold the file (hfd, flock), start
 * `prog -w 30 9` with descriptor 9 a new description of the file, wait
 * until it sleeps, release, and time until it exits.  0 or -1 (err).
 */
static int cli_round(const char *prog, const char *path, int hfd,
                     bk_samples_t *s, char *err, size_t errlen) {
    int wfd = open(path, O_RDWR | O_CLOEXEC), status;
    int64_t t0;
    pid_t pid;

    if (wfd < 0)
        return snprintf(err, errlen, "open(%s): %s", path, strerror(errno)), -1;
    pid = fork();
    if (pid < 0) {
        close(wfd);
        return snprintf(err, errlen, "fork: %s", strerror(errno)), -1;
    }
    if (pid == 0) {
        if (dup2(wfd, 9) < 0)
            _exit(126);
        execlp(prog, prog, "-w", "30", "9", (char *)NULL);
        _exit(127);
    }
    if (bk_wait_blocked(pid, 50000, 10000000000LL) != 0) {
        snprintf(err, errlen, "%s: never seen waiting", prog);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(wfd);
        return -1;
    }
    t0 = bk_now_ns();
    flock(hfd, LOCK_UN);
    waitpid(pid, &status, 0);
    bk_samples_add(s, bk_now_ns() - t0);
    close(wfd); /* the child's lock lives on this description: released */
    flock(hfd, LOCK_EX);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return snprintf(err, errlen, "%s -w 30 9: exit status 0x%x", prog,
                        status),
               -1;
    return 0;
}

static const char *verdict(double ratio, double goal) {
    return ratio <= goal ? "PASS" : "MISS";
}

static void print_row(const char *name, const bk_stats_t *st) {
    char line[200];
    bk_stats_line(line, sizeof line, st);
    printf("  %-44s %s\n", name, line);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *json = NULL, *bname = "flock", *cli = NULL;
    long cycles = 20000, handoffs = 2000, cli_handoffs = 300;
    pl_backend_t b;
    char *tmp, path[4096], err[400] = "", holder[64], w_ours[64], w_raw[64];
    pl_lock_t *lock = NULL;
    pl_lock_options_t o;
    bk_samples_t c_ours, c_raw, h_ours, h_raw, h_sig, h_flock, h_cli;
    bk_stats_t sc_ours, sc_raw, sh_ours, sh_raw, sh_sig, sh_flock, sh_cli;
    double r_cycle, r_cycle_mean, r_hand, r_sig, r_cli = 0;
    char w_sig[64];
    size_t early = 0, not_blocked = 0;
    int i, rc = 0;

    for (i = 1; i < argc; i += 2) { /* --option value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            goto usage;
        if (strcmp(argv[i], "--dir") == 0)
            dir = v;
        else if (strcmp(argv[i], "--cycles") == 0)
            cycles = atol(v);
        else if (strcmp(argv[i], "--handoffs") == 0)
            handoffs = atol(v);
        else if (strcmp(argv[i], "--backend") == 0)
            bname = v;
        else if (strcmp(argv[i], "--json") == 0)
            json = v;
        else if (strcmp(argv[i], "--cli") == 0)
            cli = v;
        else if (strcmp(argv[i], "--cli-handoffs") == 0)
            cli_handoffs = atol(v);
        else
            goto usage;
    }
    if (cycles < BLOCKS || handoffs < BLOCKS ||
        pl_backend_from_name(bname, &b) != PL_OK)
        goto usage;
    if (dir == NULL)
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    tmp = bk_mkdtemp(dir);
    if (tmp == NULL) {
        fprintf(stderr, "pl_core_check: mkdtemp in %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/core_check.lock", tmp);
    bk_samples_init(&c_ours);
    bk_samples_init(&c_raw);
    bk_samples_init(&h_ours);
    bk_samples_init(&h_raw);
    bk_samples_init(&h_sig);
    bk_samples_init(&h_flock);
    bk_samples_init(&h_cli);

    printf("portalock core check: portalock %s, backend %s, dir %s\n",
           pl_version(), bname, dir);

    /* ---- 1. uncontended Lock cycle ---- */
    pl_lock_options_init(&o);
    o.backend = b;
    rc = pl_lock_open(&lock, path, &o);
    if (rc != PL_OK) {
        snprintf(err, sizeof err, "pl_lock_open: %s", pl_strerror(rc));
        goto fail;
    }
    bk_progress("core check: %ld uncontended cycles each", cycles);
    /* warm-up of both paths */
    if (cycle_block(1, lock, path, b, 200, &c_ours, err, sizeof err) != 0 ||
        cycle_block(0, lock, path, b, 200, &c_raw, err, sizeof err) != 0)
        goto fail;
    c_ours.n = c_raw.n = 0;
    for (i = 0; i < BLOCKS; i++) {
        long per = cycles / BLOCKS;
        /* alternate which goes first */
        int first = i & 1;
        if (cycle_block(first, lock, path, b, per, first ? &c_ours : &c_raw,
                        err, sizeof err) != 0 ||
            cycle_block(!first, lock, path, b, per, first ? &c_raw : &c_ours,
                        err, sizeof err) != 0)
            goto fail;
    }
    sc_ours = bk_stats(&c_ours);
    sc_raw = bk_stats(&c_raw);
    r_cycle = sc_ours.p50 / sc_raw.p50;
    r_cycle_mean = sc_ours.mean / sc_raw.mean;
    printf("\nuncontended Lock cycle, one process (%ld cycles each)\n", cycles);
    print_row("ours: pl_lock_acquire + pl_lock_release", &sc_ours);
    print_row("raw:  open + flock + unlock + close", &sc_raw);
    printf("  ratio p50 %.2fx (mean %.2fx), goal <= 1.15x: %s\n", r_cycle,
           r_cycle_mean, verdict(r_cycle, 1.15));

    /* ---- 2. timed-acquire handoff ---- */
    snprintf(holder, sizeof holder, "raw:%s", bname);
    snprintf(w_ours, sizeof w_ours, "ours:%s", bname);
    snprintf(w_raw, sizeof w_raw, "raw:%s", bname);
    snprintf(w_sig, sizeof w_sig, "ourssig:%s", bname);
    for (i = 0; i < BLOCKS; i++) {
        int k;
        for (k = 0; k < 3; k++) {
            int which = (i + k) % 3; /* 0 raw, 1 ours, 2 ours + signal */
            static const char *const labels[] = {
                "core check handoff (raw)", "core check handoff (ours)",
                "core check handoff (ours, wait signal)"};
            bk_samples_t *dst = which == 0   ? &h_raw
                                : which == 1 ? &h_ours
                                             : &h_sig;
            bk_handoff_cfg_t cfg;
            bk_handoff_result_t r;
            size_t j;
            memset(&cfg, 0, sizeof cfg);
            cfg.holder = holder;
            cfg.waiter = which == 0 ? w_raw : which == 1 ? w_ours : w_sig;
            cfg.target = path;
            cfg.rounds = (size_t)(handoffs / BLOCKS);
            cfg.settle_ns = 50000;
            cfg.wait_timeout = 30;
            cfg.label = labels[which];
            if (bk_handoff_run(&cfg, &r) != 0) {
                snprintf(err, sizeof err, "handoff: %s", r.error);
                bk_samples_free(&r.samples);
                goto fail;
            }
            for (j = 0; j < r.samples.n; j++)
                bk_samples_add(dst, r.samples.v[j]);
            early += r.early;
            not_blocked += r.not_blocked;
            bk_samples_free(&r.samples);
        }
        if (cli != NULL && b == PL_BACKEND_FLOCK) {
            /* the two commands, alternating, in the same blocks */
            long per = cli_handoffs / BLOCKS, n;
            int hfd = open(path, O_RDWR | O_CLOEXEC);
            if (hfd < 0 || flock(hfd, LOCK_EX) != 0) {
                snprintf(err, sizeof err, "holder: %s", strerror(errno));
                goto fail;
            }
            for (n = 0; n < per; n++) {
                int first = (int)((n + i) & 1);
                if (cli_round(first ? cli : "flock", path, hfd,
                              first ? &h_cli : &h_flock, err,
                              sizeof err) != 0 ||
                    cli_round(first ? "flock" : cli, path, hfd,
                              first ? &h_flock : &h_cli, err,
                              sizeof err) != 0) {
                    close(hfd);
                    goto fail;
                }
            }
            close(hfd);
        }
        bk_progress("core check: handoffs %ld/%ld",
                    (long)(i + 1) * handoffs / BLOCKS, handoffs);
    }
    sh_ours = bk_stats(&h_ours);
    sh_raw = bk_stats(&h_raw);
    sh_sig = bk_stats(&h_sig);
    r_hand = sh_ours.p50 / sh_raw.p50;
    r_sig = sh_sig.p50 / sh_raw.p50;
    printf("\ntimed-acquire handoff: holder process releases -> waiter "
           "returns (%ld handoffs each)\n",
           handoffs);
    print_row("raw:  flock(LOCK_EX) blocked", &sh_raw);
    print_row("ours: pl_lock_acquire, timeout 30 s", &sh_ours);
    print_row("ours + pl_set_wait_signal, timeout 30 s", &sh_sig);
    printf("  default: ratio p50 %.2fx (p99 %.2fx), goal <= 2x: %s\n", r_hand,
           sh_ours.p99 / sh_raw.p99, verdict(r_hand, 2.0));
    printf("  opt-in:  ratio p50 %.2fx (p99 %.2fx), goal <= 1.2x: %s\n", r_sig,
           sh_sig.p99 / sh_raw.p99, verdict(r_sig, 1.2));
    if (h_cli.n > 0) {
        sh_flock = bk_stats(&h_flock);
        sh_cli = bk_stats(&h_cli);
        r_cli = sh_cli.p50 / sh_flock.p50;
        printf("\ncommand handoff: holder releases -> `CMD -w 30 9` exits "
               "(%zu each)\n",
               h_cli.n);
        print_row("flock -w 30 9 (util-linux)", &sh_flock);
        print_row("portalock -w 30 9", &sh_cli);
        printf("  ratio p50 %.2fx (p99 %.2fx), goal <= 1.1x: %s\n", r_cli,
               sh_cli.p99 / sh_flock.p99, verdict(r_cli, 1.1));
    }
    if (early != 0)
        printf("  ERROR: %zu waiters returned before the holder released\n",
               early);
    if (not_blocked != 0)
        printf("  note: %zu rounds where the waiter was not seen asleep "
               "before the release\n",
               not_blocked);

    if (json != NULL) {
        FILE *f = fopen(json, "w");
        if (f == NULL) {
            snprintf(err, sizeof err, "%s: %s", json, strerror(errno));
            goto fail;
        }
        fprintf(f, "{\"tool\": \"pl_core_check\", \"backend\": ");
        bk_json_str(f, bname);
        fprintf(f, ", \"cycle\": {\"ours\": ");
        bk_stats_json(f, &sc_ours);
        fprintf(f, ", \"raw\": ");
        bk_stats_json(f, &sc_raw);
        fprintf(f,
                ", \"ratio_p50\": %.4f, \"ratio_mean\": %.4f, \"goal\": 1.15, "
                "\"pass\": %s}, \"handoff\": {\"ours\": ",
                r_cycle, r_cycle_mean, r_cycle <= 1.15 ? "true" : "false");
        bk_stats_json(f, &sh_ours);
        fprintf(f, ", \"raw\": ");
        bk_stats_json(f, &sh_raw);
        fprintf(f,
                ", \"ratio_p50\": %.4f, \"goal\": 2.0, \"pass\": %s, "
                "\"early\": %zu, \"not_blocked\": %zu}, \"signal\": ",
                r_hand, r_hand <= 2.0 ? "true" : "false", early, not_blocked);
        bk_stats_json(f, &sh_sig);
        fprintf(f, ", \"signal_ratio_p50\": %.4f", r_sig);
        if (h_cli.n > 0) {
            fprintf(f, ", \"cli\": {\"flock\": ");
            bk_stats_json(f, &sh_flock);
            fprintf(f, ", \"portalock\": ");
            bk_stats_json(f, &sh_cli);
            fprintf(f, ", \"ratio_p50\": %.4f}", r_cli);
        }
        fprintf(f, "}\n");
        fclose(f);
    }
    pl_lock_close(lock);
    unlink(path);
    bk_rmdir_flat(tmp);
    free(tmp);
    bk_samples_free(&c_ours);
    bk_samples_free(&c_raw);
    bk_samples_free(&h_ours);
    bk_samples_free(&h_raw);
    bk_samples_free(&h_sig);
    bk_samples_free(&h_flock);
    bk_samples_free(&h_cli);
    return early != 0 ? 1 : 0;

fail:
    fprintf(stderr, "pl_core_check: %s\n", err);
    pl_lock_close(lock);
    bk_rmdir_flat(tmp);
    free(tmp);
    return 1;
usage:
    fprintf(stderr, "usage: pl_core_check [--dir DIR] [--cycles N] "
                    "[--handoffs N] [--backend B] [--cli PATH] "
                    "[--cli-handoffs N] [--json FILE]\n");
    return 2;
}
