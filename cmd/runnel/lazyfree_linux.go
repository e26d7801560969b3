package main

import (
	"os"
	"slices"
	"strings"
	"syscall"
)

// lazyFree restarts a broker (any command line naming serve) with
// GODEBUG=madvdontneed=0 unless GODEBUG already sets it, so the Go runtime
// hands freed memory back to Linux with MADV_FREE rather than
// MADV_DONTNEED.
//
// A broker allocates and frees buffers of several MiB at its data rate
// (intake objects, fetch results). With MADV_DONTNEED every page of memory
// the runtime had handed back was faulted in and zeroed by the kernel again
// when reused: at the maximum produce rate that was 17,000 page faults a
// second, and copying into fresh intake objects cost four times what it
// costs in memory already mapped. MADV_FREE pages stay mapped until the
// kernel needs them, so reuse is free; the price is that RSS counts them
// until then. The setting is only accepted from the environment (it is not
// a //go:debug setting), hence the restart, which keeps the process id.
func lazyFree() {
	if strings.Contains(os.Getenv("GODEBUG"), "madvdontneed=") || !slices.Contains(os.Args[1:], "serve") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := os.Environ()
	godebug := "madvdontneed=0"
	if v, ok := os.LookupEnv("GODEBUG"); ok && v != "" {
		godebug = v + "," + godebug
	}
	env = append(slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") }), "GODEBUG="+godebug)
	_ = syscall.Exec(exe, os.Args, env) // on failure, serve as we are
}
