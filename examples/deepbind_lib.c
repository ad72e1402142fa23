/*
 * deepbind_lib.c - a library that allocates through malloc, loaded by
 * examples/deepbind.c with or without RTLD_DEEPBIND.
 * deep_alloc(n): one array of n pointers plus n blocks of 100 bytes, kept.
 */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void **deep_alloc(int n)
{
    void **v = malloc(sizeof(void *) * (size_t)n);
    if (!v)
        abort();
    for (int i = 0; i < n; i++) {
        v[i] = malloc(100);
        if (!v[i])
            abort();
        memset(v[i], 1, 100);
    }
    return v;
}
