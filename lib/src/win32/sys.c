/*
 * sys.c -- the live Win32 call table (see sys.h): every entry points
 * straight at kernel32.
 */
#include "win32/sys.h"
#include "internal.h"

/* clang-format off */
#define PL__SYS_REAL {                                                         \
    CreateFileW, CloseHandle, LockFileEx, UnlockFileEx, DeleteFileW,           \
    MoveFileExW, ReadFile, WriteFile, FlushFileBuffers,                        \
    GetFileInformationByHandle, SetFileInformationByHandle, CreateDirectoryW,  \
    GetVolumeInformationW, OpenProcess }
/* clang-format on */

static const pl__sys_table_t pl__sys_real = PL__SYS_REAL;

pl__sys_table_t pl__sys = PL__SYS_REAL;

void pl__sys_reset(void) {
    pl__sys = pl__sys_real;
}

/* Windows threads have no asynchronous cancellation: nothing to defer. */
int pl__os_cancel_defer(void) {
    return 0;
}

void pl__os_cancel_restore(int state) {
    (void)state;
}
