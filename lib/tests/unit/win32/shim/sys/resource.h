/* sys/resource.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_RESOURCE_H
#define PLW_SYS_RESOURCE_H
#define RLIMIT_FSIZE 1
typedef unsigned long rlim_t;
struct rlimit {
    rlim_t rlim_cur, rlim_max;
};
int getrlimit(int resource, struct rlimit *rl);
int setrlimit(int resource, const struct rlimit *rl);
#endif
