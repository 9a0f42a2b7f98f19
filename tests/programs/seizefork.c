/* A tracer seizes or attaches to a task the moment it exists, as strace,
 * gdb and sandboxing libraries do: right after fork() or clone() returns,
 * before the supervisor may have seen the new task's first stop. Each case
 * loops ROUNDS times (the race shows in some rounds only) and prints one
 * line, as natively:
 *
 *   seize    fork(), PTRACE_SEIZE of the child at once, PTRACE_INTERRUPT:
 *            the wait sees the interrupt-stop; then SIGKILL
 *   attach   fork(), PTRACE_ATTACH of the child at once: the wait sees its
 *            SIGSTOP; then SIGKILL
 *   thread   a child makes a thread and writes its TID to a pipe; the
 *            parent seizes that thread as soon as it reads it, interrupts
 *            it and sees the interrupt-stop; then the child is killed
 *   foreign  the parent drops CAP_SYS_PTRACE (Docker's default set lacks
 *            it); a child drops to uid 1000 and forks a grandchild whose
 *            PID it writes to a pipe; the parent may not trace it: EPERM,
 *            at once, however new the task
 *   ghost    a PID that names no task (a child already reaped): ESRCH
 *
 * Arguments name the cases to run (all without).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 200

static char failure[256];   /* the first round that went wrong, if any */

static int fail(const char *fmt, int round, const char *what)
{
    if (!failure[0])
        snprintf(failure, sizeof failure, fmt, round, what);
    return 0;
}

static const char *describe(int status)
{
    static char text[64];
    if (WIFSTOPPED(status))
        snprintf(text, sizeof text, "stopped %d event %d", WSTOPSIG(status), status >> 16);
    else if (WIFEXITED(status))
        snprintf(text, sizeof text, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(text, sizeof text, "killed %d", WTERMSIG(status));
    else
        snprintf(text, sizeof text, "status %#x", status);
    return text;
}

static int waited(pid_t pid, int options, int round, const char *want)
{
    int status;
    if (waitpid(pid, &status, options) != pid)
        return fail("round %d: waitpid: %s", round, strerror(errno));
    if (strcmp(describe(status), want))
        return fail("round %d: %s", round, describe(status));
    return 1;
}

static void report(const char *name, int ok)
{
    printf("%s: %d/%d%s%s\n", name, ok, ROUNDS, failure[0] ? ", first failure: " : "", failure);
    failure[0] = 0;
}

static pid_t idle_child(void)
{
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    return child;
}

static void seize(void)
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child = idle_child();
        if (ptrace(PTRACE_SEIZE, child, 0, 0) < 0)
            fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
        else if (ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0)
            fail("round %d: PTRACE_INTERRUPT: %s", round, strerror(errno));
        else
            ok += waited(child, 0, round, "stopped 5 event 128");
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) != child)
            ;
    }
    report("seize", ok);
}

static void attach(void)
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child = idle_child();
        if (ptrace(PTRACE_ATTACH, child, 0, 0) < 0)
            fail("round %d: PTRACE_ATTACH: %s", round, strerror(errno));
        else
            ok += waited(child, 0, round, "stopped 19 event 0");
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) != child)
            ;
    }
    report("attach", ok);
}

static char stack[64 * 1024] __attribute__((aligned(16)));

static int idle_thread(void *arg)
{
    for (;;)
        pause();
    return 0;
}

static void thread(void)
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        if (pipe(fds) < 0) {
            perror("pipe");
            exit(1);
        }
        pid_t child = fork();
        if (child == 0) {
            pid_t tid = clone(idle_thread, stack + sizeof stack,
                              CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                              CLONE_SYSVSEM, NULL);
            if (write(fds[1], &tid, sizeof tid) != sizeof tid)
                _exit(1);
            for (;;)
                pause();
        }
        close(fds[1]);
        pid_t tid = 0;
        if (read(fds[0], &tid, sizeof tid) != sizeof tid || tid <= 0)
            fail("round %d: the child could not make a thread%s", round, "");
        else if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
            fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
        else if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
            fail("round %d: PTRACE_INTERRUPT: %s", round, strerror(errno));
        else if (waited(tid, __WALL, round, "stopped 5 event 128")) {
            kill(child, SIGKILL);
            ok += waited(tid, __WALL, round, "killed 9");
        }
        close(fds[0]);
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) != child)
            ;
    }
    report("thread", ok);
}

static void drop_sys_ptrace(void)
{
    struct __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &head, data) < 0)
        return;
    data[0].effective &= ~(1u << CAP_SYS_PTRACE);
    data[0].permitted &= ~(1u << CAP_SYS_PTRACE);
    if (syscall(SYS_capset, &head, data) < 0) {
        perror("capset");
        exit(1);
    }
}

static void foreign(void)
{
    int ok = 0;
    drop_sys_ptrace();
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        if (pipe(fds) < 0) {
            perror("pipe");
            exit(1);
        }
        pid_t child = fork();
        if (child == 0) {
            if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
                _exit(1);
            pid_t grandchild = idle_child();
            if (write(fds[1], &grandchild, sizeof grandchild) != sizeof grandchild)
                _exit(1);
            for (;;)
                pause();
        }
        close(fds[1]);
        pid_t grandchild = 0;
        if (read(fds[0], &grandchild, sizeof grandchild) != sizeof grandchild)
            fail("round %d: the child could not drop to uid 1000 and fork%s", round, "");
        else if (ptrace(PTRACE_SEIZE, grandchild, 0, 0) == 0)
            fail("round %d: PTRACE_SEIZE of another user's task succeeded%s", round, "");
        else if (errno != EPERM)
            fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
        else
            ok++;
        close(fds[0]);
        if (grandchild > 0)
            kill(grandchild, SIGKILL);   /* (root may signal it) */
        kill(child, SIGKILL);
        while (waitpid(child, NULL, 0) != child)
            ;
    }
    report("foreign", ok);
}

static void ghost(void)
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        while (waitpid(child, NULL, 0) != child)
            ;
        if (ptrace(PTRACE_SEIZE, child, 0, 0) == 0)
            fail("round %d: PTRACE_SEIZE of a reaped child succeeded%s", round, "");
        else if (errno != ESRCH)
            fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
        else
            ok++;
    }
    report("ghost", ok);
}

static int wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return argc == 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (wanted(argc, argv, "seize"))
        seize();
    if (wanted(argc, argv, "attach"))
        attach();
    if (wanted(argc, argv, "thread"))
        thread();
    if (wanted(argc, argv, "foreign"))
        foreign();
    if (wanted(argc, argv, "ghost"))
        ghost();
    while (waitpid(-1, NULL, __WALL | WNOHANG) > 0)
        ;   /* orphans reparented to us (PID 1) */
    return 0;
}
