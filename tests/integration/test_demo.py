"""examples/demo (what scripts/demo shows): the top stack is cache_insert,
1000 blocks of 1 KiB; handle_request churns but keeps nothing."""

import os

import lwtest
from lwtest import Case


class DemoTest(Case):
    def test_top_stack_is_the_leak(self):
        prog = lwtest.PROGS["demo"]
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.leakwatch_run([prog], out, check_rc=0)
        self.assertEqual(res.stdout,
                         b"demo: handled 2000 requests, 1000 cached responses (checksum 74890)\n")
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        top = rep["stacks"][0]
        self.assertEqual(lwtest.frame0(top), "cache_insert", top)
        self.assertEqual((top["inuse_objects"], top["inuse_bytes"]), (1000, 1024000))
        self.assertTrue(top["frames"][0]["file"].endswith("demo.c"), top["frames"][0])
        self.assertGreater(top["frames"][0]["line"], 0)
        self.assertFunction(rep, "handle_request", "heap", 0, 0, 4000)
        # nothing lost: leakwatch's own calls are not counted as the program's
        self.assertEqual(rep["dropped"], {"blocks": 0, "bytes": 0, "stacks": 0, "regions": 0,
                                          "unwind_failures": 0, "stale_blocks": 0,
                                          "reentrant_calls": 0})
        # the text report names the leaking function first among stacks
        text = lwtest.run([lwtest.TOOL, "report", "--top", "1", out], check_rc=0).stdout.decode()
        self.assertIn("cache_insert", text)
        self.assertNotIn("handle_request", text)


if __name__ == "__main__":
    lwtest.main()
