/* sys/wait.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_WAIT_H
#define PLW_SYS_WAIT_H
#define WIFEXITED(s)   0
#define WEXITSTATUS(s) 0
#define WIFSIGNALED(s) 0
#define WTERMSIG(s)    0
#endif
