/* sys/mount.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_MOUNT_H
#define PLW_SYS_MOUNT_H
#define MS_RDONLY  1
#define MS_PRIVATE (1 << 18)
#define MS_REC     16384
int mount(const char *src, const char *target, const char *type,
          unsigned long flags, const void *data);
int umount2(const char *target, int flags);
#define MNT_DETACH 2
#endif
