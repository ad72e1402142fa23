"""examples/exact_jemalloc (exact.c linked with -ljemalloc) under the
preload: the program keeps allocating with jemalloc (its own counters and
malloc_usable_size say so), and the report is as exact as with glibc.
jemalloc's own mmaps are "allocator" stacks, never counted as the program's."""

import lwtest
from lwtest import Case
from test_exact import ALL_DONTNEED, ALL_FREE, ALL_MAPPED, HEAP, MAPS, check_heap_mode, \
    check_map_mode, run_exact


class JemallocTest(Case):
    def setUp(self):
        if "exact_jemalloc" not in lwtest.PROGS:
            self.skipTest("built without jemalloc")
        self.prog = lwtest.PROGS["exact_jemalloc"]

    def test_still_jemalloc_and_exact(self):
        native = lwtest.run([self.prog, "--report-allocator"], check_rc=0)
        # jemalloc counted the 1 MiB block; its smallest size class is 8
        self.assertEqual(native.stdout,
                         b"allocator jemalloc thread.allocated+=1048576\nusable_size(1)=8\n")
        rep = run_exact(self, self.prog, ["--report-allocator", "all"])
        self.assertEqual(rep["_stdout"], native.stdout,
                         "under the preload malloc must still be jemalloc's")
        for mode in HEAP:
            with self.subTest(mode=mode):
                check_heap_mode(self, rep, mode)
        for mode in MAPS:
            with self.subTest(mode=mode):
                check_map_mode(self, rep, mode)
        mm = lwtest.stacks_of_kind(rep, "mmap")
        self.assertEqual(sum(s["inuse_bytes"] for s in mm), ALL_MAPPED)
        self.assertGreaterEqual(rep["mappings"]["madv_free_bytes"], ALL_FREE)
        self.assertGreaterEqual(rep["mappings"]["madv_dontneed_bytes"], ALL_DONTNEED)
        # jemalloc maps its extents from inside malloc: seen, as "allocator"
        alloc = lwtest.stacks_of_kind(rep, "allocator")
        self.assertTrue(alloc, "jemalloc's mmaps were not recorded as allocator stacks")
        self.assertGreater(sum(s["inuse_bytes"] for s in alloc), 0)

    def test_realloc_zero(self):
        rep = run_exact(self, self.prog, ["realloc_zero", "churn"])
        check_heap_mode(self, rep, "realloc_zero")
        check_heap_mode(self, rep, "churn")


if __name__ == "__main__":
    lwtest.main()
