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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracetest.h"

#define ROUNDS 200

static char failure[256];   /* the first round that went wrong, if any */

static int fail(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    if (!failure[0])
        vsnprintf(failure, sizeof failure, fmt, args);
    va_end(args);
    return 0;
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

static void reap(pid_t child)
{
    while (waitpid(child, NULL, 0) != child)
        ;
}

static void end(pid_t child)
{
    kill(child, SIGKILL);
    reap(child);
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
        end(child);
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
        end(child);
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

/* A child that makes a task with make() and tells its TID through a pipe
 * at once, then idles: the TID (0 if none), the child in *child. */
static pid_t made_by_child(pid_t (*make)(void), pid_t *child)
{
    int fds[2];
    if (pipe(fds) < 0) {
        perror("pipe");
        exit(1);
    }
    *child = fork();
    if (*child == 0) {
        pid_t made = make();
        if (write(fds[1], &made, sizeof made) != sizeof made)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t made = 0;
    if (read(fds[0], &made, sizeof made) != sizeof made || made < 0)
        made = 0;
    close(fds[0]);
    return made;
}

static pid_t make_thread(void)
{
    return clone(idle_thread, stack + sizeof stack,
                 CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                 CLONE_SYSVSEM, NULL);
}

static void thread(void)
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child, tid = made_by_child(make_thread, &child);
        if (!tid)
            fail("round %d: the child could not make a thread", round);
        else if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
            fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
        else if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0)
            fail("round %d: PTRACE_INTERRUPT: %s", round, strerror(errno));
        else if (waited(tid, __WALL, round, "stopped 5 event 128")) {
            kill(child, SIGKILL);
            ok += waited(tid, __WALL, round, "killed 9");
        }
        end(child);
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

/* PTRACE_SEIZE of pid fails with errno want: 1, else 0 and a failure */
static int refused(pid_t pid, int want, int round, const char *whose)
{
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0)
        return fail("round %d: PTRACE_SEIZE of %s succeeded", round, whose);
    if (errno != want)
        return fail("round %d: PTRACE_SEIZE: %s", round, strerror(errno));
    return 1;
}

static pid_t make_foreign_child(void)
{
    if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
        return -1;
    return idle_child();
}

static void foreign(void)
{
    int ok = 0;
    drop_sys_ptrace();
    for (int round = 0; round < ROUNDS; round++) {
        pid_t child, grandchild = made_by_child(make_foreign_child, &child);
        if (!grandchild)
            fail("round %d: the child could not drop to uid 1000 and fork", round);
        else {
            ok += refused(grandchild, EPERM, round, "another user's task");
            kill(grandchild, SIGKILL);   /* (root may signal it) */
        }
        end(child);
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
        reap(child);
        ok += refused(child, ESRCH, round, "a reaped child");
    }
    report("ghost", ok);
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
