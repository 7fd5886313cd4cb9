/* sys/mman.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_MMAN_H
#define PLW_SYS_MMAN_H
#include <stddef.h>
#define PROT_READ     1
#define PROT_WRITE    2
#define MAP_SHARED    1
#define MAP_PRIVATE   2
#define MAP_ANONYMOUS 0x20
#define MAP_FAILED    ((void *)-1)
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int munmap(void *addr, size_t len);
#endif
