/*
 * cli_win32.h -- what the Windows files of the portalock command share.
 */
#ifndef PL_CLI_WIN32_H
#define PL_CLI_WIN32_H

#ifndef WIN32_LEAN_AND_MEAN
# define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stddef.h>
#include <string.h>
#include <wchar.h>

/* FormatMessage text for a Win32 error, without the trailing newline. */
const char *cli_win_strerror(DWORD e, char *buf, size_t len);
/* argv[1] of the -c vector (shell.c): run.c knows the vector by it. */
extern const char cli_win_shell_flag[];
/* UTF-8 -> UTF-16, malloc'd; NULL if out of memory or not UTF-8. */
wchar_t *cli_win_widen(const char *s);

#endif /* PL_CLI_WIN32_H */
