/*
 * cli_posix.h -- what the POSIX files of the portalock command share.
 */
#ifndef PL_CLI_POSIX_H
#define PL_CLI_POSIX_H

/* Records which descriptors are open (cli_os_init, first thing in main). */
void cli_fds_snapshot(void);
/* Marks close-on-exec the descriptors opened since cli_fds_snapshot(). */
void cli_fds_cloexec_new(void);

#endif /* PL_CLI_POSIX_H */
