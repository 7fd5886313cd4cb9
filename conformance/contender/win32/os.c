/*
 * win32/os.c -- the contender's operating-system layer on Windows (os.h).
 *
 * Timestamps: the suite runs on Linux and compares our timestamps with its
 * own CLOCK_MONOTONIC (release on death) and with native contenders'.
 * Windows has no clock a Linux process can read: QueryPerformanceCounter
 * is unrelated to it on Windows, and under Wine it follows
 * CLOCK_MONOTONIC_RAW, which drifts from CLOCK_MONOTONIC (about 188 ms
 * apart on the machine this was written on).  The system time is the one
 * clock both sides share: GetSystemTimePreciseAsFileTime is
 * CLOCK_REALTIME under Wine.  So we report nanoseconds since the Unix
 * epoch and say clock=realtime in hello; the suite converts them to its
 * CLOCK_MONOTONIC as the replies arrive (PROTOCOL.md §2).
 *
 * crash: Windows has no SIGKILL; TerminateProcess(self, 137) ends the
 * process as abruptly (no cleanup, handles closed by the system), and
 * hello says crash=terminate.  Under Wine the suite sees the wine process
 * exit with status 137.
 *
 * There is no fork: fork-child is refused and "fork" is not declared.
 *
 * write: the lock files are overlapped handles, on which the C runtime
 * cannot do stream I/O (pl_lock_file() is NULL on Windows), so we
 * WriteFile through pl_lock_fileno() with an OVERLAPPED at the end of the
 * file (as mode 'a' does; after 'w' truncated, the end is offset 0).  The
 * holder's own handle may write the range it locked; any other handle
 * could not (mandatory locks).
 */
#include "os.h"

#include "portalock.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

/* 100 ns intervals between 1601-01-01 and 1970-01-01. */
#define EPOCH_DIFF_100NS 116444736000000000LL

void plc_os_serve_init(void) {
    /* The protocol's lines end in "\n", not "\r\n". */
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
}

int64_t plc_os_now_ns(void) {
    FILETIME ft;
    ULARGE_INTEGER u;
    GetSystemTimePreciseAsFileTime(&ft);
    u.LowPart = ft.dwLowDateTime;
    u.HighPart = ft.dwHighDateTime;
    return ((int64_t)u.QuadPart - EPOCH_DIFF_100NS) * 100;
}

const char *plc_os_clock_name(void) {
    return "realtime";
}

void plc_os_sleep_s(double s) {
    if (s <= 0)
        return;
    Sleep((DWORD)(s * 1000.0 + 0.5));
}

long plc_os_pid(void) {
    return (long)GetCurrentProcessId();
}

const char *plc_os_platform(void) {
    return "windows";
}

void plc_os_crash(void) {
    fflush(stdout);
    TerminateProcess(GetCurrentProcess(), 137);
    ExitProcess(137); /* not reached */
}

const char *plc_os_crash_style(void) {
    return "terminate";
}

const char *plc_os_wait_style(void) {
    char dir[MAX_PATH + 1];
    pl_probe_t probe;
    DWORD n = GetTempPathA(sizeof(dir), dir);
    if (n == 0 || n >= sizeof(dir))
        snprintf(dir, sizeof(dir), ".");
    if (pl_probe(dir, &probe, NULL) != PL_OK)
        return NULL;
    return (probe.blocking_ok & (1u << PL_BACKEND_LOCKFILEEX)) ? NULL : "poll";
}

const char *plc_os_features(void) {
    return "";
}

int plc_os_fork_run(int (*child)(void *), void *arg, long *pid, int *code,
                    char *msg, size_t len) {
    (void)child;
    (void)arg;
    (void)pid;
    (void)code;
    snprintf(msg, len, "fork-child: Windows has no fork()");
    return PL_ENOTSUP;
}

/* UTF-8 -> UTF-16, malloc'd; NULL on failure. */
static wchar_t *widen(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w;
    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof(*w));
    if (w != NULL &&
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

static void win_msg(char *msg, size_t len, const char *what, const char *path,
                    DWORD e) {
    char text[256];
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                                 FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, e, 0, text, sizeof(text), NULL);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
                     text[n - 1] == ' ' || text[n - 1] == '.'))
        text[--n] = '\0';
    if (n == 0)
        snprintf(text, sizeof(text), "Windows error %lu", (unsigned long)e);
    snprintf(msg, len, "%s(%s): %s", what, path, text);
}

/* CreateFileW with every sharing mode (the lock file is shared with the
 * lock library's own handles). */
static HANDLE open_shared(const char *path, DWORD access, DWORD disposition,
                          char *msg, size_t len) {
    wchar_t *w = widen(path);
    HANDLE h;
    if (w == NULL) {
        snprintf(msg, len, "%s: not valid UTF-8 or out of memory", path);
        return INVALID_HANDLE_VALUE;
    }
    h = CreateFileW(w, access,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        win_msg(msg, len, "CreateFileW", path, GetLastError());
    free(w);
    return h;
}

int plc_os_open_close(const char *path, char *msg, size_t len) {
    HANDLE h = open_shared(path, GENERIC_READ, OPEN_EXISTING, msg, len);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    CloseHandle(h);
    return 0;
}

int plc_os_bump_counter(const char *path, char *msg, size_t len) {
    char buf[32];
    DWORD got = 0, put = 0;
    long long v = 0;
    int n;
    HANDLE h =
        open_shared(path, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS, msg, len);
    if (h == INVALID_HANDLE_VALUE)
        return -1;
    if (!ReadFile(h, buf, sizeof(buf) - 1, &got, NULL)) {
        win_msg(msg, len, "ReadFile", path, GetLastError());
        CloseHandle(h);
        return -1;
    }
    buf[got] = '\0';
    if (got > 0)
        v = strtoll(buf, NULL, 10);
    n = snprintf(buf, sizeof(buf), "%lld\n", v + 1);
    if (SetFilePointer(h, 0, NULL, FILE_BEGIN) == INVALID_SET_FILE_POINTER ||
        !SetEndOfFile(h) || !WriteFile(h, buf, (DWORD)n, &put, NULL) ||
        put != (DWORD)n) {
        win_msg(msg, len, "WriteFile", path, GetLastError());
        CloseHandle(h);
        return -1;
    }
    CloseHandle(h);
    return 0;
}

int plc_os_write_held(pl_lock_t *lock, const char *data, char *msg,
                      size_t len) {
    HANDLE h;
    OVERLAPPED ov;
    DWORD put = 0, n = (DWORD)strlen(data);
    BOOL ok;
    if (lock == NULL || !pl_lock_is_held(lock))
        return PL_ENOTHELD;
    h = (HANDLE)pl_lock_fileno(lock);
    memset(&ov, 0, sizeof(ov));
    ov.Offset = 0xFFFFFFFFu; /* both all ones: at the end of the file */
    ov.OffsetHigh = 0xFFFFFFFFu;
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL) {
        win_msg(msg, len, "CreateEvent", pl_lock_path(lock), GetLastError());
        return -1;
    }
    ok = WriteFile(h, data, n, NULL, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING)
        ok = TRUE;
    if (ok)
        ok = GetOverlappedResult(h, &ov, &put, TRUE);
    if (ok && put == n)
        ok = FlushFileBuffers(h);
    else if (ok)
        SetLastError(ERROR_WRITE_FAULT);
    if (!ok)
        win_msg(msg, len, "WriteFile", pl_lock_path(lock), GetLastError());
    CloseHandle(ov.hEvent);
    return ok ? 0 : -1;
}
