/*
 * criterion/new/assert.h -- Criterion's new-style criteria used by the unit
 * tests (eq, ne, lt, le, gt, ge over int, long, uint, u64, sz, chr, dbl, ptr,
 * str), for the thin runner (see ../criterion.h).  Each evaluates its
 * operands once and, when false, records "a == b: 3 vs 4" for the failure
 * message.
 */
#ifndef PLW_NEW_ASSERT_H
#define PLW_NEW_ASSERT_H

#include <stdint.h>

enum plw_op { PLW_EQ, PLW_NE, PLW_LT, PLW_LE, PLW_GT, PLW_GE };

int plw_cmp_i(long long a, long long b, enum plw_op op, const char *sa,
              const char *sb);
int plw_cmp_u(unsigned long long a, unsigned long long b, enum plw_op op,
              const char *sa, const char *sb);
int plw_cmp_d(double a, double b, enum plw_op op, const char *sa,
              const char *sb);
int plw_cmp_p(const void *a, const void *b, enum plw_op op, const char *sa,
              const char *sb);
int plw_cmp_s(const char *a, const char *b, enum plw_op op, const char *sa,
              const char *sb);

#define PLW_T_int(a, b, op)                                                    \
 plw_cmp_i((long long)(a), (long long)(b), op, #a, #b)
#define PLW_T_long(a, b, op)                                                   \
 plw_cmp_i((long long)(a), (long long)(b), op, #a, #b)
#define PLW_T_chr(a, b, op)                                                    \
 plw_cmp_i((long long)(a), (long long)(b), op, #a, #b)
#define PLW_T_uint(a, b, op)                                                   \
 plw_cmp_u((unsigned long long)(a), (unsigned long long)(b), op, #a, #b)
#define PLW_T_u64(a, b, op) PLW_T_uint(a, b, op)
#define PLW_T_sz(a, b, op)  PLW_T_uint(a, b, op)
#define PLW_T_dbl(a, b, op) plw_cmp_d((double)(a), (double)(b), op, #a, #b)
#define PLW_T_ptr(a, b, op)                                                    \
 plw_cmp_p((const void *)(a), (const void *)(b), op, #a, #b)
#define PLW_T_str(a, b, op)                                                    \
 plw_cmp_s((const char *)(a), (const char *)(b), op, #a, #b)

#define eq(T, a, b) PLW_T_##T(a, b, PLW_EQ)
#define ne(T, a, b) PLW_T_##T(a, b, PLW_NE)
#define lt(T, a, b) PLW_T_##T(a, b, PLW_LT)
#define le(T, a, b) PLW_T_##T(a, b, PLW_LE)
#define gt(T, a, b) PLW_T_##T(a, b, PLW_GT)
#define ge(T, a, b) PLW_T_##T(a, b, PLW_GE)

#endif /* PLW_NEW_ASSERT_H */
