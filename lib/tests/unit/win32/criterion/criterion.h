/*
 * criterion/criterion.h -- the part of Criterion's API the unit tests use,
 * for the thin single-process runner (runner.c) that runs the very same test
 * sources where Criterion's runner cannot: under Wine, BoxFort cannot spawn
 * a test worker ("Could not spawn test instance"), and Criterion is not
 * packaged for mingw.  This directory comes first on the include path of
 * the Windows unit build only.
 *
 * Differences from Criterion, all visible in the runner's output:
 *   - every test runs in this one process, one after another (Criterion
 *     forks one worker per test): a test cannot rely on fresh globals, and
 *     a crash ends the run (reported by ctest);
 *   - cr_assert / cr_fatal / cr_skip_test leave the test with longjmp, so a
 *     failed assertion in a test skips its remaining statements as usual,
 *     but leaks what the test had open;
 *   - .timeout is not enforced (the ctest TIMEOUT is).
 */
#ifndef PLW_CRITERION_H
#define PLW_CRITERION_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct plw_extra {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int disabled;
    const char *description;
    int signal;
    int exit_code;
    int sentinel_;
};

struct criterion_test {
    const char *name;
    const char *category; /* the suite */
    void (*test)(void);
    struct plw_extra data;
    const char *file;
    struct criterion_test *next;
};

struct criterion_suite {
    const char *name;
    struct plw_extra data;
    struct criterion_suite *next;
};

extern const struct criterion_test *criterion_current_test;

void plw_register_test(struct criterion_test *t);
void plw_register_suite(struct criterion_suite *s);

#define PLW_CAT_(a, b) a##b
#define PLW_CAT(a, b)  PLW_CAT_(a, b)

#define PLW_TEST_(suite, name, ...)                                            \
 static void plw_##suite##_##name##_impl(void);                                \
 static struct criterion_test plw_##suite##_##name##_test =                    \
     {#name,         #suite,   plw_##suite##_##name##_impl,                    \
      {__VA_ARGS__}, __FILE__, NULL};                                          \
 __attribute__((constructor)) static void plw_##suite##_##name##_register(     \
     void) {                                                                   \
  plw_register_test(&plw_##suite##_##name##_test);                             \
 }                                                                             \
 static void plw_##suite##_##name##_impl(void)
#define Test(...) PLW_TEST_(__VA_ARGS__, .sentinel_ = 0)

#define PLW_SUITE_(suite, ...)                                                 \
 static struct criterion_suite plw_##suite##_suite = {                         \
     #suite, {__VA_ARGS__}, NULL};                                             \
 __attribute__((constructor)) static void plw_##suite##_suite_register(void) { \
  plw_register_suite(&plw_##suite##_suite);                                    \
 }                                                                             \
 struct plw_suite_##suite##_end /* swallows the ';' */
#define TestSuite(...) PLW_SUITE_(__VA_ARGS__, .sentinel_ = 0)

/* Assertions: fatal = 1 leaves the test (longjmp), 0 records and goes on.
 * The message arguments end with an extra "" (see cr_assert). */
void plw_fail(int fatal, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void plw_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void plw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define PLW_CHECK_(fatal, cond, ...)                                           \
 do {                                                                          \
  if (!(cond))                                                                 \
   plw_fail(fatal, __FILE__, __LINE__, __VA_ARGS__);                           \
 } while (0)
#define cr_assert(...)    PLW_CHECK_(1, __VA_ARGS__, "")
#define cr_expect(...)    PLW_CHECK_(0, __VA_ARGS__, "")
#define cr_fatal(...)     plw_fail(1, __FILE__, __LINE__, __VA_ARGS__)
#define cr_skip_test(...) plw_skip(__VA_ARGS__)
#define cr_log_info(...)  plw_log(__VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif /* PLW_CRITERION_H */
