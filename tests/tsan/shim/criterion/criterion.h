/*
 * criterion/criterion.h (shim) - the few Criterion macros the concurrent
 * unit tests use, for builds under ThreadSanitizer. Criterion itself cannot
 * start there: its test arena is mapped at an address TSan reserves
 * ("Could not initialize inheritable arena"). Same test sources, a plain
 * runner (criterion_shim.c): every test in a forked child, like Criterion,
 * the first failed assertion ends that test.
 */
#ifndef LW_CRITERION_SHIM_H
#define LW_CRITERION_SHIM_H

#include <stdbool.h>
#include <stddef.h>

struct cr_shim_cfg {
    void (*init)(void);
    void (*fini)(void);
    const char *description;
    bool disabled;
    double timeout;
};

void cr_shim_register_suite(const char *suite, const struct cr_shim_cfg *cfg);
void cr_shim_register_test(const char *suite, const char *name, void (*fn)(void),
                           const struct cr_shim_cfg *cfg);
__attribute__((noreturn, format(printf, 4, 5))) void
cr_shim_fail(const char *file, int line, const char *expr, const char *fmt, ...);

#define TestSuite(suite, ...)                                                                  \
    static const struct cr_shim_cfg cr_shim_suite_cfg_##suite = {__VA_ARGS__};                 \
    __attribute__((constructor)) static void cr_shim_suite_reg_##suite(void)                   \
    {                                                                                          \
        cr_shim_register_suite(#suite, &cr_shim_suite_cfg_##suite);                            \
    }

#define Test(suite, name, ...)                                                                 \
    static void cr_shim_test_##suite##_##name(void);                                          \
    static const struct cr_shim_cfg cr_shim_cfg_##suite##_##name = {__VA_ARGS__};             \
    __attribute__((constructor)) static void cr_shim_reg_##suite##_##name(void)               \
    {                                                                                          \
        cr_shim_register_test(#suite, #name, cr_shim_test_##suite##_##name,                   \
                              &cr_shim_cfg_##suite##_##name);                                  \
    }                                                                                          \
    static void cr_shim_test_##suite##_##name(void)

/* The message is optional: "" glues to a literal format, or stands alone. */
#define cr_assert(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond))                                                                           \
            cr_shim_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                           \
    } while (0)
#define cr_expect(cond, ...) cr_assert(cond, __VA_ARGS__)
#define cr_assert_not(cond, ...) cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_fail(...) cr_shim_fail(__FILE__, __LINE__, "fail", "" __VA_ARGS__)

/* Ends the test as passed, with the reason on stderr. */
__attribute__((noreturn, format(printf, 1, 2))) void cr_shim_skip(const char *fmt, ...);
#define cr_skip_test(...) cr_shim_skip("" __VA_ARGS__)

#endif
