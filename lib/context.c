/*
 * context.c - a coroutine made by makecontext ends where an unwinder can
 * tell (see context.h).
 *
 * glibc (2.36, x86-64) starts a context's function with the return address
 * __start_context, which has no unwind information. libunwind looks up
 * the function before it instead and goes on past the top of the
 * coroutine's stack, into whatever lies above: on a stack carved out of
 * the thread's own (a local array), another coroutine's dead frames, where
 * it follows a stale frame pointer and faults (reproduced by
 * tests/integration/stackcache_prog.c, mode ucontext).
 *
 * So before a switch into a context that never ran (setcontext and
 * swapcontext are interposed), the return address makecontext wrote is
 * replaced by lw_context_end: its unwind information says the return
 * address is undefined (as _start's and clone's do: the outermost frame),
 * and its code goes on to __start_context with what __start_context
 * reads unchanged, so a function that returns still resumes uc_link
 * exactly as before. Nothing else of the context changes. The word is
 * replaced only when it holds what glibc's makecontext writes there (the
 * same address every time, learned at start-up from a scratch context,
 * and checked to be the C library's own code), in the layout checked then,
 * and only when the process runs without a shadow stack (whose copy of
 * the return address would then differ).
 */
#include "context.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lw.h"

/* glibc's __start_context, once seen; read by lw_context_end. */
__attribute__((visibility("hidden"), used)) uintptr_t lw_context_next;
static bool on;

/* The nop is the byte before lw_context_end: unwinders look up the
 * function of (return address - 1), which must be this one. On the way
 * out, the context __start_context is about to resume (uc_link, at rbx:
 * glibc's own convention, rbx being callee-saved) gets the same treatment
 * as one entered by setcontext, then __start_context runs as it would
 * have. It uses rbx alone; the call keeps rbx, and the stack pointer
 * (just above the return address, 16-byte aligned: checked at init) is
 * where __start_context would have found it. */
__asm__(".text\n"
        ".p2align 4\n"
        ".type lw_context_end_fn, @function\n"
        "lw_context_end_fn:\n"
        "  .cfi_startproc\n"
        "  .cfi_undefined rip\n"
        "  nop\n"
        ".globl lw_context_end\n"
        ".hidden lw_context_end\n"
        "lw_context_end:\n"
        "  mov (%rbx), %rdi\n"
        "  call lw_context_switching\n"
        "  jmp *lw_context_next(%rip)\n"
        "  .cfi_endproc\n"
        ".size lw_context_end_fn, .-lw_context_end_fn\n");

/* A shadow stack keeps its own copy of each return address (Linux 6.6's
 * ARCH_SHSTK_STATUS; older kernels have none and say EINVAL). */
static bool shadow_stack_on(void)
{
    unsigned long features = 0;
    return syscall(SYS_arch_prctl, 0x5005 /* ARCH_SHSTK_STATUS */, &features) == 0 &&
           (features & 1 /* ARCH_SHSTK_SHSTK */);
}

static void never(void)
{
}

void lw_context_init(void)
{
    /* What glibc's makecontext puts at the new stack pointer: made once
     * on a scratch context. It must be code of the C library itself. */
    typedef void (*make_fn)(ucontext_t *, void (*)(void), int, ...);
    make_fn make = (make_fn)dlsym(RTLD_NEXT, "makecontext");
    static ucontext_t scratch;
    static uint64_t stack[64];
    Dl_info a, b;
    if (!make || shadow_stack_on())
        goto off;
    scratch.uc_stack.ss_sp = stack;
    scratch.uc_stack.ss_size = sizeof stack;
    scratch.uc_link = NULL;
    make(&scratch, never, 0);
    uintptr_t sp = (uintptr_t)scratch.uc_mcontext.gregs[REG_RSP];
    if (((sp + 8) & 15) || sp < (uintptr_t)stack || sp + 16 > (uintptr_t)(stack + 64) ||
        (uintptr_t)scratch.uc_mcontext.gregs[REG_RBX] != sp + 8)
        goto off; /* not the layout lw_context_end knows */
    uintptr_t next = *(const uintptr_t *)sp;
    if (!next || !dladdr((void *)next, &a) || !dladdr((void *)make, &b) || !a.dli_fbase ||
        a.dli_fbase != b.dli_fbase)
        goto off;
    lw_context_next = next;
    on = true;
    return;
off:
    on = false;
}

void lw_context_switching(const ucontext_t *ucp)
{
    if (!on || !ucp)
        return;
    /* A context never run: its stack pointer is at the word makecontext
     * wrote. Any other context's stack pointer is in a frame of code that
     * runs, never at a return into __start_context. */
    uintptr_t sp = (uintptr_t)ucp->uc_mcontext.gregs[REG_RSP];
    if (!(sp & 7) && sp && *(uintptr_t *)sp == lw_context_next)
        *(uintptr_t *)sp = (uintptr_t)lw_context_end;
}
