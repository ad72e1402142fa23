"""`leakwatch report --format pprof` read by the real `go tool pprof`
(Debian golang-go): -top, -traces, tag filters and -diff_base between two
of our profiles, with the numbers checked against our JSON report of the
same snapshot. Skips, saying so, where go is not installed."""

import gzip
import os
import re
import shutil
import unittest

import lwtest
from lwtest import Case

GO = shutil.which("go")


def pprof(*args):
    """`go tool pprof ARGS` (no browser, no network, no symbolization)."""
    env = lwtest.clean_env(PPROF_TMPDIR=os.environ.get("TMPDIR", "/tmp"),
                           PPROF_BINARY_PATH="/nonexistent", HOME=os.environ.get("HOME", "/tmp"))
    res = lwtest.run([GO, "tool", "pprof", "-symbolize=none", *args], env=env, timeout=180)
    if res.returncode != 0:
        raise AssertionError(f"go tool pprof {args!r} exited {res.returncode}: {res.stderr[-2000:]!r}")
    return res.stdout.decode()


def flat_bytes(top_text):
    """{function: flat bytes} from `pprof -top -unit=byte`."""
    out = {}
    for line in top_text.splitlines():
        m = re.match(r"\s*(-?\d+)B?\s+[-\d.]+%\s+[-\d.]+%\s+(-?\d+)B?\s+[-\d.]+%\s+(.+)$", line)
        if m:
            # pprof marks a function inlined into its caller " (inline)"
            name = m.group(3).strip().removesuffix(" (inline)")
            out[name] = out.get(name, 0) + int(m.group(1))
    return out


@unittest.skipUnless(GO, "go not installed (Debian golang-go): go tool pprof tests skipped")
class PprofTest(Case):
    def profile(self, modes):
        """Run `exact MODES` under the preload; return (pprof file, JSON report)."""
        d = self.tmpdir()
        snaps = os.path.join(d, "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["exact"], *modes], snaps, check_rc=0)
        out = os.path.join(d, "heap.pb.gz")
        res = lwtest.run([lwtest.TOOL, "report", "--format", "pprof", "-o", out, snaps], check_rc=0)
        self.assertEqual(res.stdout, b"")
        with open(out, "rb") as f:
            raw = f.read()
        self.assertEqual(raw[:2], b"\x1f\x8b", "not gzip")
        self.assertGreater(len(gzip.decompress(raw)), 100)
        return out, lwtest.report(snaps)

    def test_top_matches_json(self):
        prof, rep = self.profile(["all"])
        # JSON: bytes in use summed by innermost function (pprof's "flat").
        want = {}
        for st in rep["stacks"]:
            fn = lwtest.frame0(st)
            if fn and st["inuse_bytes"]:
                want[fn] = want.get(fn, 0) + st["inuse_bytes"]
        top = pprof("-top", "-unit=byte", "-nodefraction=0", "-edgefraction=0", "-nodecount=1000",
                    prof)
        self.assertIn("Type: inuse_space", top)  # the default sample type
        got = flat_bytes(top)
        for fn in ("leak_malloc", "leak_calloc", "leak_realloc", "map_keep", "release_free"):
            self.assertEqual(got.get(fn), want[fn], f"{fn}: pprof {got.get(fn)} vs JSON {want[fn]}\n{top}")
        self.assertEqual(got["leak_malloc"], 4800)
        self.assertEqual(got["leak_realloc"], 100000)
        self.assertEqual(got["map_keep"], 48 * lwtest.PAGE)
        # The top function by flat bytes is the JSON's biggest function (ties allowed).
        first = next(fn for fn in got if got[fn] > 0)
        self.assertEqual(got[first], max(want.values()), top)
        # Every function JSON names appears with the same bytes.
        for fn, b in want.items():
            self.assertEqual(got.get(fn, 0), b, f"{fn}\n{top}")

        # Other sample types: objects in use, bytes ever allocated.
        objs = flat_bytes(pprof("-top", "-sample_index=inuse_objects", "-nodefraction=0",
                                "-nodecount=1000", prof))
        self.assertEqual(objs["leak_malloc"], 100)
        self.assertEqual(objs["leak_calloc"], 50)
        alloc = flat_bytes(pprof("-top", "-sample_index=alloc_space", "-unit=byte",
                                 "-nodefraction=0", "-nodecount=1000", prof))
        self.assertEqual(alloc["churn"], 264160)

    def test_traces_and_kind_labels(self):
        prof, rep = self.profile(["malloc", "release_free"])
        traces = pprof("-traces", "-unit=byte", prof)
        self.assertRegex(traces, r"kind:\s+heap")
        self.assertRegex(traces, r"kind:\s+madv_free")
        self.assertRegex(traces, rf"pid:\s+{rep['process']['pid']}\n")
        self.assertIn("trigger: exit", traces)
        # A trace: bytes, then frames innermost first.
        self.assertRegex(traces, r"4800B\s+leak_malloc\n\s+main")
        # MADV_FREE bytes of release_free are a sample of their own (32 pages).
        free_only = flat_bytes(pprof("-top", "-unit=byte", "-tagfocus=kind=madv_free", prof))
        self.assertEqual(free_only.get("release_free"), 32 * lwtest.PAGE, free_only)
        self.assertEqual(sum(free_only.values()), 32 * lwtest.PAGE, free_only)
        heap_only = flat_bytes(pprof("-top", "-unit=byte", "-tagfocus=kind=heap",
                                     "-nodefraction=0", prof))
        self.assertEqual(heap_only.get("leak_malloc"), 4800)
        self.assertNotIn("release_free", heap_only)
        # Mapping is kept: release_free's whole 64 pages under kind=mmap + madv_free.
        both = flat_bytes(pprof("-top", "-unit=byte", "-tagfocus=kind=mmap|madv_free", prof))
        self.assertEqual(both["release_free"], 64 * lwtest.PAGE)

    def test_diff_base(self):
        base, _ = self.profile(["malloc"])
        new, _ = self.profile(["malloc", "calloc"])
        diff = pprof("-top", "-unit=byte", "-nodefraction=0", "-diff_base", base, new)
        got = flat_bytes(diff)
        self.assertEqual(got.get("leak_calloc"), 10000, diff)
        self.assertEqual(got.get("leak_malloc", 0), 0, diff)  # same in both


class PprofTerminalTest(Case):
    def test_binary_refused_on_a_terminal(self):
        """No gzip on a terminal: usage error naming -o; a pipe or -o is fine."""
        import pty
        import subprocess
        d = self.tmpdir()
        snaps = os.path.join(d, "snaps")
        lwtest.leakwatch_run([lwtest.PROGS["exact"], "malloc"], snaps, check_rc=0)
        master, slave = pty.openpty()
        try:
            res = subprocess.run([lwtest.TOOL, "report", "--format", "pprof", snaps], stdout=slave,
                                 stderr=subprocess.PIPE, env=lwtest.clean_env(), timeout=60)
        finally:
            os.close(slave)
            os.close(master)
        self.assertEqual(res.returncode, 2)
        self.assertEqual(res.stderr, b"leakwatch: report: --format pprof writes binary data: give "
                                     b"-o FILE (or redirect standard output)\n")
        piped = lwtest.run([lwtest.TOOL, "report", "--format", "pprof", snaps], check_rc=0)
        self.assertEqual(piped.stdout[:2], b"\x1f\x8b")
        self.assertIn(b"leak_malloc", gzip.decompress(piped.stdout))


if __name__ == "__main__":
    lwtest.main()
