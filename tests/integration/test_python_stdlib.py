"""python3 runs modules of its own standard library test suite (test_json,
test_re, test_difflib, test_heapq: ~400 tests) under a bare LD_PRELOAD.
The verbose result of every test is the same as natively (timings, the
random seed and the worker directory aside), the run succeeds, and every
process it leaves a snapshot for (python3, the interpreters the tests start,
with pyenv the shims' shells) has readable, consistent snapshots; the
started python's own reconciles to the byte. Skipped when this python3 has no test package (Debian:
libpython3.11-testsuite); test_real_programs.py still runs a JSON/regex
workload then."""

import os
import re
import subprocess
import unittest

import lwtest
from lwtest import Case

MODULES = ["test_json", "test_re", "test_difflib", "test_heapq"]
VARYING = re.compile(rb"^(== cwd: |Using random seed: |\d+:\d\d:\d\d load avg: |Ran \d+ tests? in "
                     rb"|Total duration: )")


def have_test_package():
    r = subprocess.run(["python3", "-c", "import test.libregrtest, test.test_json, test.test_re"],
                       capture_output=True, env=lwtest.clean_env())
    return r.returncode == 0


class PythonStdlibTest(Case):
    @unittest.skipUnless(have_test_package(), "python3 has no test package "
                         "(Debian: libpython3.11-testsuite); skipping its stdlib tests")
    def test_stdlib_modules(self):
        cmd = ["python3", "-m", "test", "-v", *MODULES]
        native = lwtest.run(cmd, timeout=300)
        out = os.path.join(self.tmpdir(), "snaps")
        pre = lwtest.run(cmd, env=lwtest.preload_env(out), timeout=300)
        self.assertEqual(native.returncode, 0, native.stdout[-3000:])
        self.assertEqual(pre.returncode, 0, pre.stdout[-3000:])

        def stable(b):
            return [l for l in b.splitlines() if not VARYING.match(l)]

        self.assertEqual(stable(pre.stdout), stable(native.stdout))
        self.assertEqual(stable(pre.stderr), stable(native.stderr))
        text = native.stdout.decode()
        self.assertIn("Result: SUCCESS", text)
        ran = sum(int(n) for n in re.findall(r"^Ran (\d+) tests? in", text, re.M))
        self.assertGreater(ran, 300, "fewer tests than expected ran")
        self.assertGreater(len(re.findall(r" \.\.\. ok$", text, re.M)), 300)

        files = lwtest.snapshot_files(out)
        self.assertTrue(files, "no snapshot: was the library preloaded?")
        main = None
        for f in files:
            r = lwtest.report(f, extra=["--top", "1"])
            heap = r["heap"]
            self.assertEqual(heap["inuse_objects"], heap["alloc_objects"] - heap["free_objects"], f)
            if r["process"]["pid"] == pre.pid and r["snapshot"]["trigger"] == "exit":
                self.assertIsNone(main, f"two exit snapshots of pid {pre.pid}")
                main = f
        # the tests start python subprocesses of their own: traced too
        self.assertGreater(len(files), 1)
        self.assertIsNotNone(main, f"no exit snapshot of the python started (pid {pre.pid})")
        rep = lwtest.report(main)
        self.assertTrue(os.path.basename(rep["process"]["exe"]).startswith("python"), rep["process"])
        self.assertReconciles(rep)
        self.assertGreater(rep["heap"]["alloc_objects"], 100000, rep["heap"])


if __name__ == "__main__":
    lwtest.main()
