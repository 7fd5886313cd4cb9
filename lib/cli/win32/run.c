/*
 * run.c (Windows) -- run the command while the parent holds the lock.
 *
 * CreateProcessW with one command line built from argv by the quoting rules
 * that CommandLineToArgvW (and the C runtime) use to split it again, so the
 * command receives exactly the arguments portalock was given.  The parent
 * waits for the command and returns its exit code unchanged; only then does
 * the caller release the lock.  While the command runs, Ctrl+C / Ctrl+Break
 * reach it (same console) but not portalock, which must outlive it.
 *
 * -c runs "%ComSpec% /d /s /c "<command>"": /s makes cmd.exe strip exactly
 * the outer quotes and take the rest verbatim (cmd.exe does not follow the
 * CommandLineToArgvW rules, so the command is not escaped).
 *
 * There is no FD form on Windows: a HANDLE is not a number a shell can pass
 * to a later portalock call (cli_fd_check is a usage error).
 */
#include "../cli.h"

#ifndef WIN32_LEAN_AND_MEAN
# define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static const char *shell_command; /* the -c string, when argv is ours */
static volatile LONG kill_requested;
static HANDLE child_process;

void cli_fds_snapshot(void) {
    /* Nothing to record: the library opens every handle non-inheritable,
     * and only inheritable handles reach the command. */
}

void cli_shell_argv(char *argv[4], const char *command) {
    const char *comspec = getenv("ComSpec");
    argv[0] =
        (char *)(comspec != NULL && comspec[0] != '\0' ? comspec : "cmd.exe");
    argv[1] = (char *)"/c";
    argv[2] = (char *)command;
    argv[3] = NULL;
    shell_command = command;
}

int cli_fd_check(int fd, const char *name) {
    (void)fd;
    (void)name;
    return cli_usage_error("the FD form is not available on Windows (a "
                           "handle cannot be passed to a later portalock "
                           "call); lock a FILE and give the command");
}

void cli_request_kill(int sig) {
    InterlockedExchange(&kill_requested, sig);
    if (child_process != NULL)
        TerminateProcess(child_process, 128u + (unsigned)sig);
}

/* ---- command line -------------------------------------------------------- */

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
 * One argument quoted for CommandLineToArgvW: bare if it has no space, tab,
 * newline or quote (and is not empty); else in quotes, where a run of
 * backslashes is doubled before a quote (escaped as \") and before the
 * closing quote, and left alone elsewhere.
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

static wchar_t *widen(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
    if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

/* The command line for argv; NULL if out of memory or not UTF-8. */
static wchar_t *command_line(char *const *argv) {
    wbuf_t b = {NULL, 0, 0, 0};
    if (shell_command != NULL && argv[1] != NULL && argv[2] == shell_command) {
        wchar_t *sh = widen(argv[0]), *cmd = widen(shell_command);
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
        for (size_t i = 0; argv[i] != NULL; i++) {
            wchar_t *w = widen(argv[i]);
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

/* portalock ignores Ctrl+C / Ctrl+Break while the command runs (the
 * command, in the same console, gets them and decides). */
static BOOL WINAPI ignore_ctrl(DWORD type) {
    (void)type;
    return TRUE;
}

static void print_error(const char *what, DWORD e) {
    char msg[256];
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                                 FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, e, 0, msg, sizeof(msg), NULL);
    while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n'))
        msg[--n] = '\0';
    fprintf(stderr, "portalock: %s: %s\n", what, n > 0 ? msg : "unknown error");
}

int cli_run(char *const *argv, int keep_fd) {
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    HANDLE keep = keep_fd >= 0 ? (HANDLE)(intptr_t)keep_fd : NULL;
    wchar_t *line = command_line(argv);
    DWORD code = CLI_EX_FAILURE, e;
    BOOL ok;

    if (line == NULL) {
        fprintf(stderr, "portalock: %s: cannot build the command line\n",
                argv[0]);
        return CLI_EX_FAILURE;
    }
    /* The lock handle reaches the command only when asked (flock(1)'s
     * default, not with -o): it then shares the lock. */
    if (keep != NULL)
        SetHandleInformation(keep, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    fflush(stdout);
    fflush(stderr);
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    SetConsoleCtrlHandler(ignore_ctrl, TRUE);
    ok = CreateProcessW(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    e = GetLastError();
    if (keep != NULL)
        SetHandleInformation(keep, HANDLE_FLAG_INHERIT, 0);
    free(line);
    if (!ok) {
        SetConsoleCtrlHandler(ignore_ctrl, FALSE);
        print_error(argv[0], e);
        return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND
                   ? CLI_EX_NOTFOUND
                   : CLI_EX_NOEXEC;
    }
    CloseHandle(pi.hThread);
    child_process = pi.hProcess;
    if (kill_requested != 0) /* requested before the command existed */
        TerminateProcess(pi.hProcess, 128u + (unsigned)kill_requested);
    if (WaitForSingleObject(pi.hProcess, INFINITE) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code)) {
        print_error("waiting for the command", GetLastError());
        code = CLI_EX_FAILURE;
    }
    child_process = NULL;
    CloseHandle(pi.hProcess);
    SetConsoleCtrlHandler(ignore_ctrl, FALSE);
    return (int)code;
}
