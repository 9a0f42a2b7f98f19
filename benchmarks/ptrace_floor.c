/* ptrace_floor: the cost of one bare ptrace stop, the floor under any
 * ptrace-based runtime (brandpy's python engine, proot, runsc-ptrace).
 *
 *   ptrace_floor [--same-cpu] [SECONDS]
 *
 * A traced child installs a seccomp filter returning SECCOMP_RET_TRACE for
 * getppid and ALLOW for the rest, then calls getppid in a loop for SECONDS
 * (default 0.3). The tracer does nothing but PTRACE_CONT at each
 * PTRACE_EVENT_SECCOMP stop — no register reads, no handler. The child
 * prints, in microseconds per call:
 *
 *   native  getppid before the filter
 *   stop    getppid with one seccomp stop answered by the tracer
 *
 * --same-cpu pins tracer and child to the CPU the tracer starts on: on small
 * VMs a stop costs about half as much without a cross-CPU wake-up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double usec_per_getppid(double seconds)
{
    long calls = 0;
    double start = now(), elapsed;
    do {
        for (int i = 0; i < BATCH; i++)
            syscall(SYS_getppid);
        calls += BATCH;
        elapsed = now() - start;
    } while (elapsed < seconds);
    return elapsed * 1e6 / calls;
}

static void trace_getppid(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("seccomp");
        _exit(1);
    }
}

static int child(double seconds)
{
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) {
        perror("PTRACE_TRACEME");
        return 1;
    }
    raise(SIGSTOP);   /* lets the tracer set PTRACE_O_TRACESECCOMP first */
    double native = usec_per_getppid(seconds);
    trace_getppid();
    double stop = usec_per_getppid(seconds);
    printf("native %.4f\nstop %.4f\n", native, stop);
    fflush(stdout);
    return 0;
}

static int tracer(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
        fprintf(stderr, "ptrace_floor: child did not stop\n");
        return 1;
    }
    if (ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) != 0) {
        perror("PTRACE_SETOPTIONS");
        kill(pid, SIGKILL);
        return 1;
    }
    int sig = 0;
    for (;;) {
        if (ptrace(PTRACE_CONT, pid, 0, sig) != 0) {
            perror("PTRACE_CONT");
            kill(pid, SIGKILL);
            return 1;
        }
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return 1;
        }
        if (WIFEXITED(status))
            return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
            return 128 + WTERMSIG(status);
        /* A seccomp event stop is resumed as is; a signal stop passes the signal on. */
        sig = (status >> 16) == PTRACE_EVENT_SECCOMP ? 0 : WSTOPSIG(status);
    }
}

int main(int argc, char **argv)
{
    int same_cpu = 0;
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--same-cpu") == 0)
            same_cpu = 1;
        else
            seconds = atof(argv[i]);
    }
    if (same_cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(sched_getcpu(), &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) {
            perror("sched_setaffinity");
            return 1;
        }
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0)
        _exit(child(seconds));
    return tracer(pid);
}
