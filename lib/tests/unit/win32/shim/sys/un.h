/* sys/un.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_UN_H
#define PLW_SYS_UN_H
struct sockaddr_un {
    unsigned short sun_family;
    char sun_path[108];
};
#endif
