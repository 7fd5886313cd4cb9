/* sys/file.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_FILE_H
#define PLW_SYS_FILE_H
#define LOCK_SH 1
#define LOCK_EX 2
#define LOCK_NB 4
#define LOCK_UN 8
#endif
