/* sys/statfs.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_STATFS_H
#define PLW_SYS_STATFS_H
struct statfs {
    long f_type;
};
int statfs(const char *path, struct statfs *st);
#endif
