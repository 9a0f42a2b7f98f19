"""brandpy's benchmark suite: the same workloads under native (chroot),
proot, runsc (gVisor, ptrace platform) and brandpy's engines, interleaved in
one run; medians, ratios to native, output checks and ptrace-stop counts.
`python -m benchmarks.run` (what `make bench` calls)."""
