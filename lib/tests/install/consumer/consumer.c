/* A program outside the project that uses the installed library: takes and
 * releases a lock on argv[1] and prints the version and the result. */
#include <portalock.h>
#include <stdio.h>

int main(int argc, char **argv) {
    pl_lock_t *lock;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: consumer PATH\n");
        return 64;
    }
    rc = pl_lock_open(&lock, argv[1], NULL);
    if (rc == PL_OK)
        rc = pl_lock_acquire(lock);
    if (rc == PL_OK)
        rc = pl_lock_release(lock);
    if (rc == PL_OK)
        rc = pl_lock_close(lock);
    printf("portalock %s: %s\n", pl_version(), pl_err_name(rc));
    return rc == PL_OK ? 0 : 1;
}
