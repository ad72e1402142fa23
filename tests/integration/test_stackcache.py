"""The stack cache (--unwind libunwind, the default) under the real preload,
on tests/integration/stackcache_prog.c: 64 call paths that reach malloc with
the same stack pointer and return address and differ only further out, in a
scrambled order, from two threads, under a frame that changes size with
alloca, from a signal handler, and deeper than the cache holds. Every
path's stack must hold exactly what the program says it allocated there,
with the cache and without it (--unwind libunwind-uncached), and the two
reports must name the same stacks with the same figures. Two more cases
where an old return address lies on the stack where a cache could read it:
a frame that changes size (alloca) under one stack pointer, and a signal
that lands where the interrupted pc is also the word below the stack
pointer; each allocation must stay on the caller that made it."""

import lwtest
from lwtest import Case

LEVELS = 6


def truth(stdout):
    out = {}
    for line in stdout.splitlines():
        f = line.split()
        if f and f[0] == "path":
            out[int(f[1])] = (int(f[2]), int(f[3]))
    return out


def path_of(stack):
    """Decode the path from the frames: leaf, then step functions S6..S0
    (S(l+1) is step_a when bit l is set)."""
    names = [f.get("function") for f in stack.get("frames") or []]
    if "leaf" not in names:
        return None
    i = names.index("leaf")
    steps = names[i + 1:i + 2 + LEVELS]
    if len(steps) != LEVELS + 1 or any(n not in ("step_a", "step_b") for n in steps):
        raise AssertionError(f"not a path: {names}")
    inner_to_outer = steps[:LEVELS]  # S6 .. S1; S0 is always step_a
    path = 0
    for level in range(LEVELS):
        if inner_to_outer[LEVELS - 1 - level] == "step_a":
            path |= 1 << level
    return path


class StackCacheTest(Case):
    def run_mode(self, mode, unwind):
        out = self.tmpdir()
        res = lwtest.leakwatch_run([lwtest.PROGS["stackcache"], mode], out,
                                   run_args=["--unwind", unwind], check_rc=0)
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        return rep, truth(res.stdout.decode())

    def by_path(self, rep):
        got = {}
        for s in rep["stacks"]:
            p = path_of(s)
            if p is None:
                continue
            b, o = got.get(p, (0, 0))
            got[p] = (b + s["inuse_bytes"], o + s["inuse_objects"])
        return got

    def check(self, mode, stacks_per_path):
        shapes = {}
        for unwind in ("libunwind", "libunwind-uncached"):
            rep, want = self.run_mode(mode, unwind)
            self.assertEqual(len(want), 1 << LEVELS)
            self.assertEqual(self.by_path(rep), want, f"{mode}, {unwind}: bytes per path")
            leafs = [s for s in rep["stacks"] if path_of(s) is not None]
            self.assertEqual(len(leafs), (1 << LEVELS) * stacks_per_path, f"{mode}, {unwind}")
            shapes[unwind] = sorted(
                (tuple(f.get("function") or "?" for f in s["frames"]), s["inuse_bytes"],
                 s["inuse_objects"], s["alloc_objects"]) for s in leafs)
        self.assertEqual(shapes["libunwind"], shapes["libunwind-uncached"],
                         f"{mode}: the cache changed a stack")

    def test_same_depth_paths_two_threads(self):
        self.check("paths", 2)  # each path once from main, once from the thread

    def test_frame_that_changes_size(self):
        self.check("alloca", 1)

    def test_allocations_in_a_signal_handler(self):
        self.check("signal", 1)

    def test_stacks_deeper_than_the_cache(self):
        self.check("deep", 1)


class SitesCase(Case):
    """Runs a mode that prints "site NAME OBJECTS" and counts the report's
    blocks per site, with the cache and without it."""
    outermost = False  # a site is the stack's outermost function, not any frame

    def sites(self, mode, unwind):
        out = self.tmpdir()
        res = lwtest.leakwatch_run([lwtest.PROGS["stackcache"], mode], out,
                                   run_args=["--unwind", unwind], check_rc=0)
        want = {}
        for line in res.stdout.decode().splitlines():
            f = line.split()
            if f and f[0] == "site":
                want[f[1]] = int(f[2])
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        got = {}
        for s in rep["stacks"]:
            names = [fr.get("function") or str(fr.get("address"))
                     for fr in s.get("frames") or []]
            if not any(site in names for site in want):
                continue
            for site in ([names[-1]] if self.outermost else [n for n in want if n in names]):
                got[site] = got.get(site, 0) + s["inuse_objects"]
        return want, got

    def check(self, mode, counts):
        for unwind in ("libunwind", "libunwind-uncached"):
            want, got = self.sites(mode, unwind)
            self.assertEqual(want, counts, f"{mode}: the program's own counts")
            self.assertEqual(got, want, f"{mode}, {unwind}: blocks per site")


class StaleReturnAddressTest(SitesCase):
    def test_a_frame_that_changes_size_under_one_stack_pointer(self):
        self.check("alloca2", {"via_short": 100, "via_padded": 1000})

    def test_a_signal_whose_pc_is_also_below_the_stack_pointer(self):
        self.check("sigpc", {"raise_f": 10, "raise_g": 1000})


class WhereAStackEndsTest(SitesCase):
    """A stack libunwind ended by itself (not at the depth asked) must end
    where it ended: the cache checks the word it stopped at. Blocks count
    by the outermost function of their stack, which must be the site."""
    outermost = True

    def test_a_stack_that_ends_at_a_return_address_of_zero(self):
        self.check("lastword", {"tail_body": 10, "tail_outer": 1000})

    def test_coroutines_end_at_their_own_function(self):
        # makecontext's return address has no unwind tables (glibc 2.36):
        # leakwatch gives it some (lib/context.c), so nothing is walked
        # past the coroutine's stack and no unnamed frame ends it
        self.check("ucontext", {"co_a": 1000, "co_b": 1000})


if __name__ == "__main__":
    lwtest.main()
