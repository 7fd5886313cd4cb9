/*
 * pl_spawn -- wall time of running commands to completion (posix_spawn +
 * waitpid): the cost a shell script pays per `flock -n f true` or
 * `portalock -n f true`.
 *
 *   pl_spawn [--n N] [--budget S] [--json FILE] -- CMD1 ARGS... [-- CMD2 ...]
 *
 * With several commands, each round runs every command once, in turn, so
 * that load drift hits all of them alike.  Every run must exit 0 (a non-zero
 * exit stops that command's measurement and is reported).  Prints one JSON
 * object: {"tool": "pl_spawn", "results": [{"argv": [...], "ok": ...,
 * "error": ..., "stats": {...}}, ...]}.
 */
#include "benchkit.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAXCMD 8

typedef struct cmd {
    char **argv;
    bk_samples_t s;
    char err[300];
} cmd_t;

static void run_one(cmd_t *c) {
    pid_t pid;
    int status, rc;
    int64_t t0;
    if (c->err[0])
        return;
    t0 = bk_now_ns();
    rc = posix_spawnp(&pid, c->argv[0], NULL, NULL, c->argv, environ);
    if (rc != 0) {
        snprintf(c->err, sizeof c->err, "spawn %.200s: %s", c->argv[0],
                 strerror(rc));
        return;
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(c->err, sizeof c->err, "%.200s exited with status %d",
                 c->argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return;
    }
    bk_samples_add(&c->s, bk_now_ns() - t0);
}

int main(int argc, char **argv) {
    long n = 500, i;
    double budget = 3;
    const char *json = NULL;
    cmd_t cmds[MAXCMD];
    int ncmd = 0, a, k, any_err = 0;
    int64_t start;
    FILE *out = stdout;

    memset(cmds, 0, sizeof cmds);
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--") == 0)
            break;
        if (a + 1 >= argc)
            goto usage;
        if (strcmp(argv[a], "--n") == 0)
            n = atol(argv[++a]);
        else if (strcmp(argv[a], "--budget") == 0)
            budget = atof(argv[++a]);
        else if (strcmp(argv[a], "--json") == 0)
            json = argv[++a];
        else
            goto usage;
    }
    /* split the rest at "--" into commands (argv is NULL-terminated, and each
     * "--" separator becomes the terminator of the command before it) */
    while (a < argc && strcmp(argv[a], "--") == 0 && ncmd < MAXCMD) {
        argv[a] = NULL;
        a++;
        if (a >= argc || strcmp(argv[a], "--") == 0)
            goto usage;
        cmds[ncmd].argv = argv + a;
        bk_samples_init(&cmds[ncmd].s);
        ncmd++;
        while (a < argc && strcmp(argv[a], "--") != 0)
            a++;
    }
    if (ncmd == 0 || a < argc || n <= 0)
        goto usage;

    start = bk_now_ns();
    for (i = 0; i < n; i++) {
        if (i > 0 && budget > 0 && (double)(bk_now_ns() - start) / 1e9 > budget)
            break;
        for (k = 0; k < ncmd; k++)
            run_one(&cmds[(i + k) % ncmd]); /* rotate the order too */
    }
    if (json != NULL && (out = fopen(json, "w")) == NULL) {
        perror(json);
        return 2;
    }
    fprintf(out, "{\"tool\": \"pl_spawn\", \"results\": [");
    for (k = 0; k < ncmd; k++) {
        bk_stats_t st = bk_stats(&cmds[k].s);
        char **p;
        fprintf(out, "%s{\"argv\": [", k ? ", " : "");
        for (p = cmds[k].argv; *p != NULL; p++) {
            if (p != cmds[k].argv)
                fputs(", ", out);
            bk_json_str(out, *p);
        }
        fprintf(out, "], \"ok\": %s, \"error\": ",
                cmds[k].err[0] ? "false" : "true");
        bk_json_str(out, cmds[k].err);
        fprintf(out, ", \"stats\": ");
        bk_stats_json(out, &st);
        fprintf(out, "}");
        if (cmds[k].err[0])
            any_err = 1;
        bk_samples_free(&cmds[k].s);
    }
    fprintf(out, "], \"ok\": %s}\n", any_err ? "false" : "true");
    if (out != stdout)
        fclose(out);
    return any_err ? 3 : 0;
usage:
    fprintf(stderr, "usage: pl_spawn [--n N] [--budget S] [--json FILE] -- "
                    "CMD ARGS... [-- CMD ARGS...]\n");
    return 2;
}
