/* sys/socket.h for the Windows unit build: see ../posix_shim.h. */
#ifndef PLW_SYS_SOCKET_H
#define PLW_SYS_SOCKET_H
#define AF_UNIX     1
#define SOCK_STREAM 1
typedef int socklen_t;
struct sockaddr {
    unsigned short sa_family;
    char sa_data[14];
};
int socket(int domain, int type, int protocol);
int bind(int fd, const struct sockaddr *addr, socklen_t len);
#endif
