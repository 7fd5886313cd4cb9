/*
 * test_errors.c -- pl_strerror, pl_err_name, PL_IS_ALREADY_LOCKED and
 * pl_version against the PL_ERR_MAP table.
 */
#include "helpers.h"

#include <string.h>

typedef struct entry {
    int code;
    const char *name;
    const char *msg;
} entry_t;

#define PLT_ENTRY(name, code, msg) {code, "PL_" #name, msg},
static const entry_t table[] = {PL_ERR_MAP(PLT_ENTRY)};
#undef PLT_ENTRY
#define N_ENTRIES ((int)(sizeof(table) / sizeof(table[0])))

TestSuite(errors, .timeout = 10.);

Test(errors, every_code_has_its_message) {
    cr_assert(eq(int, N_ENTRIES, 23));
    for (int i = 0; i < N_ENTRIES; i++)
        cr_expect(
            eq(str, (char *)pl_strerror(table[i].code), (char *)table[i].msg),
            "pl_strerror(%d)", table[i].code);
}

Test(errors, every_code_has_its_name) {
    for (int i = 0; i < N_ENTRIES; i++)
        cr_expect(
            eq(str, (char *)pl_err_name(table[i].code), (char *)table[i].name),
            "pl_err_name(%d)", table[i].code);
}

Test(errors, codes_are_distinct_small_negatives) {
    for (int i = 0; i < N_ENTRIES; i++) {
        cr_expect(lt(int, table[i].code, 0));
        cr_expect(eq(int, table[i].code, -(i + 1)), "%s", table[i].name);
        for (int j = 0; j < i; j++)
            cr_expect(ne(int, table[i].code, table[j].code));
    }
}

Test(errors, enum_values_match_the_table) {
    cr_expect(eq(int, PL_OK, 0));
    cr_expect(eq(int, PL_EINVAL, -1));
    cr_expect(eq(int, PL_ELOCKED, -2));
    cr_expect(eq(int, PL_ETIMEDOUT, -3));
    cr_expect(eq(int, PL_EFORKED, -14));
    cr_expect(eq(int, PL_EHELD, -20));
    cr_expect(eq(int, PL_EUPGRADE, -21));
    cr_expect(eq(int, PL_EBUSY, -22));
    cr_expect(eq(int, PL_EINTR, -23));
}

Test(errors, success_is_described) {
    cr_expect(eq(str, (char *)pl_err_name(PL_OK), "PL_OK"));
    cr_expect(eq(str, (char *)pl_strerror(PL_OK), "success"));
}

Test(errors, unknown_codes_are_never_null) {
    const int unknown[] = {1,    5,     -(N_ENTRIES + 1),
                           -100, 12345, -2147483647 - 1};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        const char *s = pl_strerror(unknown[i]);
        const char *n = pl_err_name(unknown[i]);
        cr_assert(s != NULL && n != NULL);
        cr_expect(eq(str, (char *)s, "unknown error"), "code %d", unknown[i]);
        cr_expect(eq(str, (char *)n, "PL_EUNKNOWN"), "code %d", unknown[i]);
    }
}

Test(errors, already_locked_means_elocked_or_etimedout) {
    cr_expect(eq(int, PL_IS_ALREADY_LOCKED(PL_ELOCKED), 1));
    cr_expect(eq(int, PL_IS_ALREADY_LOCKED(PL_ETIMEDOUT), 1));
    for (int i = 0; i < N_ENTRIES; i++) {
        int c = table[i].code;
        if (c != PL_ELOCKED && c != PL_ETIMEDOUT)
            cr_expect(eq(int, PL_IS_ALREADY_LOCKED(c), 0), "%s", table[i].name);
    }
    cr_expect(eq(int, PL_IS_ALREADY_LOCKED(PL_OK), 0));
}

Test(errors, version_matches_the_macros) {
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", PL_VERSION_MAJOR, PL_VERSION_MINOR,
             PL_VERSION_PATCH);
    cr_expect(eq(str, (char *)pl_version(), want));
    cr_expect(eq(str, (char *)pl_version(), PL_VERSION_STRING));
}
