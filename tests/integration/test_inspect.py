"""`leakwatch inspect PID`, no preload: on a running examples/madv_free
(LazyFree shows the 192 MiB released), on a real Go runtime releasing its
heap with MADV_FREE (GODEBUG=madvdontneed=0; skipped without `go`), on a
process that does not exist (exit 1, one line) and on bad usage (exit 2)."""

import json
import os
import shutil
import subprocess
import time

import lwtest
from lwtest import Case

MIB = 1024 * 1024


def inspect(pid, *extra, check_rc=0):
    res = lwtest.run([lwtest.TOOL, "inspect", "--format", "json", *extra, str(pid)],
                     check_rc=check_rc)
    return res


def line(rep, name):
    return next(w for w in rep["waterfall"] if w["name"] == name)


class Running:
    """A child process, killed at the end of the test."""

    def __init__(self, case, cmd, env=None):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env if env is not None else lwtest.clean_env())
        case.addCleanup(self.stop)

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate()


class InspectTest(Case):
    def wait_lazyfree(self, pid, want):
        """inspect until LazyFree reaches 90% of want (the call lags a few
        pages); bounded."""
        deadline = time.monotonic() + 20
        while True:
            rep = json.loads(inspect(pid).stdout)
            lazy = rep["process_memory"]["lazyfree_bytes"]
            if lazy >= want * 9 // 10 or time.monotonic() > deadline:
                return rep
            time.sleep(0.1)

    def test_running_example(self):
        proc = Running(self, [lwtest.PROGS["madv_free"], "60000"])
        rep = self.wait_lazyfree(proc.p.pid, 192 * MIB)
        self.assertEqual(rep["format"], "leakwatch-inspect/1")
        self.assertEqual(rep["process"]["pid"], proc.p.pid)
        lazy = rep["process_memory"]["lazyfree_bytes"]
        self.assertLessEqual(abs(lazy - 192 * MIB), 192 * MIB // 10, lazy)
        self.assertEqual(line(rep, "released_resident")["bytes"], lazy)
        self.assertEqual(rep["largest_part"], "released_resident")
        names = [w["name"] for w in rep["waterfall"]]
        self.assertNotIn("heap_in_use", names)  # no preload: no heap lines
        self.assertEqual(names[:2], ["anon_in_use", "released_resident"])
        # anon in use = anon - LazyFree: the 64 MiB kept + the heap + the rest
        anon_in_use = line(rep, "anon_in_use")["bytes"]
        self.assertEqual(anon_in_use, rep["process_memory"]["anon_bytes"] - lazy)
        self.assertGreaterEqual(anon_in_use, 64 * MIB)
        self.assertLess(anon_in_use, 100 * MIB)
        for key in ("process_memory", "cgroup", "page_cache", "waterfall"):
            self.assertIn(key, rep)
        # --watch: one JSON document per sample, the second with growth
        res = inspect(proc.p.pid, "--watch", "1", "--count", "2")
        docs = [json.loads(l) for l in res.stdout.decode().splitlines()]
        self.assertEqual(len(docs), 2)
        self.assertNotIn("growth", docs[0])
        grown = {g["name"]: g["delta_bytes"] for g in docs[1]["growth"]}
        self.assertLess(abs(grown["released_resident"]), 1 * MIB)  # LazyFree lags a few pages
        self.assertIn(docs[1]["largest_growth"], (None, "anon_in_use", "released_resident", "page_cache"))
        text = lwtest.run([lwtest.TOOL, "inspect", str(proc.p.pid)], check_rc=0).stdout.decode()
        self.assertIn("The largest part is released but resident", text)

    def test_no_such_process(self):
        res = inspect(4194400, check_rc=1)  # above the default pid_max
        self.assertEqual(res.stdout, b"")
        self.assertEqual(res.stderr.decode(),
                         "leakwatch: inspect: no process 4194400 (/proc/4194400 does not exist)\n")

    def test_usage(self):
        for args in ([], ["abc"], ["1", "2"], ["--count", "2", "1"], ["--format", "xml", "1"]):
            res = lwtest.run([lwtest.TOOL, "inspect", *args])
            self.assertEqual(res.returncode, 2, args)
            self.assertEqual(len(res.stderr.decode().splitlines()), 1, res.stderr)

    def build_go(self):
        go = shutil.which("go")
        src = os.environ.get("LW_GO_SRC")
        out = os.environ.get("LW_GO_OUT")
        if not go or not src or not out:
            self.skipTest("go is not installed (Debian: golang-go); the Go scenario is not run")
        os.makedirs(out, exist_ok=True)
        exe = os.path.join(out, "lazyfree")
        env = lwtest.clean_env(GOCACHE=os.path.join(out, "cache"),
                               GOPATH=os.path.join(out, "gopath"),
                               GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local")
        lwtest.run([go, "build", "-o", exe, "."], cwd=src, env=env, check_rc=0, timeout=300)
        return exe

    def go_run(self, exe, madvdontneed):
        proc = Running(self, [exe, "256", "60"],
                       env=lwtest.clean_env(GODEBUG=f"madvdontneed={madvdontneed}"))
        ready = proc.p.stdout.readline().decode().split()
        self.assertEqual(ready[0], "ready", ready)
        return proc, int(ready[1]), int(ready[2])

    def test_go_runtime_madv_free(self):
        exe = self.build_go()
        proc, heap_inuse, released = self.go_run(exe, 0)
        self.assertLess(heap_inuse, 4 * MIB)  # the runtime's own view: heap tiny
        self.assertGreaterEqual(released, 250 * MIB)
        rep = self.wait_lazyfree(proc.p.pid, 256 * MIB)
        lazy = rep["process_memory"]["lazyfree_bytes"]
        self.assertLessEqual(abs(lazy - 256 * MIB), 256 * MIB // 10, lazy)
        self.assertGreaterEqual(rep["process_memory"]["rss_bytes"], 256 * MIB)
        self.assertEqual(rep["largest_part"], "released_resident")
        self.assertIn("GODEBUG=madvdontneed=1", line(rep, "released_resident")["note"])
        proc.stop()
        # the fix: MADV_DONTNEED, RSS follows the heap
        proc, _, _ = self.go_run(exe, 1)
        rep = json.loads(inspect(proc.p.pid).stdout)
        self.assertLess(rep["process_memory"]["lazyfree_bytes"], 4 * MIB)
        self.assertLess(rep["process_memory"]["rss_bytes"], 64 * MIB)


if __name__ == "__main__":
    lwtest.main()
