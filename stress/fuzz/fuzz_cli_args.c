/*
 * fuzz_cli_args -- the portalock command line (cli_parse_args, lib/cli/
 * args.c) on any argument vector.  The input is split at NUL bytes into at
 * most 64 arguments after argv[0] "portalock".  The parser must never crash,
 * must return -1 (go on), 0 (--help/--version) or 64 (usage error), and
 * when it goes on the result must be one the rest of the CLI can run:
 *   - a command (cmd_argv, NULL-terminated inside argv or the -c shell
 *     vector) unless it is the FD form, whose operand is a descriptor
 *     number;
 *   - a FILE/name operand unless --fd;
 *   - -n and -w 0 both mean timeout 0; a timeout is never NaN;
 *   - a semaphore size within 1..1000 (the library's bound), a byte range
 *     only with an fcntl backend, --no-fork never with --close or a kind of
 *     lock that lives in portalock's process.
 * Nothing is run: the parser has no side effect but its messages, sent to
 * /dev/null here.
 */
#include "cli.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    cli_parse_err = fopen("/dev/null", "w");
    cli_parse_out = cli_parse_err;
    return 0;
}

/* Whether p is one of the pointers in v[0..n). */
static int in_vector(char *const *p, char *const *v, int n) {
    return p >= v && p <= v + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    char *argv[MAX_ARGS + 2];
    cli_args_t a;
    int argc = 1, rc, i;
    size_t start = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[0] = (char *)"portalock";
    for (size_t k = 0; k <= size && argc <= MAX_ARGS; k++) {
        if (buf[k] == '\0') {
            argv[argc++] = buf + start;
            start = k + 1;
        }
    }
    argv[argc] = NULL;

    rc = cli_parse_args(&a, argc, argv);
    if (rc != -1 && rc != 0 && rc != CLI_EX_USAGE)
        abort();
    if (rc == -1) {
        if (a.op != CLI_OP_EXCLUSIVE && a.op != CLI_OP_SHARED &&
            a.op != CLI_OP_UNLOCK)
            abort();
        if (a.timeout != a.timeout || (a.nonblock && a.timeout != 0))
            abort();
        if (a.semaphore > CLI_MAX_SLOTS)
            abort();
        if (a.use_fd ? a.fd < 0 : a.target == NULL || a.target[0] == '\0')
            abort();
        if (a.cmd_argv != NULL) {
            /* Inside argv (after the options) or the -c shell vector. */
            if (a.cmd_argv == a.shell_argv) {
                if (a.command == NULL || a.shell_argv[3] != NULL)
                    abort();
            } else if (!in_vector(a.cmd_argv, argv + 1, argc - 1) ||
                       a.cmd_argv[0] == NULL) {
                abort();
            }
            for (i = 0; a.cmd_argv[i] != NULL; i++)
                if (i > argc)
                    abort();
        } else {
            /* The FD form: a number, and no kind of lock that needs a
             * command. */
            if (a.use_fd || a.target == NULL ||
                strspn(a.target, "0123456789") != strlen(a.target) ||
                a.semaphore || a.pidfile || a.temporary || a.redis_url)
                abort();
        }
        if (a.range_set && a.backend == PL_BACKEND_FLOCK)
            abort();
        if (a.no_fork && (a.close_fd || a.semaphore || a.pidfile ||
                          a.temporary || a.redis_url))
            abort();
    }
    free(buf);
    return 0;
}
