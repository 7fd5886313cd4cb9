/*
 * fs.c -- the Windows platform layer apart from locking: clocks, processes,
 * randomness, errors (GetLastError codes and their FormatMessage text),
 * UTF-8 paths as wide long paths, and the file operations the lock kinds
 * and open_atomic need.  Calls that can fail go through pl__sys (sys.h).
 *
 * Paths: the API takes UTF-8.  Every path is made absolute with
 * GetFullPathNameW (lexically, like os.path.abspath) and prefixed with
 * \\?\ so that MAX_PATH does not apply; "/" and "\" are both separators.
 *
 * Handles: every handle is opened non-inheritable (the equivalent of
 * O_CLOEXEC) and with FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
 * so that another process can open, lock, replace or delete a lock file
 * while it is open; only the byte-range lock excludes.
 */
#include "win32/win32.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* ---- errors -------------------------------------------------------------- */

int pl__code_from_os(int os_error) {
    switch ((DWORD)os_error) {
    case 0: return PL_OK;
    case ERROR_LOCK_VIOLATION: return PL_ELOCKED;
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_DIRECTORY: return PL_ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_PRIVILEGE_NOT_HELD: return PL_EACCES;
    case ERROR_FILENAME_EXCED_RANGE: return PL_ENAMETOOLONG;
    case ERROR_WRITE_PROTECT: return PL_EROFS;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS: return PL_EEXIST;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return PL_ENOMEM;
    case ERROR_NOT_SUPPORTED:
    case ERROR_INVALID_FUNCTION:
    case ERROR_CALL_NOT_IMPLEMENTED: return PL_ENOTSUP;
    case ERROR_TIMEOUT:
    case WAIT_TIMEOUT: return PL_ETIMEDOUT;
    case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_NAME:
    case ERROR_INVALID_PARAMETER: return PL_EINVAL;
    default: return PL_EOS;
    }
}

/* FormatMessage's text without the trailing ".\r\n", plus the number. */
void pl__os_strerror(int os_error, char *buf, size_t len) {
    wchar_t w[256];
    DWORD n;

    if (len == 0)
        return;
    buf[0] = '\0';
    n = FormatMessageW(FORMAT_MESSAGE_FROM_SYSTEM |
                           FORMAT_MESSAGE_IGNORE_INSERTS,
                       NULL, (DWORD)os_error, 0, w, 256, NULL);
    while (n > 0 && (w[n - 1] == L'\r' || w[n - 1] == L'\n' ||
                     w[n - 1] == L' ' || w[n - 1] == L'.'))
        n--;
    if (n > 0) {
        int m;
        w[n] = L'\0';
        m = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)len, NULL, NULL);
        if (m > 0) {
            size_t used = strlen(buf);
            snprintf(buf + used, len - used, " (Windows error %lu)",
                     (unsigned long)(DWORD)os_error);
            return;
        }
    }
    snprintf(buf, len, "Windows error %lu", (unsigned long)(DWORD)os_error);
}

/* The C library reports errno (and sometimes _doserrno); the rest of this
 * layer speaks GetLastError codes, so translate. */
int pl__os_crt_error(void) {
    switch (errno) {
    case EACCES: return ERROR_ACCESS_DENIED;
    case ENOENT: return ERROR_FILE_NOT_FOUND;
    case ENOSPC: return ERROR_DISK_FULL;
    case EBADF: return ERROR_INVALID_HANDLE;
    case ENOMEM: return ERROR_NOT_ENOUGH_MEMORY;
    case EEXIST: return ERROR_FILE_EXISTS;
    case EINVAL: return ERROR_INVALID_PARAMETER;
    default: return _doserrno != 0 ? (int)_doserrno : ERROR_GEN_FAILURE;
    }
}

int pl__win_fail(pl_error_t *err, DWORD e, const char *what, const char *path) {
    return pl__error_set(err, pl__code_from_os((int)e), (int)e, "%s(%s)", what,
                         path);
}

/* ---- paths --------------------------------------------------------------- */

static wchar_t *widen(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w;
    if (n <= 0)
        return NULL;
    w = malloc((size_t)n * sizeof(wchar_t));
    if (w != NULL &&
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) <= 0) {
        free(w);
        w = NULL;
    }
    return w;
}

char *pl__win_utf8(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *s;
    if (n <= 0)
        return NULL;
    s = malloc((size_t)n);
    if (s != NULL &&
        WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) <= 0) {
        free(s);
        s = NULL;
    }
    return s;
}

static int has_prefix(const wchar_t *w, const wchar_t *p) {
    return wcsncmp(w, p, wcslen(p)) == 0;
}

wchar_t *pl__win_fullpath(const char *path, pl_error_t *err) {
    wchar_t *w = widen(path), *full;
    DWORD n, m;

    if (w == NULL) {
        pl__error_set(err, PL_EINVAL, 0, "%s: not valid UTF-8", path);
        return NULL;
    }
    if (has_prefix(w, L"\\\\?\\")) /* already a verbatim path */
        return w;
    n = GetFullPathNameW(w, 0, NULL, NULL);
    full = n > 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
    m = full != NULL ? GetFullPathNameW(w, n, full, NULL) : 0;
    if (m == 0 || m >= n) {
        DWORD e =
            full == NULL && n > 0 ? ERROR_NOT_ENOUGH_MEMORY : GetLastError();
        free(full);
        free(w);
        pl__win_fail(err, e, "GetFullPathName", path);
        return NULL;
    }
    free(w);
    return full;
}

/*
 * 1 if a name in w is longer than NTFS, FAT32, exFAT and SMB allow (255
 * UTF-16 units).  Windows reports such a name as ERROR_INVALID_NAME and
 * Wine as ERROR_PATH_NOT_FOUND (its Unix open gets ENAMETOOLONG); checked
 * up front, both give PL_ENAMETOOLONG, as on POSIX.
 */
#define PL_WIN_NAME_MAX 255

static int name_too_long(const wchar_t *w) {
    size_t run = 0;
    for (; *w != L'\0'; w++) {
        if (*w == L'\\' || *w == L'/')
            run = 0;
        else if (++run > PL_WIN_NAME_MAX)
            return 1;
    }
    return 0;
}

wchar_t *pl__win_path(const char *path, pl_error_t *err) {
    wchar_t *full = pl__win_fullpath(path, err), *out;
    const wchar_t *prefix = L"\\\\?\\";
    size_t skip = 0, n;

    if (full == NULL)
        return NULL;
    if (name_too_long(full)) {
        free(full);
        pl__error_set(err, PL_ENAMETOOLONG, ERROR_FILENAME_EXCED_RANGE,
                      "%s: a name in the path is longer than %d characters",
                      path, PL_WIN_NAME_MAX);
        return NULL;
    }
    if (has_prefix(full, L"\\\\?\\") || has_prefix(full, L"\\\\.\\"))
        return full;
    if (full[0] == L'\\' && full[1] == L'\\') { /* \\server\share\... */
        prefix = L"\\\\?\\UNC\\";
        skip = 2;
    }
    n = wcslen(prefix) + wcslen(full + skip) + 1;
    out = malloc(n * sizeof(wchar_t));
    if (out == NULL) {
        free(full);
        pl__error_set(err, PL_ENOMEM, 0, "path(%s)", path);
        return NULL;
    }
    wcscpy(out, prefix);
    wcscat(out, full + skip);
    free(full);
    return out;
}

int pl__os_abspath(const char *path, char **out, pl_error_t *err) {
    wchar_t *w = pl__win_fullpath(path, err);
    *out = NULL;
    if (w == NULL)
        return err != NULL ? err->code : PL_EINVAL;
    *out = pl__win_utf8(w);
    free(w);
    if (*out == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "abspath(%s)", path);
    return PL_OK;
}

/* ---- run-time facts ------------------------------------------------------ */

typedef const char *(CDECL *wine_get_version_fn)(void);

static INIT_ONCE wine_once = INIT_ONCE_STATIC_INIT;
static const char *wine_version;

static BOOL CALLBACK find_wine(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    FARPROC p;
    (void)once;
    (void)param;
    (void)ctx;
    p = ntdll != NULL ? GetProcAddress(ntdll, "wine_get_version") : NULL;
    if (p != NULL) {
        wine_get_version_fn fn;
        memcpy(&fn, &p, sizeof(fn));
        wine_version = fn();
        if (wine_version == NULL)
            wine_version = "unknown";
    }
    return TRUE;
}

const char *pl__win_wine_version(void) {
    InitOnceExecuteOnce(&wine_once, find_wine, NULL, NULL);
    return wine_version;
}

int pl__win_is_wine(void) {
    return pl__win_wine_version() != NULL;
}

/* NtQueryInformationFile(FileModeInformation) tells a synchronous file
 * object (FILE_SYNCHRONOUS_IO_*) from an overlapped one. */
typedef struct {
    union {
        LONG Status;
        PVOID Pointer;
    } u;
    ULONG_PTR Information;
} pl_io_status_t;
typedef LONG(NTAPI *query_file_fn)(HANDLE, pl_io_status_t *, PVOID, ULONG, int);
typedef ULONG(NTAPI *last_status_fn)(void);

#define FILE_MODE_INFORMATION_CLASS 16
#define SYNC_IO_FLAGS               0x30 /* FILE_SYNCHRONOUS_IO_(NON)ALERT */
#define STATUS_DELETE_PENDING_      0xC0000056UL

static FARPROC ntdll_proc(const char *name) {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll != NULL ? GetProcAddress(ntdll, name) : NULL;
}

int pl__win_handle_overlapped(HANDLE h) {
    FARPROC p = ntdll_proc("NtQueryInformationFile");
    query_file_fn fn;
    pl_io_status_t io;
    ULONG mode = 0;

    if (p == NULL)
        return -1;
    memcpy(&fn, &p, sizeof(fn));
    if (fn(h, &io, &mode, sizeof(mode), FILE_MODE_INFORMATION_CLASS) < 0)
        return -1;
    return (mode & SYNC_IO_FLAGS) == 0;
}

int pl__win_delete_pending(void) {
    FARPROC p = ntdll_proc("RtlGetLastNtStatus");
    last_status_fn fn;
    if (p == NULL)
        return 0;
    memcpy(&fn, &p, sizeof(fn));
    return fn() == STATUS_DELETE_PENDING_;
}

/* ---- time, processes, randomness ----------------------------------------- */

int64_t pl__os_monotonic_ns(void) {
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq); /* never fails since XP */
    QueryPerformanceCounter(&now);
    return (int64_t)(now.QuadPart / freq.QuadPart) * 1000000000 +
           (int64_t)(now.QuadPart % freq.QuadPart) * 1000000000 / freq.QuadPart;
}

double pl__os_monotonic(void) {
    return (double)pl__os_monotonic_ns() / 1e9;
}

long pl__os_getpid(void) {
    return (long)GetCurrentProcessId();
}

/* OpenProcess: no such process is ERROR_INVALID_PARAMETER; another user's
 * process is ERROR_ACCESS_DENIED (it exists). */
int pl__os_pid_alive(long pid) {
    HANDLE h;
    DWORD code = 0;
    int alive;

    if (pid <= 0 || pid > 0x7fffffffL)
        return -1;
    h = pl__sys.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE,
                            FALSE, (DWORD)pid);
    if (h == NULL) {
        DWORD e = GetLastError();
        if (e == ERROR_INVALID_PARAMETER)
            return 0;
        return e == ERROR_ACCESS_DENIED ? 1 : -1;
    }
    if (!GetExitCodeProcess(h, &code))
        alive = -1;
    else if (code != STILL_ACTIVE)
        alive = 0;
    else /* 259 may also be a real exit code: ask the process object */
        alive = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
    pl__sys.CloseHandle(h);
    return alive;
}

/* PIDs are per host on Windows: no namespace to tell. */
int pl__os_pid_namespace(char *buf, size_t len) {
    if (len > 0)
        buf[0] = '\0';
    return PL_ENOTSUP;
}

/* RtlGenRandom (advapi32's SystemFunction036), looked up once and kept
 * loaded (loading and freeing advapi32 on every call from several threads
 * was seen to hang Wine's loader), else splitmix64 over the clock, the PID
 * and a counter. */
typedef BOOLEAN(APIENTRY *rtl_gen_random_fn)(PVOID, ULONG);

static INIT_ONCE random_once = INIT_ONCE_STATIC_INIT;
static rtl_gen_random_fn rtl_gen_random;

static BOOL CALLBACK find_random(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    HMODULE advapi = LoadLibraryW(L"advapi32.dll");
    FARPROC p =
        advapi != NULL ? GetProcAddress(advapi, "SystemFunction036") : NULL;
    (void)once;
    (void)param;
    (void)ctx;
    if (p != NULL)
        memcpy(&rtl_gen_random, &p, sizeof(rtl_gen_random));
    return TRUE;
}

int pl__os_random(void *buf, size_t len) {
    static volatile LONG64 counter;
    unsigned char *out = buf;
    size_t got = 0;

    InitOnceExecuteOnce(&random_once, find_random, NULL, NULL);
    if (rtl_gen_random != NULL && len <= 0xffffffffu &&
        rtl_gen_random(buf, (ULONG)len))
        got = len;
    while (got < len) {
        uint64_t z =
            (uint64_t)pl__os_monotonic_ns() ^
            ((uint64_t)GetCurrentProcessId() << 32) ^
            (uint64_t)InterlockedAdd64(&counter, (LONG64)0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
        z ^= z >> 31;
        for (int i = 0; i < 8 && got < len; i++, z >>= 8)
            out[got++] = (unsigned char)z;
    }
    return 0;
}

/* Python's tempfile.gettempdir() order (TMPDIR, TEMP, TMP), then
 * GetTempPath, so C and Python semaphores meet in the same directory. */
const char *pl__os_tmpdir(void) {
    static const char *const vars[] = {"TMPDIR", "TEMP", "TMP"};
    static char fallback[MAX_PATH * 3];
    wchar_t w[MAX_PATH + 1];
    DWORD n;

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return v;
    }
    n = GetTempPathW(MAX_PATH + 1, w);
    if (n == 0 || n > MAX_PATH)
        return "C:\\Windows\\Temp";
    while (n > 3 && w[n - 1] == L'\\')
        w[--n] = L'\0';
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, fallback, (int)sizeof(fallback),
                            NULL, NULL) <= 0)
        return "C:\\Windows\\Temp";
    return fallback;
}

void pl__os_sleep(double seconds) {
    double ms;
    if (!(seconds > 0))
        return;
    ms = seconds * 1000.0;
    if (ms > 4e9)
        ms = 4e9;
    Sleep(ms < 1.0 ? 1 : (DWORD)ms);
}

int pl__os_hostname(char *buf, size_t len) {
    wchar_t w[256];
    DWORD n = 256;
    if (len == 0)
        return PL_EINVAL;
    buf[0] = '\0';
    if (!GetComputerNameExW(ComputerNameDnsHostname, w, &n))
        return pl__code_from_os((int)GetLastError());
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)len, NULL, NULL) <=
        0) {
        buf[0] = '\0';
        return PL_EINVAL;
    }
    return PL_OK;
}

/* ---- files --------------------------------------------------------------- */

/* Opens an existing or new file by UTF-8 path. */
static HANDLE open_path(const char *path, DWORD access, DWORD disposition,
                        DWORD flags, const char *what, pl_error_t *err) {
    wchar_t *w = pl__win_path(path, err);
    HANDLE h;
    DWORD e;

    if (w == NULL)
        return INVALID_HANDLE_VALUE;
    h = pl__sys.CreateFileW(w, access, SHARE_ALL, NULL, disposition, flags,
                            NULL);
    e = GetLastError();
    free(w);
    if (h == INVALID_HANDLE_VALUE)
        pl__win_fail(err, e, what, path);
    SetLastError(e);
    return h;
}

static int is_dir_path(const char *path) {
    wchar_t *w = pl__win_path(path, NULL);
    DWORD a;
    if (w == NULL)
        return 0;
    a = GetFileAttributesW(w);
    free(w);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

/*
 * Lock files are opened for overlapped I/O: that is what lets a timed
 * acquire wait in the kernel (see backend.c).  'a' asks for GENERIC_WRITE
 * (LockFileEx needs GENERIC_READ or GENERIC_WRITE; FILE_APPEND_DATA alone is
 * not enough); appending is the C runtime's job.  'w' never truncates here.
 */
int pl__os_open_lockfile(const char *path, const char *mode, unsigned perms,
                         pl_fd_t *out, pl_error_t *err) {
    int plus = mode[1] == '+';
    DWORD access, disposition, attrs = FILE_ATTRIBUTE_NORMAL;
    HANDLE h = INVALID_HANDLE_VALUE;

    switch (mode[0]) {
    case 'r':
        access = plus ? GENERIC_READ | GENERIC_WRITE : GENERIC_READ;
        disposition = OPEN_EXISTING;
        break;
    default: /* 'a', 'w' */
        access = plus ? GENERIC_READ | GENERIC_WRITE : GENERIC_WRITE;
        disposition = OPEN_ALWAYS;
        break;
    }
    if (!(perms & 0200)) /* as Python's os.open: only the write bit counts */
        attrs = FILE_ATTRIBUTE_READONLY;
    /* A file being deleted (TemporaryFileLock's release unlinks while the
     * holder still has it open) cannot be opened until its last handle
     * closes, a matter of microseconds: retry for up to ~1 s. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        h = open_path(path, access, disposition, attrs | FILE_FLAG_OVERLAPPED,
                      "CreateFile", err);
        if (h != INVALID_HANDLE_VALUE || !pl__win_delete_pending())
            break;
        Sleep(1);
    }
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_ACCESS_DENIED && is_dir_path(path))
            return pl__error_set(err, PL_EISDIR, (int)e, "CreateFile(%s)",
                                 path);
        return err != NULL ? err->code : pl__code_from_os((int)e);
    }
    *out = (pl_fd_t)h;
    return PL_OK;
}

int pl__os_close(pl_fd_t fd, pl_error_t *err) {
    if (!pl__sys.CloseHandle((HANDLE)fd)) {
        DWORD e = GetLastError();
        return pl__error_set(err, pl__code_from_os((int)e), (int)e,
                             "CloseHandle(%p)", (void *)fd);
    }
    return PL_OK;
}

int pl__os_truncate_after_lock(pl_fd_t fd, pl_error_t *err) {
    FILE_END_OF_FILE_INFO eof;
    eof.EndOfFile.QuadPart = 0;
    if (!pl__sys.SetFileInformationByHandle((HANDLE)fd, FileEndOfFileInfo, &eof,
                                            sizeof(eof))) {
        DWORD e = GetLastError();
        return pl__error_set(err, pl__code_from_os((int)e), (int)e,
                             "SetFileInformationByHandle(%p, EndOfFile 0)",
                             (void *)fd);
    }
    return PL_OK;
}

/* Truncate, then write at offset 0 (the lock handle is overlapped: every
 * write names its offset and is waited for). */
int pl__os_fd_set_content(pl_fd_t fd, const char *text, pl_error_t *err) {
    HANDLE h = (HANDLE)fd;
    size_t len = strlen(text), done = 0;
    int rc = pl__os_truncate_after_lock(fd, err);

    while (rc == PL_OK && done < len) {
        OVERLAPPED ov;
        DWORD n = 0, chunk = len - done > 0x10000000u ? 0x10000000u
                                                      : (DWORD)(len - done);
        memset(&ov, 0, sizeof(ov));
        ov.Offset = (DWORD)done;
        ov.OffsetHigh = (DWORD)((uint64_t)done >> 32);
        if (!pl__sys.WriteFile(h, text + done, chunk, &n, &ov) &&
            (GetLastError() != ERROR_IO_PENDING ||
             !GetOverlappedResult(h, &ov, &n, TRUE)))
            return pl__error_set(err, pl__code_from_os((int)GetLastError()),
                                 (int)GetLastError(), "WriteFile(%p)",
                                 (void *)fd);
        if (n == 0)
            return pl__error_set(err, PL_EOS, 0, "WriteFile(%p): no progress",
                                 (void *)fd);
        done += n;
    }
    return rc;
}

static int is_gone(DWORD e) {
    return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ||
           (e == ERROR_ACCESS_DENIED && pl__win_delete_pending());
}

/*
 * The identity of an open file: volume serial number and 128-bit file id
 * (FileIdInfo), falling back to the 64-bit index of
 * GetFileInformationByHandle where FileIdInfo is not supported (FAT,
 * Windows 7).  FileIdInfo first also because under Wine
 * GetFileInformationByHandle asks the mount manager for the volume serial,
 * and concurrent calls from several threads were seen to hang there.
 */
static int file_identity(HANDLE h, FILE_ID_INFO *id) {
    BY_HANDLE_FILE_INFORMATION info;
    if (GetFileInformationByHandleEx(h, FileIdInfo, id, sizeof(*id)))
        return 1;
    if (!pl__sys.GetFileInformationByHandle(h, &info))
        return 0;
    memset(id, 0, sizeof(*id));
    id->VolumeSerialNumber = info.dwVolumeSerialNumber;
    memcpy(id->FileId.Identifier, &info.nFileIndexLow, sizeof(DWORD));
    memcpy(id->FileId.Identifier + 4, &info.nFileIndexHigh, sizeof(DWORD));
    return 1;
}

/* Same volume and file id, and not deleted: the same file. */
int pl__os_fd_matches_path(pl_fd_t fd, const char *path, pl_error_t *err) {
    FILE_ID_INFO a, b;
    FILE_STANDARD_INFO st;
    HANDLE h;
    DWORD e;
    int ok;

    if (GetFileInformationByHandleEx((HANDLE)fd, FileStandardInfo, &st,
                                     sizeof(st)) &&
        (st.DeletePending || st.NumberOfLinks == 0))
        return 0;
    if (!file_identity((HANDLE)fd, &a))
        return pl__win_fail(err, GetLastError(), "GetFileInformationByHandle",
                            path);
    h = open_path(path, FILE_READ_ATTRIBUTES, OPEN_EXISTING,
                  FILE_FLAG_BACKUP_SEMANTICS, "CreateFile", NULL);
    if (h == INVALID_HANDLE_VALUE) {
        e = GetLastError();
        return is_gone(e) ? 0 : pl__win_fail(err, e, "CreateFile", path);
    }
    ok = file_identity(h, &b);
    e = GetLastError();
    pl__sys.CloseHandle(h);
    if (!ok)
        return pl__win_fail(err, e, "GetFileInformationByHandle", path);
    return a.VolumeSerialNumber == b.VolumeSerialNumber &&
           memcmp(&a.FileId, &b.FileId, sizeof(a.FileId)) == 0;
}

int pl__os_unlink(const char *path, pl_error_t *err) {
    wchar_t *w = pl__win_path(path, err);
    BOOL ok;
    DWORD e;
    if (w == NULL)
        return err != NULL ? err->code : PL_EINVAL;
    ok = pl__sys.DeleteFileW(w);
    e = GetLastError();
    free(w);
    return ok ? PL_OK : pl__win_fail(err, e, "DeleteFile", path);
}

/* GetFileAttributes never follows a reparse point's target for this:
 * a link (dangling or not) exists too. */
int pl__os_check_absent(const char *path, pl_error_t *err) {
    wchar_t *w = pl__win_path(path, err);
    DWORD a, e;
    if (w == NULL)
        return err != NULL ? err->code : PL_EINVAL;
    a = GetFileAttributesW(w);
    e = GetLastError();
    free(w);
    if (a != INVALID_FILE_ATTRIBUTES)
        return pl__error_set(err, PL_EEXIST, ERROR_FILE_EXISTS,
                             "%s: file already exists", path);
    if (e == ERROR_FILE_NOT_FOUND)
        return PL_OK;
    if (e == ERROR_DIRECTORY) /* a parent is a file */
        return pl__error_set(err, PL_ENOENT, (int)e, "GetFileAttributes(%s)",
                             path);
    return pl__win_fail(err, e, "GetFileAttributes", path);
}

int pl__os_fd_unlinked(pl_fd_t fd) {
    FILE_STANDARD_INFO st;
    if (!GetFileInformationByHandleEx((HANDLE)fd, FileStandardInfo, &st,
                                      sizeof(st)))
        return -1;
    return st.DeletePending || st.NumberOfLinks == 0;
}

int pl__os_fsync(pl_fd_t fd, const char *path, pl_error_t *err) {
    if (!pl__sys.FlushFileBuffers((HANDLE)fd)) {
        DWORD e = GetLastError();
        /* Consoles and pipes cannot be flushed: not an error. */
        if (e != ERROR_INVALID_FUNCTION && e != ERROR_INVALID_HANDLE)
            return pl__win_fail(err, e, "FlushFileBuffers", path);
    }
    return PL_OK;
}

/* mkdir -p of path's parent: walks the wide absolute path forward after its
 * root (\\?\C:\ or \\?\UNC\server\share\). */
int pl__os_mkdirs_parent(const char *path, pl_error_t *err) {
    wchar_t *w = pl__win_path(path, err), *p, *last;
    int rc = PL_OK;

    if (w == NULL)
        return err != NULL ? err->code : PL_EINVAL;
    last = wcsrchr(w, L'\\');
    if (last != NULL)
        *last = L'\0';
    p = w + 4; /* after \\?\ */
    if (has_prefix(p, L"UNC\\")) {
        p += 4;
        for (int parts = 0; parts < 2 && p != NULL; parts++) {
            p = wcschr(p, L'\\');
            if (p != NULL)
                p++;
        }
    } else if (p[0] != L'\0' && p[1] == L':') {
        p += 3;
    }
    while (p != NULL && *p != L'\0' && rc == PL_OK) {
        wchar_t *sep = wcschr(p, L'\\');
        if (sep != NULL)
            *sep = L'\0';
        if (!pl__sys.CreateDirectoryW(w, NULL)) {
            DWORD e = GetLastError();
            DWORD a = GetFileAttributesW(w);
            if (!(a != INVALID_FILE_ATTRIBUTES &&
                  (a & FILE_ATTRIBUTE_DIRECTORY))) {
                char *u = pl__win_utf8(w);
                if (a != INVALID_FILE_ATTRIBUTES) /* a file: ENOTDIR */
                    e = ERROR_DIRECTORY;
                rc = pl__win_fail(err, e, "CreateDirectory",
                                  u != NULL ? u : path);
                free(u);
            }
        }
        if (sep == NULL)
            break;
        *sep = L'\\';
        p = sep + 1;
    }
    free(w);
    return rc;
}

static const char *last_sep(const char *path) {
    const char *a = strrchr(path, '/'), *b = strrchr(path, '\\');
    return a > b ? a : b;
}

/* "<dir>\.<base>.<12 hex>.tmp" next to path (CREATE_NEW), base shortened
 * so the name fits PL__NAME_MAX, for ordinary synchronous I/O (the C
 * runtime writes through it). */
static int create_temp(const char *path, unsigned perms, DWORD access,
                       DWORD share, char **tmp_out, pl_fd_t *fd_out,
                       pl_error_t *err) {
    const char *slash = last_sep(path);
    size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    size_t baselen = strlen(path + dirlen);
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    HANDLE h = INVALID_HANDLE_VALUE;
    DWORD attrs =
        (perms & 0200) ? FILE_ATTRIBUTE_NORMAL : FILE_ATTRIBUTE_READONLY;

    if (tmp == NULL)
        return pl__error_set(err, PL_ENOMEM, 0, "temporary file for %s", path);
    if (baselen > PL__NAME_MAX - 18) /* "." + "." + 12 hex + ".tmp" */
        baselen = PL__NAME_MAX - 18;
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        DWORD e;
        pl__os_random(r, sizeof(r));
        snprintf(tmp, cap, "%.*s.%.*s.%02x%02x%02x%02x%02x%02x.tmp",
                 (int)dirlen, path, (int)baselen, path + dirlen, r[0], r[1],
                 r[2], r[3], r[4], r[5]);
        {
            wchar_t *w = pl__win_path(tmp, err);
            if (w == NULL)
                break;
            h = pl__sys.CreateFileW(w, access, share, NULL, CREATE_NEW, attrs,
                                    NULL);
            e = GetLastError();
            free(w);
        }
        if (h != INVALID_HANDLE_VALUE)
            break;
        if (e != ERROR_FILE_EXISTS && e != ERROR_ALREADY_EXISTS) {
            pl__win_fail(err, e, "CreateFile", tmp);
            break;
        }
    }
    if (h == INVALID_HANDLE_VALUE) {
        free(tmp);
        return err != NULL ? err->code : PL_EOS;
    }
    *tmp_out = tmp;
    *fd_out = (pl_fd_t)h;
    return PL_OK;
}

int pl__os_create_temp(const char *path, unsigned perms, char **tmp_out,
                       pl_fd_t *fd_out, pl_error_t *err) {
    return create_temp(path, perms, GENERIC_READ | GENERIC_WRITE, SHARE_ALL,
                       tmp_out, fd_out, err);
}

/*
 * open_atomic's temporary file: named (Windows has no anonymous file that
 * can be given a name later), opened with DELETE access but WITHOUT
 * FILE_SHARE_DELETE.  That is the "in use" mark: while this handle is open
 * nobody else can delete or rename the file (pl__os_clean_temps' DeleteFile
 * fails with a sharing violation), and we rename it through the handle
 * itself.  The parent directory must exist.
 */
int pl__os_atomic_create(const char *path, unsigned perms, char **tmp_out,
                         pl_fd_t *fd_out, pl_error_t *err) {
    return create_temp(path, perms, GENERIC_READ | GENERIC_WRITE | DELETE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE, tmp_out, fd_out,
                       err);
}

/* A name "<path>.<hex>.kept" for data that could not be published. */
static char *keep_name(const char *path) {
    size_t cap = strlen(path) + 32;
    char *k = malloc(cap);
    unsigned char r[4];
    if (k == NULL)
        return NULL;
    pl__os_random(r, sizeof(r));
    snprintf(k, cap, "%s.%02x%02x%02x%02x.kept", path, r[0], r[1], r[2], r[3]);
    return k;
}

/* Renames the file of h to path through the handle: atomic, and never
 * replacing (ReplaceIfExists FALSE gives ERROR_ALREADY_EXISTS). */
static DWORD rename_handle(HANDLE h, const char *path, pl_error_t *err) {
    wchar_t *w = pl__win_path(path, err);
    size_t n, size;
    FILE_RENAME_INFO *ri;
    DWORD e = 0;

    if (w == NULL)
        return ERROR_INVALID_NAME;
    n = wcslen(w);
    size = sizeof(FILE_RENAME_INFO) + n * sizeof(wchar_t);
    ri = calloc(1, size);
    if (ri == NULL) {
        free(w);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    ri->ReplaceIfExists = FALSE;
    ri->RootDirectory = NULL;
    ri->FileNameLength = (DWORD)(n * sizeof(wchar_t));
    memcpy(ri->FileName, w, (n + 1) * sizeof(wchar_t));
    if (!pl__sys.SetFileInformationByHandle(h, FileRenameInfo, ri, (DWORD)size))
        e = GetLastError();
    free(ri);
    free(w);
    return e;
}

int pl__os_atomic_publish(pl_fd_t fd, const char *tmp, const char *path,
                          char **kept, pl_error_t *err) {
    DWORD e = rename_handle((HANDLE)fd, path, err);
    char *k;

    *kept = NULL;
    if (e == 0) {
        pl__os_fsync(fd, path, NULL); /* the rename, as far as NTFS allows */
        return PL_OK;
    }
    /* Keep the data under a name no cleaner removes. */
    k = keep_name(path);
    if (k != NULL && rename_handle((HANDLE)fd, k, NULL) == 0)
        *kept = k;
    else
        free(k);
    if (e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS)
        return pl__error_set(err, PL_EEXIST, (int)e,
                             "%s appeared meanwhile; data kept in %s", path,
                             *kept != NULL ? *kept : tmp);
    return pl__error_set(err, pl__code_from_os((int)e), (int)e,
                         "rename(%s, %s); data kept in %s", tmp, path,
                         *kept != NULL ? *kept : tmp);
}

/*
 * Removes "<dir>\.<base>.<12 hex>.tmp" files of path older than 10 s that
 * nobody holds open: a creator's handle (no FILE_SHARE_DELETE, see
 * pl__os_atomic_create) makes DeleteFile fail with a sharing violation, so
 * only files of writers that died go.
 */
void pl__os_clean_temps(const char *path) {
    const char *slash = last_sep(path);
    size_t dirlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    size_t cap = strlen(path) + 32;
    char *pattern = malloc(cap), *u;
    wchar_t *wpat;
    WIN32_FIND_DATAW fd;
    HANDLE find;
    FILETIME now_ft;
    ULARGE_INTEGER now;

    if (pattern == NULL)
        return;
    snprintf(pattern, cap, "%.*s.%s.????????????.tmp", (int)dirlen, path,
             path + dirlen);
    wpat = pl__win_path(pattern, NULL);
    if (wpat == NULL) {
        free(pattern);
        return;
    }
    GetSystemTimeAsFileTime(&now_ft);
    now.LowPart = now_ft.dwLowDateTime;
    now.HighPart = now_ft.dwHighDateTime;
    find = FindFirstFileW(wpat, &fd);
    if (find != INVALID_HANDLE_VALUE) {
        do {
            ULARGE_INTEGER t;
            char *full;
            size_t fl;
            t.LowPart = fd.ftLastWriteTime.dwLowDateTime;
            t.HighPart = fd.ftLastWriteTime.dwHighDateTime;
            if (now.QuadPart - t.QuadPart < 10ULL * 10000000ULL)
                continue; /* 100 ns units: younger than 10 s */
            u = pl__win_utf8(fd.cFileName);
            if (u == NULL)
                continue;
            fl = dirlen + strlen(u) + 1;
            full = malloc(fl);
            if (full != NULL) {
                snprintf(full, fl, "%.*s%s", (int)dirlen, path, u);
                pl__os_unlink(full, NULL);
                free(full);
            }
            free(u);
        } while (FindNextFileW(find, &fd));
        FindClose(find);
    }
    free(wpat);
    free(pattern);
}

static int write_all(HANDLE h, const char *buf, size_t len) {
    while (len > 0) {
        DWORD n = 0, chunk = len > 0x10000000u ? 0x10000000u : (DWORD)len;
        if (!pl__sys.WriteFile(h, buf, chunk, &n, NULL))
            return -1;
        buf += n;
        len -= n;
    }
    return 0;
}

/* Temp file in the same directory + write + flush + MoveFileEx over path
 * (MOVEFILE_REPLACE_EXISTING: atomic replacement on NTFS). */
int pl__os_write_file_atomic(const char *path, const char *text,
                             pl_error_t *err) {
    char *tmp = NULL;
    wchar_t *wt = NULL, *wp = NULL;
    pl_fd_t fd;
    int rc;

    if ((rc = pl__os_create_temp(path, 0666, &tmp, &fd, err)) != PL_OK)
        return rc;
    if (write_all((HANDLE)fd, text, strlen(text)) != 0)
        rc = pl__win_fail(err, GetLastError(), "WriteFile", tmp);
    else
        rc = pl__os_fsync(fd, tmp, err);
    if (!pl__sys.CloseHandle((HANDLE)fd) && rc == PL_OK)
        rc = pl__win_fail(err, GetLastError(), "CloseHandle", tmp);
    if (rc == PL_OK) {
        wt = pl__win_path(tmp, err);
        wp = wt != NULL ? pl__win_path(path, err) : NULL;
        if (wp == NULL)
            rc = err != NULL ? err->code : PL_EINVAL;
        else if (!pl__sys.MoveFileExW(wt, wp,
                                      MOVEFILE_REPLACE_EXISTING |
                                          MOVEFILE_WRITE_THROUGH)) {
            DWORD e = GetLastError();
            rc = pl__error_set(err, pl__code_from_os((int)e), (int)e,
                               "MoveFileEx(%s, %s)", tmp, path);
        }
    }
    if (rc != PL_OK)
        pl__os_unlink(tmp, NULL);
    free(wt);
    free(wp);
    free(tmp);
    return rc;
}

int pl__os_read_file(const char *path, char *buf, size_t len, size_t *got,
                     pl_error_t *err) {
    size_t n = 0;
    HANDLE h;
    int rc = PL_OK;

    if (len == 0)
        return pl__error_set(err, PL_EINVAL, 0, "read(%s): no buffer", path);
    h = open_path(path, GENERIC_READ, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL,
                  "CreateFile", err);
    if (h == INVALID_HANDLE_VALUE)
        return err != NULL ? err->code : pl__code_from_os((int)GetLastError());
    while (n + 1 < len) {
        DWORD r = 0, want = (DWORD)(len - 1 - n > 0x10000000u ? 0x10000000u
                                                              : len - 1 - n);
        if (!pl__sys.ReadFile(h, buf + n, want, &r, NULL)) {
            rc = pl__win_fail(err, GetLastError(), "ReadFile", path);
            break;
        }
        if (r == 0)
            break;
        n += r;
    }
    pl__sys.CloseHandle(h);
    buf[n] = '\0';
    if (got != NULL)
        *got = n;
    return rc;
}

/*
 * A FILE* over a handle.  The C runtime reads and writes with a NULL
 * OVERLAPPED, which Windows refuses on an overlapped file object (the lock
 * files: see backend.c), so those get NULL with errno EBADF: use ReadFile /
 * WriteFile with an OVERLAPPED offset on pl_lock_fileno() there.
 */
FILE *pl__os_fdopen(pl_fd_t fd, const char *mode) {
    int flags, cfd;
    char m[4];
    FILE *fp;

    if (pl__win_handle_overlapped((HANDLE)fd) != 0) {
        errno = EBADF;
        return NULL;
    }
    switch (mode[0]) {
    case 'r': flags = mode[1] == '+' ? _O_RDWR : _O_RDONLY; break;
    case 'a': flags = (mode[1] == '+' ? _O_RDWR : _O_WRONLY) | _O_APPEND; break;
    default: flags = mode[1] == '+' ? _O_RDWR : _O_WRONLY; break;
    }
    cfd = _open_osfhandle((intptr_t)fd, flags | _O_BINARY);
    if (cfd < 0)
        return NULL;
    m[0] = mode[0];
    m[1] = mode[1] == '+' ? '+' : 'b';
    m[2] = mode[1] == '+' ? 'b' : '\0';
    m[3] = '\0';
    fp = _fdopen(cfd, m);
    if (fp == NULL) {
        /* _close would close the handle, which the caller still owns. */
        errno = EINVAL;
    }
    return fp;
}

/* No fork on Windows: never called with an inherited stream. */
void pl__os_fclose_discard(FILE *fp) {
    fclose(fp);
}

/* Handles are opened as the caller will use them: nothing to change. */
void pl__os_fd_handout(pl_fd_t fd) {
    (void)fd;
}
