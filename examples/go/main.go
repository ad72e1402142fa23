// lazyfree: field scenario 2 in a real Go runtime. The heap grows to MIB
// mebibytes (default 256) of live slices, every page written; then they are
// dropped, runtime.GC and debug.FreeOSMemory return the memory to the OS,
// and the program holds. Under GODEBUG=madvdontneed=0 the runtime releases
// with MADV_FREE: RSS stays up, smaps LazyFree counts the pages, while the
// runtime's own heap in use is tiny. A pure-Go binary issues madvise as a
// raw system call: no preload sees it, `leakwatch inspect PID` does.
// Usage: lazyfree [MIB] [SECONDS]; prints "ready HEAP_INUSE_BYTES" when released.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

func grow(mib int) [][]byte {
	chunks := make([][]byte, 0, mib)
	for i := 0; i < mib; i++ {
		b := make([]byte, 1<<20)
		for k := 0; k < len(b); k += 4096 {
			b[k] = byte(i)
		}
		chunks = append(chunks, b)
	}
	return chunks
}

func main() {
	mib, secs := 256, 60
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		secs, _ = strconv.Atoi(os.Args[2])
	}
	chunks := grow(mib)
	runtime.KeepAlive(chunks)
	chunks = nil
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("ready %d %d\n", ms.HeapInuse, ms.HeapReleased)
	time.Sleep(time.Duration(secs) * time.Second)
}
