/*
 * empty_preload.c - a shared library that does nothing, preloaded by the
 * `leakwatch run` tests (LEAKWATCH_LIB) so they do not depend on the real
 * libleakwatch.so.
 */
int lwtest_empty_preload_marker;
