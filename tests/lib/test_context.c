/* Coroutines made by makecontext (lib/context.c): once switched to, a
 * context's function returns into lw_context_end, where libunwind stops;
 * the function still returns to uc_link, and a context reached through
 * uc_link (never switched to by anyone) is treated on the way. Switches go
 * through the real swapcontext here (no hooks in unit tests): the test
 * calls lw_context_switching itself, as the hook does. */
#include <criterion/criterion.h>
#include <libunwind.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include "context.h"

static ucontext_t main_ctx, first, second;
static uint64_t stack1[2048], stack2[2048];
static void *outermost[2];
static int depth[2], ran[2];

/* The last frame libunwind finds from here. */
static __attribute__((noinline)) void note_stack(int k)
{
    void *buf[64];
    int n = unw_backtrace(buf, 64);
    depth[k] = n;
    outermost[k] = n > 0 ? buf[n - 1] : NULL;
    ran[k]++;
}

static void run_first(void)
{
    note_stack(0);
    __asm__ volatile("" ::: "memory"); /* not a tail call: run_first stays a frame */
} /* returns: on to uc_link, the second context, never switched to */

static void run_second(void)
{
    note_stack(1);
    __asm__ volatile("" ::: "memory");
} /* returns: on to main_ctx */

static void make(ucontext_t *c, uint64_t *stack, size_t size, ucontext_t *link, void (*fn)(void))
{
    cr_assert_eq(getcontext(c), 0);
    c->uc_stack.ss_sp = stack;
    c->uc_stack.ss_size = size;
    c->uc_link = link;
    makecontext(c, fn, 0);
}

Test(context, a_coroutine_ends_at_lw_context_end_and_returns_to_uc_link)
{
    lw_context_init();
    memset(stack1, 0x5a, sizeof stack1);
    memset(stack2, 0x5a, sizeof stack2);
    make(&second, stack2, sizeof stack2, &main_ctx, run_second);
    make(&first, stack1, sizeof stack1, &second, run_first);
    uintptr_t *ra = (uintptr_t *)first.uc_mcontext.gregs[REG_RSP];
    uintptr_t made = *ra;
    lw_context_switching(&first);
    cr_assert_eq(*ra, (uintptr_t)lw_context_end, "the return address makecontext wrote is replaced");
    lw_context_switching(&first); /* again: nothing more changes */
    cr_assert_eq(*ra, (uintptr_t)lw_context_end);
    uintptr_t *ra2 = (uintptr_t *)second.uc_mcontext.gregs[REG_RSP];
    cr_assert_eq(*ra2, made, "the second context is left alone until it is reached");

    cr_assert_eq(swapcontext(&main_ctx, &first), 0);
    /* back here: first returned, lw_context_end resumed second, second
     * returned to main_ctx */
    cr_assert_eq(ran[0], 1);
    cr_assert_eq(ran[1], 1);
    cr_assert_eq(outermost[0], (void *)lw_context_end, "the stack ends at lw_context_end");
    cr_assert_eq(outermost[1], (void *)lw_context_end, "so does one reached through uc_link");
    /* note_stack, run_first, lw_context_end */
    cr_assert_eq(depth[0], 3, "depth %d", depth[0]);
    cr_assert_eq(depth[1], 3, "depth %d", depth[1]);
}

Test(context, a_context_that_already_ran_is_not_touched)
{
    lw_context_init();
    ucontext_t here;
    cr_assert_eq(getcontext(&here), 0);
    uintptr_t *sp = (uintptr_t *)here.uc_mcontext.gregs[REG_RSP];
    uintptr_t before = *sp;
    lw_context_switching(&here);
    cr_assert_eq(*sp, before);
    lw_context_switching(NULL);
}
