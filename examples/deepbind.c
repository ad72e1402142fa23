/*
 * deepbind.c - dlopen a library (examples/deepbind_lib.c) and let it
 * allocate 10 blocks of 100 bytes. Usage: deepbind LIB [deep]; with "deep"
 * the library is loaded RTLD_DEEPBIND, so its malloc calls bind to libc
 * inside its own scope and never reach a preloaded malloc (see README,
 * known limitations). Prints "kept 10".
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: deepbind LIB [deep]\n");
        return 2;
    }
    int flags = RTLD_NOW | (argc > 2 && !strcmp(argv[2], "deep") ? RTLD_DEEPBIND : 0);
    void *h = dlopen(argv[1], flags);
    if (!h) {
        fprintf(stderr, "deepbind: %s\n", dlerror());
        return 1;
    }
    void **(*deep_alloc)(int) = (void **(*)(int))dlsym(h, "deep_alloc");
    if (!deep_alloc || !deep_alloc(10)) {
        fprintf(stderr, "deepbind: no deep_alloc\n");
        return 1;
    }
    printf("kept 10\n");
    return 0;
}
