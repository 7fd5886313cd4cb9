/*
 * run.c (Windows) -- run the command while the lock is held.
 *
 * CreateProcessW with one command line built from argv by the quoting rules
 * CommandLineToArgvW (and the C runtimes) split it by, so the command
 * receives exactly the arguments portalock was given: spaces, tabs, quotes,
 * backslashes before a quote or at the end, empty arguments.  portalock
 * waits for the command and returns its exit code unchanged (all 32 bits);
 * only then does the caller release the lock.  -c runs
 * "%ComSpec%" /d /s /c "COMMAND" (see shell.c).  Windows has no exec, so -F
 * runs the command in the same way (the lock handle inherited, as without
 * -F).  A command that cannot be started gives flock(1)'s status: 69 (71
 * when out of memory).
 *
 * Console control events.  The command runs in portalock's console and
 * process group, so Ctrl+C and Ctrl+Break reach it directly from the
 * console, once; nothing is forwarded.  While it runs portalock ignores
 * them (a handler that returns TRUE), so it outlives the command and
 * releases the lock when the command ends, with the command's status
 * (e.g. 0xC000013A, STATUS_CONTROL_C_EXIT, for a program that let Ctrl+C
 * end it).  Before the command starts (waiting for the lock) Ctrl+C ends
 * portalock as usual.  Closing the console (CTRL_CLOSE_EVENT) ends both;
 * the system then closes the lock handles, which releases the lock.
 */
#include "../cli.h"
#include "cli_win32.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile LONG cli_kill_sig; /* signal requested by cli_request_kill */
static HANDLE volatile cli_child;  /* the running command, or NULL */

void cli_request_kill(int sig) {
    HANDLE child;
    InterlockedExchange(&cli_kill_sig, sig);
    child = cli_child;
    if (child != NULL)
        TerminateProcess(child, 128u + (unsigned)sig);
}

/* ---- the command line ----------------------------------------------------
 */

typedef struct wbuf {
    wchar_t *p;
    size_t n, cap;
    int failed;
} wbuf_t;

static void put(wbuf_t *b, wchar_t c, size_t times) {
    if (b->failed)
        return;
    if (b->n + times + 1 > b->cap) {
        size_t cap = (b->cap + times + 1) * 2;
        wchar_t *q = realloc(b->p, cap * sizeof(wchar_t));
        if (q == NULL) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    while (times-- > 0)
        b->p[b->n++] = c;
    b->p[b->n] = L'\0';
}

static void put_str(wbuf_t *b, const wchar_t *s) {
    for (; *s != L'\0'; s++)
        put(b, *s, 1);
}

/*
 * One argument quoted for CommandLineToArgvW: bare if it is not empty and
 * has no space, tab, newline, vertical tab or quote; else in quotes, where
 * a run of backslashes is doubled before a quote (which is then escaped as
 * \") and before the closing quote, and left alone elsewhere.
 */
static void put_arg(wbuf_t *b, const wchar_t *a) {
    if (a[0] != L'\0' && wcspbrk(a, L" \t\n\v\"") == NULL) {
        put_str(b, a);
        return;
    }
    put(b, L'"', 1);
    for (;;) {
        size_t slashes = 0;
        while (*a == L'\\') {
            a++;
            slashes++;
        }
        if (*a == L'\0') {
            put(b, L'\\', slashes * 2);
            break;
        }
        if (*a == L'"') {
            put(b, L'\\', slashes * 2 + 1);
            put(b, L'"', 1);
        } else {
            put(b, L'\\', slashes);
            put(b, *a, 1);
        }
        a++;
    }
    put(b, L'"', 1);
}

/* The command line for argv; NULL if out of memory or not UTF-8. */
static wchar_t *command_line(char *const *argv) {
    wbuf_t b = {NULL, 0, 0, 0};
    size_t i;

    if ((const char *)argv[1] == cli_win_shell_flag && argv[2] != NULL) {
        wchar_t *sh = cli_win_widen(argv[0]), *cmd = cli_win_widen(argv[2]);
        if (sh == NULL || cmd == NULL) {
            free(sh);
            free(cmd);
            return NULL;
        }
        put_arg(&b, sh);
        put_str(&b, L" /d /s /c \"");
        put_str(&b, cmd);
        put(&b, L'"', 1);
        free(sh);
        free(cmd);
    } else {
        for (i = 0; argv[i] != NULL; i++) {
            wchar_t *w = cli_win_widen(argv[i]);
            if (w == NULL) {
                free(b.p);
                return NULL;
            }
            if (i > 0)
                put(&b, L' ', 1);
            put_arg(&b, w);
            free(w);
        }
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- running ------------------------------------------------------------- */

/* Ctrl+C / Ctrl+Break while the command runs: the command, in the same
 * console, got the event too; portalock stays to release the lock. */
static BOOL WINAPI cli_ignore_ctrl(DWORD type) {
    (void)type;
    return TRUE;
}

static void cli_print_error(const char *what, const char *name, DWORD e) {
    char msg[256];
    fprintf(stderr, "%s: %s%s: %s\n", cli_progname, what, name,
            cli_win_strerror(e, msg, sizeof(msg)));
}

int cli_run(char *const *argv, pl_fd_t keep_fd, pl_fd_t close_fd, int forward) {
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    HANDLE keep = keep_fd != PL_INVALID_FD ? (HANDLE)keep_fd : NULL;
    wchar_t *line;
    DWORD code = CLI_EX_FAILURE, e;
    BOOL ok;

    (void)close_fd; /* never inherited: the library's handles are not */
    (void)forward;  /* nothing to forward: see the opening comment */
    line = command_line(argv);
    if (line == NULL) {
        fprintf(stderr,
                "%s: failed to execute %s: cannot build its command line "
                "(out of memory or not UTF-8)\n",
                cli_progname, argv[0]);
        return CLI_EX_UNAVAILABLE;
    }
    /* The lock handle reaches the command only when asked (flock(1)'s
     * default, not with -o): it then shares the lock. */
    if (keep != NULL)
        SetHandleInformation(keep, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    fflush(stdout);
    fflush(stderr);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    memset(&pi, 0, sizeof(pi));
    SetConsoleCtrlHandler(cli_ignore_ctrl, TRUE);
    ok = CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    e = GetLastError();
    if (keep != NULL)
        SetHandleInformation(keep, HANDLE_FLAG_INHERIT, 0);
    free(line);
    if (!ok) {
        SetConsoleCtrlHandler(cli_ignore_ctrl, FALSE);
        cli_print_error("failed to execute ", argv[0], e);
        return e == ERROR_NOT_ENOUGH_MEMORY || e == ERROR_OUTOFMEMORY
                   ? CLI_EX_OSERR
                   : CLI_EX_UNAVAILABLE;
    }
    CloseHandle(pi.hThread);
    cli_child = pi.hProcess;
    if (cli_kill_sig != 0) /* requested before the command existed */
        TerminateProcess(pi.hProcess, 128u + (unsigned)cli_kill_sig);
    if (WaitForSingleObject(pi.hProcess, INFINITE) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code)) {
        cli_print_error("waiting for ", argv[0], GetLastError());
        code = CLI_EX_FAILURE;
    }
    cli_child = NULL;
    CloseHandle(pi.hProcess);
    SetConsoleCtrlHandler(cli_ignore_ctrl, FALSE);
    return (int)code;
}

int cli_exec(char *const *argv, pl_fd_t keep_fd) {
    return cli_run(argv, keep_fd, PL_INVALID_FD, 0);
}
