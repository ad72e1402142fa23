"""examples/exact under the preload: exact live/allocated numbers per named
function for every interposed API, one process per mode and all modes in
one process; totals reconcile with the stacks. The numbers mirror the
comment at the top of examples/exact.c."""

import os

import lwtest
from lwtest import PAGE, Case, by_function

# mode -> (function, kind, inuse objects, inuse bytes, alloc objects, alloc bytes)
# None: not asserted. realloc counts as a new allocation plus a free of the
# old block (as heaptrack and jemalloc's profiler do): 20 mallocs of 8 bytes
# and 80 reallocs to 16, 64, 1000 and 5000 bytes.
HEAP = {
    "malloc": ("leak_malloc", 100, 4800, 100, 4800),
    "calloc": ("leak_calloc", 50, 10000, 50, 10000),
    "realloc": ("leak_realloc", 20, 100000, 100, 20 * (8 + 16 + 64 + 1000 + 5000)),
    "reallocarray": ("leak_reallocarray", 30, 3360, 30, 3360),
    "posix_memalign": ("leak_posix_memalign", 10, 1000, 10, 1000),
    "aligned_alloc": ("leak_aligned_alloc", 10, 5120, 10, 5120),
    "memalign": ("leak_memalign", 10, 3000, 10, 3000),
    "valloc": ("leak_valloc", 5, 5000, 5, 5000),
    "pvalloc": ("leak_pvalloc", 4, 8 * PAGE, 4, 8 * PAGE),
    "realloc_zero": ("realloc_zero", 0, 0, 25, 2500),
    "churn": ("churn", 0, 0, 1000, 264160),
    "cross_thread": ("xt_alloc", 32, 3072, 64, 6144),
}

# mode -> (function, live mappings, live bytes, mapped, MADV_FREE, MADV_DONTNEED
#          bytes of the process when the mode runs alone)
MAPS = {
    "map_keep": ("map_keep", 3, 48 * PAGE, 48 * PAGE, 0, 0),
    "map_punch": ("map_punch", 1, 12 * PAGE, 12 * PAGE, 0, 0),
    "map_grow": ("map_grow", 1, 6 * PAGE, 6 * PAGE, 0, 0),
    "release_free": ("release_free", 1, 64 * PAGE, 64 * PAGE, 32 * PAGE, 0),
    "release_dontneed": ("release_dontneed", 1, 64 * PAGE, 64 * PAGE, 0, 16 * PAGE),
}
ALL_MAPPED, ALL_FREE, ALL_DONTNEED = 194 * PAGE, 32 * PAGE, 16 * PAGE
# MADV_FREE'd pages stay resident without memory pressure; mincore may
# lag by a few pages, so allow 1/8 below the exact figure.
RESIDENT_SLACK = 8


def run_exact(case, prog, args):
    """Run prog under `leakwatch run`, return the JSON report of its exit snapshot."""
    out = os.path.join(case.tmpdir(), "snaps")  # does not exist yet: run creates it
    res = lwtest.leakwatch_run([prog, *args], out, check_rc=0)
    files = lwtest.snapshot_files(out)
    case.assertEqual(len(files), 1, f"one process, one exit snapshot: {files}")
    rep = lwtest.report(out)
    case.assertEqual(rep["format"], "leakwatch-report/1")
    case.assertEqual(rep["snapshot"]["trigger"], "exit")
    case.assertEqual(rep["snapshot"]["seq"], 0)
    case.assertEqual(rep["process"]["cmdline"], [prog, *args])
    case.assertEqual(os.path.realpath(rep["process"]["exe"]), os.path.realpath(prog))
    case.assertReconciles(rep)
    rep["_stdout"] = res.stdout
    return rep


def check_heap_mode(case, rep, mode):
    fn, io, ib, ao, ab = HEAP[mode]
    case.assertFunction(rep, fn, "heap", io, ib, ao, ab)


def check_map_mode(case, rep, mode):
    fn, objs, nbytes = MAPS[mode][:3]
    case.assertFunction(rep, fn, "mmap", objs, nbytes)
    if mode == "map_grow":
        for helper in ("map_blocker", "map_scratch"):
            agg = by_function(rep, helper)
            case.assertEqual((agg.inuse_objects, agg.inuse_bytes), (0, 0), f"{helper}: {agg}")
        case.assertGreater(by_function(rep, "map_scratch").alloc_objects, 0)


class ExactTest(Case):
    def setUp(self):
        self.prog = lwtest.PROGS["exact"]

    def test_each_heap_api_alone(self):
        for mode in HEAP:
            with self.subTest(mode=mode):
                rep = run_exact(self, self.prog, [mode])
                check_heap_mode(self, rep, mode)
                self.assertEqual(rep["mappings"]["mapped_bytes"], 0)

    def test_each_mapping_call_alone(self):
        for mode, (fn, objs, nbytes, mapped, free, dontneed) in MAPS.items():
            with self.subTest(mode=mode):
                rep = run_exact(self, self.prog, [mode])
                check_map_mode(self, rep, mode)
                m = rep["mappings"]
                self.assertEqual(m["mapped_bytes"], mapped)
                self.assertEqual(m["madv_free_bytes"], free)
                self.assertEqual(m["madv_dontneed_bytes"], dontneed)
                self.assertLessEqual(m["released_resident_bytes"], free)
                self.assertGreaterEqual(m["released_resident_bytes"], free - free // RESIDENT_SLACK)

    def test_realloc_zero_leaves_nothing(self):
        rep = run_exact(self, self.prog, ["realloc_zero"])
        agg = by_function(rep, "realloc_zero")
        self.assertEqual((agg.inuse_objects, agg.inuse_bytes), (0, 0), agg)
        # the 25 mallocs were seen, and so were the 25 frees by realloc(p, 0)
        self.assertEqual(agg.alloc_objects, 25, agg)
        self.assertGreaterEqual(rep["heap"]["free_objects"], 25)

    def test_all_in_one_process(self):
        rep = run_exact(self, self.prog, ["all"])
        for mode in HEAP:
            with self.subTest(mode=mode):
                check_heap_mode(self, rep, mode)
        for mode in MAPS:
            with self.subTest(mode=mode):
                check_map_mode(self, rep, mode)
        m = rep["mappings"]
        self.assertEqual(m["mapped_bytes"], ALL_MAPPED)
        self.assertEqual(m["madv_free_bytes"], ALL_FREE)
        self.assertEqual(m["madv_dontneed_bytes"], ALL_DONTNEED)
        self.assertGreaterEqual(m["released_resident_bytes"], ALL_FREE - ALL_FREE // RESIDENT_SLACK)
        # glibc's own mmaps are internal calls: no allocator-kind stacks
        self.assertEqual(lwtest.stacks_of_kind(rep, "allocator"), [])
        self.assertEqual(rep["_stdout"], b"")

    def test_depth_option_limits_frames(self):
        out = os.path.join(self.tmpdir(), "snaps")
        lwtest.leakwatch_run([self.prog, "malloc"], out, ["--depth", "2"], check_rc=0)
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        # at most 2 return addresses per stack (inlined frames share one)
        for s in rep["stacks"]:
            self.assertLessEqual(len({f["address"] for f in s["frames"]}), 2, s)
        self.assertFunction(rep, "leak_malloc", "heap", 100, 4800, 100, 4800)
        for s in rep["stacks"]:
            if lwtest.frame0(s) == "leak_malloc":
                self.assertEqual([f["function"] for f in s["frames"]], ["leak_malloc", "main"])


if __name__ == "__main__":
    lwtest.main()
