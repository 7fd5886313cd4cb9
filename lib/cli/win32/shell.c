/*
 * shell.c (Windows) -- the command for -c: %ComSpec% (cmd.exe) /c COMMAND.
 * run.c recognises this vector (argv[1] is cli_win_shell_flag itself) and
 * gives cmd.exe the command line it expects, "%ComSpec%" /d /s /c "COMMAND":
 * cmd.exe does not split its arguments by CommandLineToArgvW's rules; /s
 * makes it strip exactly the outer quotes and run the rest verbatim, /d
 * skips the AutoRun commands of the registry.
 */
#include "../cli.h"
#include "cli_win32.h"

const char cli_win_shell_flag[] = "/c";

void cli_shell_argv(char *argv[4], const char *command) {
    static char comspec[4 * MAX_PATH];
    wchar_t w[MAX_PATH];
    DWORD n = GetEnvironmentVariableW(L"ComSpec", w, MAX_PATH);
    if (n == 0 || n >= MAX_PATH ||
        WideCharToMultiByte(CP_UTF8, 0, w, -1, comspec, (int)sizeof(comspec),
                            NULL, NULL) <= 0)
        strcpy(comspec, "cmd.exe");
    argv[0] = comspec;
    argv[1] = (char *)cli_win_shell_flag;
    argv[2] = (char *)command;
    argv[3] = NULL;
}
