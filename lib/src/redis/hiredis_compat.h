/*
 * hiredis_compat.h -- the only place that knows which hiredis we build with.
 *
 * redis_lock.c uses only API that hiredis 0.14 (Debian 12) and 1.x share:
 * redisConnectWithTimeout, redisConnectUnixWithTimeout, redisSetTimeout,
 * redisEnableKeepAlive, redisAppendCommandArgv, redisGetReply,
 * redisBufferRead, redisReaderGetReply, freeReplyObject, redisFree, c->err,
 * c->errstr, c->fd, c->reader.  What differs is wrapped here.
 */
#ifndef PL_REDIS_HIREDIS_COMPAT_H
#define PL_REDIS_HIREDIS_COMPAT_H

#if defined(_WIN32)
/* Winsock before anything includes windows.h: struct timeval (hiredis.h
 * only declares it under MSVC) and SOCKET (win32/redis_os.c). */
# ifndef WIN32_LEAN_AND_MEAN
#  define WIN32_LEAN_AND_MEAN
# endif
# include <winsock2.h>
#endif
#include <hiredis/hiredis.h>

#if !defined(HIREDIS_MAJOR)
# error "hiredis.h did not define HIREDIS_MAJOR"
#endif

#if HIREDIS_MAJOR >= 1
/* 1.x: c->fd is a redisFD (int on POSIX, a SOCKET on Windows, which only
 * win32/redis_os.c touches); RESP3 adds reply types we never
 * ask for (we never send HELLO 3), so they are treated as unexpected. */
# define PL__REDIS_FD(c) ((int)(c)->fd)
/* After closing the socket ourselves (fork child): redisFree then skips
 * close (REDIS_INVALID_FD is -1 on POSIX). */
# define PL__REDIS_FORGET_FD(c) ((c)->fd = -1)
#else
/* 0.14: c->fd is an int. */
# define PL__REDIS_FD(c)        ((c)->fd)
/* 0.14's redisFree closes only fd > 0. */
# define PL__REDIS_FORGET_FD(c) ((c)->fd = -1)
#endif

/* A reply type check that also catches NULL. */
#define PL__REPLY_IS(r, t) ((r) != NULL && (r)->type == (t))

#endif /* PL_REDIS_HIREDIS_COMPAT_H */
