"""examples/exact_cxx under the preload: C++ new/delete seen through
malloc/free, exact per function (frames inside libstdc++ skipped)."""

import os

import lwtest
from lwtest import Case


def outside_libstdcxx(stack):
    return lwtest.first_frame_outside(stack, "libstdc++")


def has_churn(stack):
    return "cxx_churn" if any(f.get("function") == "cxx_churn" for f in stack["frames"]) else None


class CxxTest(Case):
    def test_new_delete(self):
        if "exact_cxx" not in lwtest.PROGS:
            self.skipTest("built without a C++ compiler")
        prog = lwtest.PROGS["exact_cxx"]
        out = os.path.join(self.tmpdir(), "snaps")
        lwtest.leakwatch_run([prog], out, check_rc=0)
        rep = lwtest.report(out)
        self.assertReconciles(rep)
        self.assertFunction(rep, "cxx_new", "heap", 40, 960, 40, 960, key=outside_libstdcxx)
        self.assertFunction(rep, "cxx_new_array", "heap", 5, 2000, 5, 2000, key=outside_libstdcxx)
        # 500 x (string object 32 + its 201-byte buffer + vector object 24
        # + its 4*(i%50+1)-byte buffer), all deleted
        self.assertFunction(rep, "cxx_churn", "heap", 0, 0, 2000, 500 * 257 + 4 * 12750,
                            key=has_churn)
        # frame 0 of new'd blocks is operator new, the caller of malloc
        for s in rep["stacks"]:
            if outside_libstdcxx(s) == "cxx_new":
                self.assertIn("libstdc++", os.path.basename(s["frames"][0]["module"]))


if __name__ == "__main__":
    lwtest.main()
