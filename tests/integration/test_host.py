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
    # libunwind probes memory through a pipe it keeps open. The library moves
    # that pipe to the top of the descriptor range (RLIMIT_NOFILE - 16 and
    # up), close-on-exec. The contract tested here: below that, the program
    # sees exactly the descriptors it sees natively; above it, at most those
    # two pipe ends; and nothing crosses an exec.
    FD_LISTER = """
import fcntl, os, resource, stat, sys
top = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 16
fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))
low = [f for f in fds if f < top]
high = [f for f in fds if f >= top]
ok = [f for f in high if stat.S_ISFIFO(os.fstat(f).st_mode)
      and fcntl.fcntl(f, fcntl.F_GETFD) & fcntl.FD_CLOEXEC]
print('low', low)
print('high', len(high), 'pipes-cloexec', len(ok))
if len(sys.argv) > 1:  # then exec an unpreloaded lister: what leaks across exec
    env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
    sys.stdout.flush()
    os.execve('/bin/ls', ['ls', '/proc/self/fd'], env)
"""

    def test_descriptors_below_the_top_are_the_programs_own(self):
        cmd = ["python3", "-c", self.FD_LISTER]
        native = lwtest.run(cmd, check_rc=0)
        self.assertIn(b"high 0 pipes-cloexec 0", native.stdout)
        out = os.path.join(self.tmpdir(), "snaps")
        pre = lwtest.run(cmd, env=lwtest.preload_env(out), check_rc=0)
        self.assertEqual(pre.stderr, b"")
        n_low, n_high = native.stdout.splitlines()[0], pre.stdout.splitlines()[1].split()
        self.assertEqual(pre.stdout.splitlines()[0], n_low, "descriptors the program sees differ")
        self.assertLessEqual(int(n_high[1]), 2, pre.stdout)
        self.assertEqual(n_high[1], n_high[3], "every descriptor up there is a close-on-exec pipe")
        self.assertTrue(lwtest.snapshot_files(out), "no snapshot: the preload was not active")

    def test_nothing_crosses_exec(self):
        cmd = ["python3", "-c", self.FD_LISTER, "exec"]
        native = lwtest.run(cmd, check_rc=0)
        out = os.path.join(self.tmpdir(), "snaps")
        pre = lwtest.run(cmd, env=lwtest.preload_env(out), check_rc=0)
        # the exec'd ls is not preloaded: its list must be the native one
        self.assertEqual(pre.stdout.splitlines()[2:], native.stdout.splitlines()[2:])
        # and a shell pipeline under leakwatch run lists what it lists natively
        shell = ["sh", "-c", "echo x | cat >/dev/null; exec env -u LD_PRELOAD ls /proc/self/fd"]
        nat = lwtest.run(shell, check_rc=0)
        run = lwtest.leakwatch_run(shell, os.path.join(self.tmpdir(), "snaps2"), check_rc=0)
        self.assertEqual(run.stdout, nat.stdout)

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

    def test_signal_just_before_exit_is_not_lost(self):
        # The request races the exit snapshot: both must be written, in order,
        # and named after the program, not after leakwatch's writer thread.
        for _ in range(5):
            out = os.path.join(self.tmpdir(), "snaps")
            script = "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 7)"
            res = lwtest.run(["python3", "-c", script], env=lwtest.preload_env(out), check_rc=0)
            self.assertEqual(res.stderr, b"")
            names = sorted(f for f in os.listdir(out) if f.endswith(".lwsnap"))
            mine = [n for n in names if n.split(".")[1] == str(res.pid)]
            self.assertEqual([n.split(".")[2:4] for n in mine], [["000000", "signal"], ["000001", "exit"]], names)
            self.assertTrue(all(n.startswith("python") for n in mine), names)


if __name__ == "__main__":
    lwtest.main()
