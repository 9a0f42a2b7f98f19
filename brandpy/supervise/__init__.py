"""The supervisors (ptrace in Python, the C loop with seccomp user
notification) and the Container that drives one: above the syscall table,
whose handlers see only the runtime below it (the call, the sandbox,
errors, Linux's constants)."""
