/*
 * static_hello.c - linked with -static for the `leakwatch run` static
 * detection test; it must never actually run under leakwatch.
 */
#include <stdio.h>

int main(void)
{
    puts("static hello");
    return 0;
}
