"""Storms (examples/storm.c, examples/forkstorm.c): the snapshot signal sent
hundreds of times while threads allocate without pause; thousands of
threads created and exiting while allocating (the fork storm is in
test_forkstorm.py). No crash, no hang, no torn or temporary file
left, every snapshot readable with consistent totals, the exit numbers
exact. If LEAKWATCH_INTERVAL / LEAKWATCH_HEAP_THRESHOLD exist (`leakwatch
run --help-env` lists them), the signal storm runs with them switched on
too; otherwise that part is skipped and says so."""

import os
import re
import signal
import subprocess
import time

import lwtest
from lwtest import Case

SIGNALS = 300
DUMP_SIGNAL = signal.SIGRTMIN + 7  # leakwatch's default LEAKWATCH_SIGNAL
TRIGGERS = {"exit", "signal", "interval", "threshold", "heap-threshold"}


def known_options():
    res = lwtest.run([lwtest.TOOL, "run", "--help-env"], check_rc=0)
    return set(re.findall(r"LEAKWATCH_[A-Z_]+", res.stdout.decode()))


def own_memory(path):
    """leakwatch's own memory in a snapshot, from the text report."""
    res = lwtest.run([lwtest.TOOL, "report", "--top", "1", path], check_rc=0)
    m = re.search(r"leakwatch's own memory .*?\((\d+) bytes\)", res.stdout.decode())
    if not m:
        raise AssertionError(f"no 'own memory' line in the report of {path}")
    return int(m.group(1))


class StormTest(Case):
    def check_series(self, out, pid):
        """Every file in out is a finished snapshot of pid, readable, with
        consistent totals, seq 0..n-1, counters that only grow, one exit
        snapshot last. Returns the light reports, in seq order."""
        names = os.listdir(out)
        self.assertEqual([n for n in names if n.startswith(".")], [], "temporary files left")
        files = lwtest.snapshot_files(out)
        self.assertEqual(len(files), len(names), f"files that are not snapshots: {names}")
        reps = [lwtest.report(f, extra=["--top", "1"]) for f in files]
        reps.sort(key=lambda r: r["snapshot"]["seq"])
        self.assertEqual([r["snapshot"]["seq"] for r in reps], list(range(len(reps))))
        prev = None
        for r in reps:
            self.assertEqual(r["process"]["pid"], pid)
            self.assertIn(r["snapshot"]["trigger"], TRIGGERS)
            heap = r["heap"]
            self.assertEqual(heap["inuse_objects"], heap["alloc_objects"] - heap["free_objects"])
            if prev:
                for key in ("alloc_objects", "alloc_bytes", "free_objects"):
                    self.assertGreaterEqual(heap[key], prev["heap"][key], key)
            prev = r
        triggers = [r["snapshot"]["trigger"] for r in reps]
        self.assertEqual(triggers.count("exit"), 1)
        self.assertEqual(triggers[-1], "exit")
        return files, reps

    def signal_storm(self, extra_env):
        out = os.path.join(self.tmpdir(), "snaps")
        env = lwtest.preload_env(out, **extra_env)
        proc = subprocess.Popen([lwtest.PROGS["storm"], "signals", "2"], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            time.sleep(0.2)
            sent = 0
            for _ in range(SIGNALS):
                self.assertIsNone(proc.poll(), f"the program died after {sent} signals")
                os.kill(proc.pid, DUMP_SIGNAL)
                sent += 1
                time.sleep(0.005)
            proc.stdin.close()
            proc.stdin = None  # communicate() must not flush it
            out_b, err_b = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            raise AssertionError("hang: storm still running 120 s after its input closed")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.assertEqual(proc.returncode, 0, err_b)
        self.assertEqual(out_b, b"keep 1000\n")
        self.assertEqual(err_b, b"", "the preload printed something")
        files, reps = self.check_series(out, proc.pid)
        nsig = sum(r["snapshot"]["trigger"] == "signal" for r in reps)
        # requests arriving while one is pending are merged: fewer snapshots
        # than signals, but the load never stopped them
        self.assertGreaterEqual(nsig, 5, f"{nsig} signal snapshots for {sent} signals")
        self.assertLessEqual(nsig, sent)
        exit_rep = lwtest.report(files[-1])
        self.assertReconciles(exit_rep)
        self.assertFunction(exit_rep, "storm_keep", "heap", 1000, 100000, 1000, 100000)
        churn = lwtest.by_function(exit_rep, "churn")
        self.assertEqual((churn.inuse_objects, churn.inuse_bytes), (0, 0), churn)
        self.assertGreater(churn.alloc_objects, 10000, churn)
        for f in files[:-1:max(1, len(files) // 4)]:
            self.assertReconciles(lwtest.report(f))
        print(f"signal storm {extra_env or ''}: {sent} signals, {len(files)} snapshots "
              f"({nsig} by signal), churn made {churn.alloc_objects} allocations")
        return reps

    def test_signal_storm(self):
        self.signal_storm({})

    def test_signal_storm_with_interval_and_threshold(self):
        known = known_options()
        extra = {}
        if "LEAKWATCH_INTERVAL" in known:
            extra["LEAKWATCH_INTERVAL"] = "0.25"
        if "LEAKWATCH_HEAP_THRESHOLD" in known:
            # storm_keep holds 1000 blocks of 100 bytes: the heap crosses 50 kB once
            extra["LEAKWATCH_HEAP_THRESHOLD"] = "50000"
        if not extra:
            self.skipTest("LEAKWATCH_INTERVAL and LEAKWATCH_HEAP_THRESHOLD are not options "
                          "of this leakwatch yet")
        reps = self.signal_storm(extra)
        triggers = [r["snapshot"]["trigger"] for r in reps]
        if "LEAKWATCH_INTERVAL" in extra:
            self.assertGreaterEqual(triggers.count("interval"), 2, triggers)
        if "LEAKWATCH_HEAP_THRESHOLD" in extra:
            self.assertGreaterEqual(triggers.count("heap-threshold"), 1, triggers)

    def test_thread_storm(self):
        prog = lwtest.PROGS["storm"]
        sizes = {}
        for n in (40, 4000):
            out = os.path.join(self.tmpdir(), "snaps")
            res = lwtest.leakwatch_run([prog, "threads", str(n)], out, check_rc=0, timeout=300)
            self.assertEqual(res.stdout, f"threads {n}\n".encode())
            files, reps = self.check_series(out, reps_pid(out))
            rep = lwtest.report(files[-1])
            self.assertReconciles(rep)
            self.assertFunction(rep, "thread_keep", "heap", n, 64 * n, n, 64 * n)
            # 100 blocks of 16..115 bytes per thread, all freed
            self.assertFunction(rep, "short_lived", "heap", 0, 0, 100 * n,
                                n * sum(16 + k for k in range(100)))
            self.assertEqual(rep["dropped"]["unwind_failures"], 0)
            sizes[n] = own_memory(files[-1])
        # per-thread state is given back when a thread exits: 100 times the
        # threads, well under a page more per thread (measured: ~100 KiB)
        self.assertLess(sizes[4000] - sizes[40], 4000 * 1024, sizes)
        print(f"thread storm: leakwatch's own memory {sizes}")


    def test_killed_while_writing(self):
        """SIGKILL in the middle of a signal storm: whatever carries a final
        name is a complete snapshot; at most a dot-temporary is left, which
        the reporter ignores."""
        out = os.path.join(self.tmpdir(), "snaps")
        proc = subprocess.Popen([lwtest.PROGS["storm"], "signals", "2"],
                                env=lwtest.preload_env(out), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            time.sleep(0.2)
            for i in range(60):
                os.kill(proc.pid, DUMP_SIGNAL)
                time.sleep(0.002 if i % 2 else 0.011)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        names = os.listdir(out)
        temps = [n for n in names if n.startswith(".")]
        self.assertLessEqual(len(temps), 1, names)
        files = lwtest.snapshot_files(out)
        self.assertGreater(len(files), 0, "no snapshot before the kill")
        for f in files:
            rep = lwtest.report(f, extra=["--top", "1"])
            self.assertEqual(rep["snapshot"]["trigger"], "signal")
        # the directory report ignores the temporary and shows the last one
        self.assertEqual(lwtest.report(out, extra=["--top", "1"])["snapshot"]["seq"],
                         len(files) - 1)

def reps_pid(out):
    """The pid in the name of the snapshots in out (all of one process)."""
    pids = {int(os.path.basename(f).split(".")[-4]) for f in lwtest.snapshot_files(out)}
    if len(pids) != 1:
        raise AssertionError(f"expected the snapshots of one process in {out}: {sorted(pids)}")
    return pids.pop()


if __name__ == "__main__":
    lwtest.main()
