"""Write the hand-made edge cases in tests/fuzz/regress (one file each):
lengths at their maxima or overflowing 32 bits, END counting wrong, duplicate
stack ids, a region naming a missing stack, a newer minor version, free
counters above alloc, and the reader's worst allocation per input byte.
Usage: python3 tests/fuzz/make_regress.py tests/fuzz/regress
Inputs libFuzzer finds go to the same directory under their own names."""
import struct, sys, os
out = sys.argv[1]
def rec(tag, payload):
    pad = (-len(payload)) % 8
    return struct.pack("<II", tag, len(payload)) + payload + b"\0" * pad
def header(major=1, minor=1, hsize=32):
    return b"LWSNAP\r\n" + struct.pack("<HHI", major, minor, hsize) + b"\0" * 16
def process(exe=b"/bin/x", cmdline=b"x\0", pid=42):
    p = struct.pack("<IIQQQIIIIIIIIQQQ", pid, 1, 1, 1, 1, 0, 1, 0, 64, 4096, len(exe), len(cmdline), 0, 0, 0, 0)
    assert len(p) == 88, len(p)
    return rec(1, p + exe + cmdline)
def totals():
    return rec(2, b"\0" * 272)
def stack(sid, kind=1, nframes=1, frames=None, a=(10, 1, 0, 0)):
    frames = frames if frames is not None else [0x1000 + i for i in range(nframes)]
    p = struct.pack("<IBBHQQQQ", sid, kind, 0, nframes, *a)
    assert len(p) == 40
    return rec(4, p + b"".join(struct.pack("<Q", f) for f in frames))
def end(body, n):
    off = len(body)
    return body + rec(0x454E44, struct.pack("<QQ", n, off))
def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
h = header()
# 1. a command line of 16000 NULs: 16000 arguments, the reader's worst
#    allocation per input byte (argv pointers)
b = h + process(cmdline=b"\0" * 16000) + totals()
write("argv-all-nul.bin", end(b, 2))
# 2. record length 0xFFFFFFFF right after the header
write("len-max.bin", h + struct.pack("<II", 1, 0xFFFFFFFF) + b"\0" * 88)
# 3. nframes 0xFFFF with only one frame present
b = h + process() + totals()
p = struct.pack("<IBBHQQQQ", 1, 1, 0, 0xFFFF, 1, 1, 0, 0) + struct.pack("<Q", 0x1000)
write("nframes-max.bin", end(b + rec(4, p), 3))
# 4. END counting the wrong number of records / wrong offset
write("end-wrong-count.bin", end(h + process() + totals(), 7))
# 5. two stacks with the same id
b = h + process() + totals() + stack(5) + stack(5)
write("dup-stack-id.bin", end(b, 4))
# 6. region referring to a missing stack
reg = struct.pack("<QQQIIBBHI", 0x10000, 0x1000, 0, 99, 1, 2, 1, 0, 3)
b = h + process() + totals() + rec(5, reg)
write("region-bad-stack.bin", end(b, 3))
# 7. a newer minor with bigger header and records carrying extra bytes, unknown tag
hn = b"LWSNAP\r\n" + struct.pack("<HHI", 1, 99, 40) + b"\0" * 24
b = hn + process() + totals() + rec(77, b"future") + stack(1, kind=9)
write("newer-minor.bin", end(b, 4))
# 8. free counters above alloc (in use must not go negative)
b = h + process() + totals() + stack(1, a=(10, 1, 1 << 63, 5))
write("free-above-alloc.bin", end(b, 3))
# 9. exe and cmdline lengths that overflow 32 bits when added
p = struct.pack("<IIQQQIIIIIIIIQQQ", 1, 1, 1, 1, 1, 0, 1, 0, 64, 4096, 0xFFFFFFF0, 0x20, 0, 0, 0, 0)
write("len-overflow.bin", end(h + rec(1, p) + totals(), 2))
# 10. a module with nsegs 0xFFFFFFFF
m = struct.pack("<QIIII", 0x400000, 0xFFFFFFFF, 4, 0, 1)
b = h + process() + totals() + rec(3, m + b"/a/b")
write("module-nsegs-max.bin", end(b, 3))
