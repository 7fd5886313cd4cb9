/*
 * posix_shim.h -- force-included (-include) into the unit test sources of
 * the Windows build, so that the POSIX-only tests among them still COMPILE.
 * The runner never runs those tests: they are excluded by name, with the
 * reason, in ../excluded.txt.  Every function declared here fails (-1,
 * errno ENOSYS; mmap MAP_FAILED), so a POSIX-only test that was not
 * excluded fails loudly instead of passing.
 */
#ifndef PLW_POSIX_SHIM_H
#define PLW_POSIX_SHIM_H

#include <direct.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * The tests name the POSIX backends.  On Windows they run with the one
 * backend there is: LockFileEx locks belong to the handle, as flock and OFD
 * locks belong to the open file description, so a test of those semantics
 * is a test of lockfileex.  Tests of what only a POSIX backend does (lockf's
 * per-process locks, backend names and availability) are excluded.
 */
#include "portalock.h"
#define PL_BACKEND_FLOCK PL_BACKEND_LOCKFILEEX
#define PL_BACKEND_OFD   PL_BACKEND_LOCKFILEEX
#define PL_BACKEND_LOCKF PL_BACKEND_LOCKFILEEX

#ifndef SIGKILL
# define SIGKILL 9
#endif
#ifndef SIGPIPE
# define SIGPIPE 13
#endif
#ifndef O_CLOEXEC
# define O_CLOEXEC _O_NOINHERIT
#endif
#ifndef O_NOCTTY
# define O_NOCTTY 0
#endif
#define F_GETFD 1
#define F_GETFL 3
#ifndef O_NONBLOCK
# define O_NONBLOCK 04000
#endif
#ifndef SIGXFSZ
# define SIGXFSZ 25
#endif
#define FD_CLOEXEC    1
#define CLONE_NEWNS   0x00020000
#define CLONE_NEWUSER 0x10000000

int fcntl(int fd, int cmd, ...);
pid_t fork(void);
pid_t waitpid(pid_t pid, int *status, int options);
int kill(pid_t pid, int sig);
int setuid(int uid);
int setgid(int gid);
int getuid(void);
int geteuid(void);
int unshare(int flags);
int mkfifo(const char *path, int mode);
/* These two work (over _putenv_s). */
int setenv(const char *name, const char *value, int overwrite);
int unsetenv(const char *name);
int gethostname(char *name, size_t len); /* GetComputerNameEx */
int plw_mkdir(const char *path, int mode);
#define mkdir(path, mode) plw_mkdir((path), (mode))

#endif /* PLW_POSIX_SHIM_H */
