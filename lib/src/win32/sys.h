/*
 * sys.h -- every Win32 call the Windows layer makes that can fail in a way
 * worth testing goes through this table (the same idea as posix/sys.h and
 * SQLite's aSyscall[]), so tests can make any of them fail.
 *
 *   pl__sys.LockFileEx = my_failing_lock;   ... test ...   pl__sys_reset();
 *
 * Only tests touch the table; it is not thread-safe to change it while the
 * library is in use on other threads.
 */
#ifndef PL_WIN32_SYS_H
#define PL_WIN32_SYS_H

#ifndef WIN32_LEAN_AND_MEAN
# define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

typedef struct pl__sys_table {
    HANDLE(WINAPI *CreateFileW)
    (LPCWSTR name, DWORD access, DWORD share, LPSECURITY_ATTRIBUTES sa,
     DWORD disposition, DWORD flags, HANDLE tmpl);
    BOOL(WINAPI *CloseHandle)(HANDLE h);
    BOOL(WINAPI *LockFileEx)
    (HANDLE h, DWORD flags, DWORD reserved, DWORD low, DWORD high,
     LPOVERLAPPED ov);
    BOOL(WINAPI *UnlockFileEx)
    (HANDLE h, DWORD reserved, DWORD low, DWORD high, LPOVERLAPPED ov);
    BOOL(WINAPI *DeleteFileW)(LPCWSTR name);
    BOOL(WINAPI *MoveFileExW)(LPCWSTR from, LPCWSTR to, DWORD flags);
    BOOL(WINAPI *ReadFile)
    (HANDLE h, LPVOID buf, DWORD len, LPDWORD got, LPOVERLAPPED ov);
    BOOL(WINAPI *WriteFile)
    (HANDLE h, LPCVOID buf, DWORD len, LPDWORD done, LPOVERLAPPED ov);
    BOOL(WINAPI *FlushFileBuffers)(HANDLE h);
    BOOL(WINAPI *GetFileInformationByHandle)
    (HANDLE h, LPBY_HANDLE_FILE_INFORMATION info);
    BOOL(WINAPI *SetFileInformationByHandle)
    (HANDLE h, FILE_INFO_BY_HANDLE_CLASS cls, LPVOID info, DWORD len);
    BOOL(WINAPI *CreateDirectoryW)(LPCWSTR name, LPSECURITY_ATTRIBUTES sa);
    BOOL(WINAPI *GetVolumeInformationW)
    (LPCWSTR root, LPWSTR name, DWORD name_len, LPDWORD serial,
     LPDWORD max_component, LPDWORD fs_flags, LPWSTR fs_name, DWORD fs_len);
    HANDLE(WINAPI *OpenProcess)(DWORD access, BOOL inherit, DWORD pid);
} pl__sys_table_t;

/* The live table; tests may replace entries. */
extern pl__sys_table_t pl__sys;
/* Restores every entry to the real call. */
void pl__sys_reset(void);

#endif /* PL_WIN32_SYS_H */
