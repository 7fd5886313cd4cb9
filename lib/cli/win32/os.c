/*
 * os.c (Windows) -- the portalock command's small platform services:
 * UTF-8 arguments, program name, clock, sleep, stderr, error texts.
 *
 * main() receives its arguments in the ANSI code page, which cannot hold
 * every file name or argument; cli_os_init replaces them with the UTF-8
 * form of the wide command line split by CommandLineToArgvW, the same rules
 * run.c quotes by, and what the library expects for paths (UTF-8).
 */
#include "../cli.h"
#include "cli_win32.h"

#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cli_path_seps[] = "/\\";

const char *cli_win_strerror(DWORD e, char *buf, size_t len) {
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                                 FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, e, 0, buf, (DWORD)len, NULL);
    while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, len, "error %lu", (unsigned long)e);
    return buf;
}

wchar_t *cli_win_widen(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
    if (w != NULL &&
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

static char *narrow(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s = n > 0 ? malloc((size_t)n) : NULL;
    if (s != NULL &&
        WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        s = NULL;
    }
    return s;
}

void cli_os_init(int *argc, char ***argv) {
    wchar_t **wargv;
    char **u;
    int n, i;

    wargv = CommandLineToArgvW(GetCommandLineW(), &n);
    if (wargv == NULL || n < 1)
        return; /* keep the CRT's ANSI arguments */
    u = calloc((size_t)n + 1, sizeof(char *));
    for (i = 0; u != NULL && i < n; i++) {
        u[i] = narrow(wargv[i]);
        if (u[i] == NULL)
            u = NULL; /* leaks the others: we keep the CRT's and go on */
    }
    LocalFree(wargv);
    if (u == NULL)
        return;
    /* Kept for the life of the process (argv's lifetime). */
    *argc = n;
    *argv = u;
}

void cli_os_timed_waits(double timeout) {
    (void)timeout; /* no signals: the library's waits need none here */
}

/* The base name without ".exe", in a buffer of its own. */
const char *cli_os_progname(const char *argv0) {
    static char name[64];
    const char *base = cli_last_sep(argv0);
    size_t len;

    base = base != NULL ? base + 1 : argv0;
    len = strlen(base);
    if (len > 4 && _stricmp(base + len - 4, ".exe") == 0)
        len -= 4;
    if (len == 0 || len >= sizeof(name))
        return "portalock";
    memcpy(name, base, len);
    name[len] = '\0';
    return name;
}

double cli_now(void) {
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart / (double)freq.QuadPart;
}

void cli_sleep(double seconds) {
    double ms = seconds * 1000.0;
    Sleep(ms < 1 ? 1 : ms > 4e9 ? 4000000000u : (DWORD)ms);
}

void cli_write_stderr(const char *msg, size_t len) {
    DWORD n;
    HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
    if (h != NULL && h != INVALID_HANDLE_VALUE)
        WriteFile(h, msg, (DWORD)len, &n, NULL);
}
