"""A hostile environment must not reach the program: the output directory
missing (created, parents too), a file where it should be, read-only (a
read-only bind mount: root ignores permissions), or on a full filesystem
(a 64 KiB tmpfs mounted by the test), also when the disk fills and frees
again while snapshots are taken by signal. The program runs on with the
same output and status, leakwatch prints exactly one warning, and no
partial or temporary snapshot is left. Bad options: one warning at start
from the preloaded library, defaults used, the program runs;
`leakwatch run` refuses the same settings with the same message, exit 2,
before starting anything. Mount tests skip (saying why) where mounting is
not permitted."""

import os
import re
import signal
import subprocess
import time

import lwtest
from lwtest import Case

DUMP_SIGNAL = signal.SIGRTMIN + 7
WARNING = re.compile(r"^leakwatch\[(\d+)\]: (.*)$")


class HostileTest(Case):
    def native_demo(self):
        if not hasattr(self, "_native"):
            self._native = lwtest.run([lwtest.PROGS["demo"]], check_rc=0)
        return self._native

    def demo_with_output(self, outdir):
        """demo under a bare preload writing to outdir: same stdout and
        status as natively; returns its stderr lines."""
        res = lwtest.run([lwtest.PROGS["demo"]], env=lwtest.preload_env(outdir))
        native = self.native_demo()
        self.assertEqual((res.returncode, res.stdout), (native.returncode, native.stdout))
        return res, res.stderr.decode().splitlines()

    def assertOneWarning(self, lines, pid, *needles):
        self.assertEqual(len(lines), 1, f"not exactly one warning: {lines}")
        m = WARNING.match(lines[0])
        self.assertTrue(m, lines[0])
        self.assertEqual(int(m.group(1)), pid)
        for n in needles:
            self.assertIn(n, m.group(2))
        self.assertIn("the program runs on", m.group(2))

    def mount(self, path, *args):
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", *args, path], capture_output=True)
        if r.returncode != 0:
            self.skipTest(f"cannot mount here ({r.stderr.decode().strip() or r.returncode}); "
                          f"this check needs root with CAP_SYS_ADMIN")
        self.addCleanup(subprocess.run, ["umount", "-l", path], capture_output=True)

    def tmpfs(self, size="64k"):
        d = os.path.join(self.tmpdir(), "small")
        self.mount(d, "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs")
        return d

    def fill(self, d):
        """Fill the filesystem of d; returns the filler's path."""
        p = os.path.join(d, "filler")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        st = os.statvfs(d)
        self.assertEqual(st.f_bavail, 0, "the filesystem is not full")
        return p

    def test_missing_directory_is_created(self):
        out = os.path.join(self.tmpdir(), "a", "b", "c")
        res, lines = self.demo_with_output(out)
        self.assertEqual(lines, [])
        self.assertEqual(len(lwtest.snapshot_files(out)), 1)
        self.assertReconciles(lwtest.report(out))

    def test_a_file_where_the_directory_should_be(self):
        base = self.tmpdir()
        afile = os.path.join(base, "afile")
        with open(afile, "w") as f:
            f.write("x")
        for out in (afile, os.path.join(afile, "sub")):
            with self.subTest(out=out):
                res, lines = self.demo_with_output(out)
                self.assertOneWarning(lines, res.pid, out, "errno 20")
        self.assertEqual(sorted(os.listdir(base)), ["afile"])

    def test_read_only_directory(self):
        d = os.path.join(self.tmpdir(), "ro")
        self.mount(d, "--bind", d)
        r = subprocess.run(["mount", "-o", "remount,bind,ro", d], capture_output=True)
        if r.returncode != 0:
            self.skipTest(f"cannot remount read-only: {r.stderr.decode().strip()}")
        res, lines = self.demo_with_output(d)
        self.assertOneWarning(lines, res.pid, d, "read-only file system")
        self.assertEqual(os.listdir(d), [])

    def test_full_filesystem(self):
        d = self.tmpfs()
        self.fill(d)
        res, lines = self.demo_with_output(d)
        self.assertOneWarning(lines, res.pid, d, "no space left on device")
        self.assertEqual(os.listdir(d), ["filler"], "a partial or temporary snapshot was left")

    def test_disk_fills_and_frees_under_signal_snapshots(self):
        d = self.tmpfs("256k")
        proc = subprocess.Popen([lwtest.PROGS["storm"], "signals", "2"],
                                env=lwtest.preload_env(d), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

        def snaps():
            return sorted(f for f in os.listdir(d) if f.endswith(".lwsnap"))

        def signal_until(pred, what, tries=100):
            for _ in range(tries):
                self.assertIsNone(proc.poll(), "the program died")
                os.kill(proc.pid, DUMP_SIGNAL)
                time.sleep(0.05)
                if pred():
                    return
            self.fail(f"no {what} after {tries} signals")

        try:
            time.sleep(0.2)
            signal_until(lambda: len(snaps()) >= 1, "first snapshot")
            before = snaps()
            filler = self.fill(d)
            for _ in range(20):  # each would be a snapshot; the disk is full
                os.kill(proc.pid, DUMP_SIGNAL)
                time.sleep(0.02)
            time.sleep(0.3)
            during = snaps()
            os.unlink(filler)
            signal_until(lambda: len(snaps()) > len(during), "snapshot once the disk had room")
            proc.stdin.close()
            proc.stdin = None
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.assertEqual((proc.returncode, out), (0, b"keep 1000\n"), err)
        self.assertOneWarning(err.decode().splitlines(), proc.pid, "no space left on device")
        self.assertEqual(during, before, "a snapshot appeared on a full disk")
        names = os.listdir(d)
        self.assertEqual([n for n in names if not n.endswith(".lwsnap")], [],
                         f"temporary files left: {names}")
        reps = [lwtest.report(os.path.join(d, n), extra=["--top", "1"]) for n in snaps()]
        triggers = [r["snapshot"]["trigger"] for r in reps]
        self.assertEqual(triggers[-1], "exit")
        self.assertGreaterEqual(triggers.count("signal"), 2)  # before and after the full disk
        seqs = [r["snapshot"]["seq"] for r in reps]
        self.assertEqual(seqs, sorted(set(seqs)))

    # -- options --

    BAD = [
        ("LEAKWATCH_DEPTH", "abc", "must be a whole number from 1 to 256", "using 64"),
        ("LEAKWATCH_DEPTH", "999999999999999999999", "must be a whole number", "using 64"),
        ("LEAKWATCH_SIGNAL", "BOGUS", "not usable for snapshots", "using RTMIN+7"),
        ("LEAKWATCH_SIGNAL", "KILL", "not usable for snapshots", "using RTMIN+7"),
        ("LEAKWATCH_FOLLOW_FORK", "2", "must be 1 or 0", "using 1"),
        ("LEAKWATCH_NO_SUCH_OPTION", "1", "unknown option", "ignored"),
    ]

    def test_bad_options_warn_once_and_use_defaults(self):
        for key, value, what, fallback in self.BAD:
            with self.subTest(key=key, value=value):
                out = os.path.join(self.tmpdir(), "snaps")
                res = lwtest.run([lwtest.PROGS["demo"]], env=lwtest.preload_env(out, **{key: value}))
                native = self.native_demo()
                self.assertEqual((res.returncode, res.stdout), (native.returncode, native.stdout))
                lines = res.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                m = WARNING.match(lines[0])
                self.assertTrue(m, lines[0])
                self.assertEqual(int(m.group(1)), res.pid)
                msg = m.group(2)
                self.assertTrue(msg.startswith(key), msg)
                self.assertIn(what, msg)
                self.assertIn(fallback, msg)
                rep = lwtest.report(out)  # tracking went on with the defaults
                self.assertReconciles(rep)
                self.assertFunction(rep, "cache_insert", "heap", 1000, 1024000)

                # leakwatch run: the same message, refused before the start
                run_out = os.path.join(self.tmpdir(), "run-snaps")
                r = lwtest.run([lwtest.TOOL, "run", "--output", run_out, "--",
                                lwtest.PROGS["demo"]], env=lwtest.clean_env(**{key: value}))
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, b"", "the program ran")
                self.assertFalse(os.path.exists(run_out))
                rlines = r.stderr.decode().splitlines()
                self.assertEqual(len(rlines), 1, rlines)
                self.assertTrue(rlines[0].startswith("leakwatch: "), rlines[0])
                core = rlines[0][len("leakwatch: "):]
                self.assertTrue(msg.startswith(core), f"run says {core!r}, the library {msg!r}")

    def test_bad_signal_falls_back_to_the_default_signal(self):
        """LEAKWATCH_SIGNAL=BOGUS: the default signal still writes snapshots."""
        out = os.path.join(self.tmpdir(), "snaps")
        proc = subprocess.Popen([lwtest.PROGS["storm"], "signals", "1"],
                                env=lwtest.preload_env(out, LEAKWATCH_SIGNAL="BOGUS"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            time.sleep(0.2)
            for _ in range(100):
                os.kill(proc.pid, DUMP_SIGNAL)
                time.sleep(0.05)
                if os.path.isdir(out) and lwtest.snapshot_files(out):
                    break
            proc.stdin.close()
            proc.stdin = None
            sout, serr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.assertEqual((proc.returncode, sout), (0, b"keep 1000\n"))
        self.assertEqual(len(serr.decode().splitlines()), 1, serr)
        triggers = [lwtest.report(f, extra=["--top", "1"])["snapshot"]["trigger"]
                    for f in lwtest.snapshot_files(out)]
        self.assertIn("signal", triggers)


if __name__ == "__main__":
    lwtest.main()
