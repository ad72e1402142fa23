"""The host must not notice leakwatch: no extra file descriptors (in the
program or its exec'd children), no files in its working directory with a
bare LD_PRELOAD (snapshots go to /tmp/leakwatch-UID), nothing on its
stdout/stderr, its exit status passed through; a signal writes a snapshot."""

import os
import signal
import subprocess
import time

import lwtest
from lwtest import Case


class HostTest(Case):
    def same_as_native(self, cmd):
        native = lwtest.run(cmd, check_rc=0)
        out = os.path.join(self.tmpdir(), "snaps")
        pre = lwtest.run(cmd, env=lwtest.preload_env(out), check_rc=0)
        self.assertEqual(pre.stdout, native.stdout, f"{cmd}: descriptors differ")
        self.assertEqual(pre.stderr, b"")
        # (dash ends with _exit and may leave none itself; its children do)
        self.assertTrue(lwtest.snapshot_files(out), "no snapshot: the preload was not active")
        out = os.path.join(self.tmpdir(), "snaps")
        run = lwtest.leakwatch_run(cmd, out, check_rc=0)
        self.assertEqual(run.stdout, native.stdout, f"leakwatch run {cmd}: descriptors differ")
        self.assertTrue(lwtest.snapshot_files(out), "leakwatch run wrote no snapshot")
        return native

    def test_no_extra_descriptors(self):
        native = self.same_as_native(["ls", "/proc/self/fd"])
        self.assertEqual(native.stdout, b"0\n1\n2\n3\n")
        # the shell's own descriptors, listed by a child
        self.same_as_native(["sh", "-c", "ls /proc/$$/fd"])
        # what an exec'd program inherits from a preloaded parent
        self.same_as_native(["sh", "-c", "echo x | cat >/dev/null; exec ls /proc/self/fd"])

    def test_cwd_untouched_and_default_output(self):
        cwd = self.tmpdir()
        prog = lwtest.PROGS["exact"]
        env = lwtest.preload_env(None)
        res = lwtest.run([prog, "malloc"], env=env, cwd=cwd, check_rc=0)
        self.assertEqual(os.listdir(cwd), [], "files appeared in the program's cwd")
        default = f"/tmp/leakwatch-{os.getuid()}"
        mine = [os.path.join(default, f) for f in os.listdir(default) if f".{res.pid}." in f]
        self.addCleanup(lambda: [os.unlink(f) for f in mine if os.path.exists(f)])
        self.assertTrue(mine, f"no snapshot of pid {res.pid} in {default}")
        rep = lwtest.report(default, pid=res.pid)
        self.assertEqual(rep["process"]["pid"], res.pid)
        self.assertFunction(rep, "leak_malloc", "heap", 100, 4800, 100, 4800)

    def test_silent_and_exit_status(self):
        out = os.path.join(self.tmpdir(), "snaps")
        res = lwtest.run([lwtest.PROGS["exact"], "all"], env=lwtest.preload_env(out), check_rc=0)
        self.assertEqual((res.stdout, res.stderr), (b"", b""))
        out = os.path.join(self.tmpdir(), "snaps")
        script = "import sys; print('to-stdout'); sys.exit(7)"
        res = lwtest.leakwatch_run(["python3", "-c", script], out)
        self.assertEqual((res.returncode, res.stdout), (7, b"to-stdout\n"))
        self.assertIn(out, res.stderr.decode(), "run says where the snapshots went")
        self.assertIn("leakwatch report", res.stderr.decode(), "run says what to run next")
        res = lwtest.leakwatch_run(["sh", "-c", "exit 9"], os.path.join(self.tmpdir(), "s"))
        self.assertEqual(res.returncode, 9)
        res = lwtest.leakwatch_run(["sh", "-c", "kill -TERM $$"], os.path.join(self.tmpdir(), "s"))
        self.assertEqual(res.returncode, 128 + signal.SIGTERM)

    def test_signal_writes_a_snapshot(self):
        out = os.path.join(self.tmpdir(), "snaps")
        sig = signal.SIGRTMIN + 7
        env = lwtest.preload_env(out)
        proc = subprocess.Popen([lwtest.PROGS["madv_free"], "2000"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(0.7)
            os.kill(proc.pid, sig)
            _, err = proc.communicate(timeout=lwtest.TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual((proc.returncode, err), (0, b""), "the signal must not kill or disturb it")
        reps = sorted(lwtest.reports_by_pid(out)[proc.pid], key=lambda r: r["snapshot"]["seq"])
        self.assertEqual([(r["snapshot"]["seq"], r["snapshot"]["trigger"]) for r in reps],
                         [(0, "signal"), (1, "exit")])
        for rep in reps:
            self.assertReconciles(rep)
            self.assertFunction(rep, "session_state", "heap", 64, 1024 * 1024)


if __name__ == "__main__":
    lwtest.main()
