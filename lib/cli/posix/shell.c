/*
 * shell.c (POSIX) -- the command for -c: $SHELL -c COMMAND, as flock(1).
 */
#include "../cli.h"

#include <stdlib.h>

void cli_shell_argv(char *argv[4], const char *command) {
    const char *sh = getenv("SHELL");
    argv[0] = (char *)(sh != NULL && sh[0] != '\0' ? sh : "/bin/sh");
    argv[1] = (char *)"-c";
    argv[2] = (char *)command;
    argv[3] = NULL;
}
