/*
 * probe_cmd.c -- "portalock probe PATH [--json]" and the --verbose verdict.
 *
 * pl_probe() locks temporary files in the directory with every backend and
 * reports what works there; this file only formats the result.
 */
#include "cli.h"

#include "portalock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char cli_probe_usage[] = "Usage: portalock probe PATH [--json]\n";

static const char *cli_tristate(int v, const char *yes, const char *no) {
    return v > 0 ? yes : v == 0 ? no : "unknown";
}

static int cli_probe_print_json(const pl_probe_t *probe) {
    size_t len = 4096;
    int i;
    for (i = 0; i < 4; i++, len *= 4) {
        char *buf = malloc(len);
        int rc;
        if (buf == NULL) {
            fprintf(stderr, "portalock probe: out of memory\n");
            return CLI_EX_FAILURE;
        }
        rc = pl_probe_to_json(probe, buf, len);
        if (rc == PL_OK) {
            printf("%s\n", buf);
            free(buf);
            return 0;
        }
        free(buf);
        if (rc != PL_EINVAL)
            break;
    }
    fprintf(stderr, "portalock probe: cannot format the result as JSON\n");
    return CLI_EX_FAILURE;
}

static void cli_probe_print_text(const char *path, const pl_probe_t *p) {
    char works[128], blocking[128];
    cli_backend_names(p->backends_ok, " ", " ", works, sizeof(works));
    cli_backend_names(p->blocking_ok, " ", " ", blocking, sizeof(blocking));
    printf("path:       %s\n", path);
    printf("fstype:     %s (f_type 0x%llx)\n", p->fstype[0] ? p->fstype : "?",
           (unsigned long long)p->fs_magic);
    printf("network:    %s\n", cli_tristate(p->is_network, "yes", "no"));
    printf("backends:   %s\n", works);
    printf("blocking:   %s\n", blocking);
    printf("coherence:  %s\n",
           cli_tristate(p->cross_mount_coherent,
                        "yes (locks are seen across mounts and clients)",
                        "no (locks are local to this client)"));
    printf("families:   %s\n",
           cli_tristate(p->flock_fcntl_exclude,
                        "flock and fcntl locks exclude each other here",
                        "flock and fcntl locks are independent here"));
    printf("guarantee:  %s\n", p->guarantee);
    if (p->mount_options[0] != '\0')
        printf("mount:      %s %s\n", p->mount_source, p->mount_options);
    if (p->mount_verdict[0] != '\0')
        printf("verdict:    %s\n", p->mount_verdict);
    if (p->mount_advice[0] != '\0')
        printf("advice:     %s\n", p->mount_advice);
}

int cli_probe_main(int argc, char **argv) {
    static const cli_longopt_t longopts[] = {
        {"json", CLI_NO_ARG, 'j'}, {"help", CLI_NO_ARG, 'h'}, {NULL, 0, 0}};
    cli_getopt_t g;
    pl_probe_t probe;
    pl_error_t err;
    int json = 0, c, rc;
    const char *path;

    cli_getopt_init(&g);
    while ((c = cli_getopt(&g, argc, argv, ":jh", longopts)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': fputs(cli_probe_usage, stdout); return 0;
        default:
            return cli_usage_error("probe: unrecognized option '%s'", g.bad);
        }
    }
    if (argc - g.ind != 1)
        return cli_usage_error("probe needs exactly one PATH");
    path = argv[g.ind];
    memset(&probe, 0, sizeof(probe));
    memset(&err, 0, sizeof(err));
    rc = pl_probe(path, &probe, &err);
    if (rc != PL_OK) {
        fprintf(stderr, "portalock probe: %s: %s\n", path,
                err.msg[0] ? err.msg : pl_strerror(rc));
        return CLI_EX_FAILURE;
    }
    if (json)
        return cli_probe_print_json(&probe);
    cli_probe_print_text(path, &probe);
    return fflush(stdout) == 0 ? 0 : CLI_EX_FAILURE;
}

void cli_probe_verdict(const char *lock_path) {
    pl_probe_t probe;
    pl_error_t err;
    const char *sep;
    char *dir;
    char *slash;
    int rc;

    dir = malloc(strlen(lock_path) + 2);
    if (dir == NULL)
        return;
    strcpy(dir, lock_path);
    sep = cli_last_sep(lock_path);
    slash = sep != NULL ? dir + (sep - lock_path) : NULL;
    if (slash == NULL)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    memset(&probe, 0, sizeof(probe));
    memset(&err, 0, sizeof(err));
    rc = pl_probe(dir, &probe, &err);
    if (rc == PL_OK)
        fprintf(stderr, "%s: probe of %s: %s\n", cli_progname, dir,
                probe.guarantee);
    else
        fprintf(stderr, "%s: probe of %s failed: %s\n", cli_progname, dir,
                err.msg[0] ? err.msg : pl_strerror(rc));
    free(dir);
}
