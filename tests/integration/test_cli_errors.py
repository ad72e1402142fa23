"""Hostile input to the leakwatch command: every verb given missing files,
directories where files are expected, empty files, text files, truncated
snapshots, a FIFO, a device, snapshots of different processes as one
series. Each gives exactly one line on stderr that names the file and the
problem, nothing on stdout, and the documented exit code (0 ok, 1 bad input,
2 usage; `run`: 127 not found, 126 not executable, 2 refused). Nothing
hangs (a FIFO once did). Runs no program under the preload, so it is
part of the 'tools' suite and runs against the ASan+UBSan build too."""

import os
import shutil

import lwtest
from lwtest import Case

EXIT_INPUT, EXIT_USAGE = 1, 2
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


class CliErrorsTest(Case):
    def setUp(self):
        self.d = self.tmpdir()
        # real snapshots of two different processes (the fuzz seed corpus):
        # no program runs under the preload here, so this test also runs in
        # sanitizer builds against the instrumented leakwatch command
        self.good = shutil.copy(os.path.join(CORPUS, "demo.lwsnap"), self.d)
        self.other = shutil.copy(os.path.join(CORPUS, "exact.lwsnap"), self.d)
        with open(self.good, "rb") as f:
            self.data = f.read()

    def path(self, name, content=None):
        p = os.path.join(self.d, name)
        if content is not None:
            with open(p, "wb") as f:
                f.write(content)
        return p

    def one_error(self, args, code, *needles):
        """Run leakwatch ARGS; expect exit `code`, no stdout, one stderr
        line starting 'leakwatch: ' that contains every needle."""
        res = lwtest.run([lwtest.TOOL, *args], timeout=30)
        err = res.stderr.decode()
        self.assertEqual(res.returncode, code, f"{args}: {err}")
        self.assertEqual(res.stdout, b"", args)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, f"{args}: not one line: {err!r}")
        self.assertTrue(lines[0].startswith("leakwatch: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0], args)
        return lines[0]

    def test_report_bad_files(self):
        missing = self.path("missing.lwsnap")
        empty = self.path("empty.lwsnap", b"")
        text = self.path("notes.txt", b"this is not a snapshot\n")
        trunc = self.path("trunc.lwsnap", self.data[: len(self.data) // 2])
        header_only = self.path("header.lwsnap", self.data[:20])
        flipped = bytearray(self.data)
        flipped[36] ^= 0xFF  # the PROCESS record header: its payload length
        corrupt = self.path("corrupt.lwsnap", bytes(flipped))
        cases = [
            (missing, "No such file or directory"),
            (empty, "empty file"),
            (text, "not a leakwatch snapshot"),
            (trunc, "truncated"),
            (header_only, "truncated"),
            (corrupt, "corrupt"),
            ("/dev/null", "not a regular file"),
        ]
        for path, what in cases:
            with self.subTest(path=path):
                line = self.one_error(["report", path], EXIT_INPUT, what)
                self.assertIn(path, line)
                self.one_error(["report", "--format", "json", path], EXIT_INPUT, path, what)

    def test_report_fifo_does_not_hang(self):
        fifo = self.path("pipe.lwsnap")
        os.mkfifo(fifo)
        self.one_error(["report", fifo], EXIT_INPUT, fifo, "not a regular file")
        # in a directory it is skipped with a warning; the good one is reported
        d = os.path.join(self.d, "withfifo")
        os.mkdir(d)
        os.mkfifo(os.path.join(d, "a.lwsnap"))
        shutil.copy(self.good, d)
        res = lwtest.run([lwtest.TOOL, "report", "--format", "json", d], timeout=30, check_rc=0)
        self.assertIn(b"skipping", res.stderr)
        self.assertIn(b"not a regular file", res.stderr)

    def test_report_directories(self):
        empty_dir = self.path("empty_dir")
        os.mkdir(empty_dir)
        self.one_error(["report", empty_dir], EXIT_INPUT, empty_dir, "no snapshot")
        junk_dir = self.path("junk_dir")
        os.mkdir(junk_dir)
        with open(os.path.join(junk_dir, "x.lwsnap"), "wb") as f:
            f.write(b"garbage")
        res = lwtest.run([lwtest.TOOL, "report", junk_dir], timeout=30)
        self.assertEqual(res.returncode, EXIT_INPUT, res.stderr)
        self.assertIn(b"x.lwsnap", res.stderr)
        # a directory and a file together: usage
        self.one_error(["report", self.good, empty_dir], EXIT_USAGE, empty_dir, "directory")
        # -o naming a directory, or a path that cannot be created
        self.one_error(["report", "-o", empty_dir, self.good], EXIT_INPUT, empty_dir)
        self.one_error(["report", "-o", os.path.join(self.d, "no", "such", "r.txt"), self.good],
                       EXIT_INPUT, "cannot write")

    def test_report_series_of_different_processes(self):
        line = self.one_error(["report", self.good, self.other], EXIT_INPUT, "different processes")
        self.assertIn(os.path.basename(self.good), line)
        self.assertIn(os.path.basename(self.other), line)
        self.one_error(["report", "--pid", "1", self.good], EXIT_INPUT, "pid 1")

    def test_report_usage(self):
        self.one_error(["report"], EXIT_USAGE, "no snapshot")
        self.one_error(["report", "--top", "-1", self.good], EXIT_USAGE, "--top")
        self.one_error(["report", "--format", "xml", self.good], EXIT_USAGE, "xml")
        self.one_error(["report", "--pid", "abc", self.good], EXIT_USAGE, "--pid")
        self.one_error(["report", "--nope", self.good], EXIT_USAGE, "--nope")
        self.one_error(["nosuchverb"], EXIT_USAGE, "unknown verb")

    def test_run_bad_programs(self):
        out = os.path.join(self.d, "run-out")
        notexec = self.path("notexec", b"echo hi\n")
        os.chmod(notexec, 0o644)
        adir = self.path("adir")
        os.mkdir(adir)
        badinterp = self.path("badinterp", b"#!/nonexistent/interpreter\necho hi\n")
        os.chmod(badinterp, 0o755)
        cases = [
            (["nosuch-program-xyz"], 127, "not found"),
            ([badinterp], 127, "interpreter"),
            ([adir], 126, "not an executable"),
            ([notexec], 126, "not an executable"),
        ]
        for cmd, code, what in cases:
            with self.subTest(cmd=cmd):
                self.one_error(["run", "--output", out, "--", *cmd], code, cmd[0], what)
        # made for a program that never ran: removed again
        self.assertFalse(os.path.exists(out), os.listdir(out) if os.path.exists(out) else "")
        # a directory the user made is left alone, even when empty
        mine = os.path.join(self.d, "mine")
        os.mkdir(mine)
        self.one_error(["run", "--output", mine, "--", badinterp], 127, badinterp, "interpreter")
        self.assertTrue(os.path.isdir(mine))

    def test_run_refuses_bad_output_and_options(self):
        afile = self.path("afile", b"x")
        for target in (afile, os.path.join(afile, "sub")):
            self.one_error(["run", "--output", target, "--", "true"], EXIT_USAGE, target)
        self.one_error(["run"], EXIT_USAGE, "no command")
        self.one_error(["run", "--depth"], EXIT_USAGE, "--depth")
        self.one_error(["run", "--depth", "0", "--", "true"], EXIT_USAGE, "--depth 0")
        self.one_error(["run", "--signal", "BOGUS", "--", "true"], EXIT_USAGE, "BOGUS")
        self.one_error(["run", "--bogus", "--", "true"], EXIT_USAGE, "--bogus")

    def test_run_static_binary_is_refused_clearly(self):
        static = self.path("static_true")
        # the C library's static archive may be missing: then cc fails; skip
        src = self.path("s.c", b"int main(void) { return 0; }\n")
        cc = lwtest.run(["cc", "-static", "-o", static, src])
        if cc.returncode != 0:
            self.skipTest("cannot link a static program here (no libc.a)")
        line = self.one_error(["run", "--", static], EXIT_USAGE, static, "statically linked")
        self.assertIn("known limitations", line)


if __name__ == "__main__":
    lwtest.main()
