/*
 * pl_handoff -- handoff latency between two processes: a holder process
 * releases (or is SIGKILLed) while a waiter process is blocked acquiring; the
 * sample is the time from the release (CLOCK_MONOTONIC, read by the holder
 * just before its release call, or by us just before kill) to the moment the
 * waiter's acquire returned (read by the waiter).
 *
 *   pl_handoff --holder SPEC --waiter SPEC --target PATH|CHANNEL
 *              [--n N] [--budget S] [--kill] [--settle-us U]
 *              [--jitter-us U] [--timeout S] [--label TEXT] [--json FILE]
 *              [--holder-target PATH] [--samples]
 *
 * SPEC is an actor (see kit/benchkit.h): raw:flock, ours:flock,
 * oursfd:flock, redis:127.0.0.1:PORT, or cmd:<command> for an external
 * driver (a Python script in bench/drivers/) that speaks the actor protocol.
 * --holder-target lets the holder lock another name for the same file (a
 * second mount of one export): a waiter that acquires while the holder still
 * holds counts as "early" (the mounts' locks are not coherent).
 * --samples adds every sample (ns) to the JSON, for merging runs.
 * Prints one JSON object.  Exit 0 on success, 3 if the measurement failed
 * (the JSON's "error" says why), 2 on a usage error.
 */
#include "benchkit.h"

#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr,
            "usage: pl_handoff --holder SPEC --waiter SPEC --target T [--n N] "
            "[--budget S] [--kill] [--settle-us U] [--jitter-us U] "
            "[--timeout S] [--label TEXT] [--json FILE] "
            "[--holder-target PATH] [--samples]\n");
}

int main(int argc, char **argv) {
    bk_handoff_cfg_t cfg;
    bk_handoff_result_t r;
    bk_stats_t st;
    const char *json = NULL;
    FILE *out = stdout;
    int i, rc, want_samples = 0;

    memset(&cfg, 0, sizeof cfg);
    cfg.holder = "raw:flock";
    cfg.waiter = "ours:flock";
    cfg.rounds = 1000;
    cfg.settle_ns = 100000;
    cfg.wait_timeout = 30;
    cfg.label = "handoff";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--kill") == 0) {
            cfg.kill_holder = 1;
            continue;
        }
        if (strcmp(a, "--samples") == 0) {
            want_samples = 1;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        if (strcmp(a, "--holder") == 0)
            cfg.holder = v;
        else if (strcmp(a, "--waiter") == 0)
            cfg.waiter = v;
        else if (strcmp(a, "--target") == 0)
            cfg.target = v;
        else if (strcmp(a, "--holder-target") == 0)
            cfg.holder_target = v;
        else if (strcmp(a, "--n") == 0)
            cfg.rounds = (size_t)atol(v);
        else if (strcmp(a, "--budget") == 0)
            cfg.budget_s = atof(v);
        else if (strcmp(a, "--settle-us") == 0)
            cfg.settle_ns = (int64_t)(atof(v) * 1000);
        else if (strcmp(a, "--jitter-us") == 0)
            cfg.jitter_ns = (int64_t)(atof(v) * 1000);
        else if (strcmp(a, "--timeout") == 0)
            cfg.wait_timeout = atof(v);
        else if (strcmp(a, "--label") == 0)
            cfg.label = v;
        else if (strcmp(a, "--json") == 0)
            json = v;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (cfg.target == NULL || cfg.rounds == 0) {
        usage();
        return 2;
    }
    if (json != NULL && (out = fopen(json, "w")) == NULL) {
        perror(json);
        return 2;
    }
    rc = bk_handoff_run(&cfg, &r);
    st = bk_stats(&r.samples);
    fprintf(out, "{\"tool\": \"pl_handoff\", \"holder\": ");
    bk_json_str(out, cfg.holder);
    fprintf(out, ", \"holder_target\": ");
    bk_json_str(out, cfg.holder_target ? cfg.holder_target : cfg.target);
    fprintf(out, ", \"waiter\": ");
    bk_json_str(out, cfg.waiter);
    fprintf(out,
            ", \"kill\": %s, \"settle_us\": %.0f, \"jitter_us\": %.0f, "
            "\"timeout_s\": %g, \"early\": %zu, \"not_blocked\": %zu, "
            "\"ok\": %s, \"error\": ",
            cfg.kill_holder ? "true" : "false", (double)cfg.settle_ns / 1e3,
            (double)cfg.jitter_ns / 1e3, cfg.wait_timeout, r.early,
            r.not_blocked, rc == 0 && r.early == 0 ? "true" : "false");
    bk_json_str(out, r.error[0] ? r.error
                     : r.early  ? "waiter acquired before the release"
                                : "");
    fprintf(out, ", \"stats\": ");
    bk_stats_json(out, &st);
    if (want_samples) {
        size_t k;
        fprintf(out, ", \"samples_ns\": [");
        for (k = 0; k < r.samples.n; k++)
            fprintf(out, "%s%lld", k ? ", " : "", (long long)r.samples.v[k]);
        fprintf(out, "]");
    }
    fprintf(out, "}\n");
    if (out != stdout)
        fclose(out);
    bk_samples_free(&r.samples);
    if (rc != 0) {
        fprintf(stderr, "pl_handoff: %s\n", r.error);
        return 3;
    }
    return 0;
}
