/*
 * win32.h -- what the files of the Windows layer share: UTF-8 <-> UTF-16
 * path conversion (long paths with the \\?\ prefix), error records from
 * GetLastError() codes, and the run-time facts the backend depends on
 * (running under Wine; whether a handle was opened for overlapped I/O).
 */
#ifndef PL_WIN32_WIN32_H
#define PL_WIN32_WIN32_H

#include "internal.h"
#include "win32/sys.h"

#include <wchar.h>

/*
 * path (UTF-8) as an absolute wide path for CreateFileW & co: made absolute
 * against the current directory (GetFullPathNameW: lexical, "/" becomes
 * "\"), then prefixed "\\?\" (or "\\?\UNC\" for \\server\share) so paths
 * longer than MAX_PATH work.  malloc'd; NULL with err filled on failure.
 */
wchar_t *pl__win_path(const char *path, pl_error_t *err);
/* The same without the \\?\ prefix (for messages and abspath). */
wchar_t *pl__win_fullpath(const char *path, pl_error_t *err);
/* UTF-16 -> UTF-8, malloc'd; NULL if out of memory or invalid. */
char *pl__win_utf8(const wchar_t *w);
/* "what(path): <FormatMessage text>" for Win32 error e; returns the code. */
int pl__win_fail(pl_error_t *err, DWORD e, const char *what, const char *path);
/* 1 when running under Wine (ntdll exports wine_get_version). */
int pl__win_is_wine(void);
/* Wine's version string ("8.0"), or NULL on Windows. */
const char *pl__win_wine_version(void);
/* 1 if h was opened with FILE_FLAG_OVERLAPPED (asynchronous file object),
 * 0 if synchronous, -1 if unknown. */
int pl__win_handle_overlapped(HANDLE h);
/* 1 if the last failure was STATUS_DELETE_PENDING (reported as
 * ERROR_ACCESS_DENIED: the file is deleted, waiting for its last handle). */
int pl__win_delete_pending(void);

#endif /* PL_WIN32_WIN32_H */
