/* A process names its child by PID the moment fork() returns, before the
 * supervisor may have seen the child's first stop, in calls brandpy
 * translates or emulates (tests/programs/seizefork.c does the same with
 * ptrace). Each case loops ROUNDS times (the race shows in some rounds
 * only) and prints one line, as natively:
 *
 *   capget    capget of the child: its sets are the caller's
 *   priority  getpriority of the child, setpriority to the same nice
 *   sched     sched_getscheduler, sched_getparam, sched_getaffinity and
 *             prlimit (RLIMIT_NOFILE, read) of the child
 *   setns     pidfd_open of the child, setns to its UTS namespace (takes
 *             CAP_SYS_ADMIN)
 *   user      a process of a user of its own (uid 1000 + round) forks and
 *             renices its user's processes at once: the child is one
 *             (takes CAP_SETUID)
 *
 * Arguments name the cases to run (all without).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tracetest.h"

#define ROUNDS 200

static char failure[256];   /* the first round that went wrong, if any */

/* what failed (errno's reason, if set) */
static int fail(int round, const char *what)
{
    if (!failure[0])
        snprintf(failure, sizeof failure, "round %d: %s%s%s", round, what, errno ? ": " : "",
                 errno ? strerror(errno) : "");
    return 0;
}

static void report(const char *name, int ok)
{
    printf("%s: %d/%d%s%s\n", name, ok, ROUNDS, failure[0] ? ", first failure: " : "", failure);
    failure[0] = 0;
}

static long caps(pid_t pid, struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, pid};
    memset(data, 0, 2 * sizeof *data);
    return syscall(SYS_capget, &header, data);
}

static int capget_child(pid_t child, int round)
{
    struct __user_cap_data_struct mine[2], its[2];
    if (caps(0, mine) < 0 || caps(child, its) < 0)
        return fail(round, "capget");
    if (memcmp(mine, its, sizeof mine)) {
        errno = 0;
        return fail(round, "capget: other sets");
    }
    return 1;
}

static int priority_child(pid_t child, int round)
{
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, child);
    if (nice == -1 && errno)
        return fail(round, "getpriority");
    if (setpriority(PRIO_PROCESS, child, nice) < 0)
        return fail(round, "setpriority");
    return 1;
}

static int sched_child(pid_t child, int round)
{
    struct sched_param param;
    cpu_set_t cpus;
    struct rlimit limit;
    if (sched_getscheduler(child) < 0)
        return fail(round, "sched_getscheduler");
    if (sched_getparam(child, &param) < 0)
        return fail(round, "sched_getparam");
    if (sched_getaffinity(child, sizeof cpus, &cpus) < 0)
        return fail(round, "sched_getaffinity");
    if (prlimit(child, RLIMIT_NOFILE, NULL, &limit) < 0)
        return fail(round, "prlimit");
    return 1;
}

static int setns_child(pid_t child, int round)
{
    int fd = syscall(SYS_pidfd_open, child, 0), ok;
    if (fd < 0)
        return fail(round, "pidfd_open");
    ok = setns(fd, CLONE_NEWUTS) < 0 ? fail(round, "setns") : 1;
    close(fd);
    return ok;
}

/* Forks an idle child, makes calls() on it at once, kills and reaps it. */
static int one_round(int (*calls)(pid_t, int), int round)
{
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    int ok = calls(child, round);
    kill(child, SIGKILL);
    while (waitpid(child, NULL, 0) != child)
        ;
    return ok;
}

static int user_child(pid_t child, int round)
{
    errno = 0;
    if (setpriority(PRIO_USER, getuid(), 5) < 0)
        return fail(round, "setpriority(PRIO_USER)");
    int nice = getpriority(PRIO_PROCESS, child);
    if (nice != 5)
        return fail(round, errno ? "getpriority" : "the child's nice is not 5");
    return 1;
}

/* A process of a user of its own makes a user_child round (what failed:
 * on stderr). */
static int user_round(int round)
{
    int status;
    pid_t process = fork();
    if (process == 0) {
        failure[0] = 0;         /* the parent's, if any */
        int ok = setresuid(1000 + round, 1000 + round, 1000 + round) < 0 ?
                 fail(round, "setresuid") : one_round(user_child, round);
        if (!ok)
            fprintf(stderr, "%s\n", failure);
        _exit(!ok);
    }
    if (waitpid(process, &status, 0) != process || !WIFEXITED(status) || WEXITSTATUS(status)) {
        errno = 0;
        return fail(round, "the round's process failed");
    }
    return 1;
}

static void rounds(const char *name, int (*calls)(pid_t, int))
{
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++)
        ok += one_round(calls, round);
    report(name, ok);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (wanted(argc, argv, "capget"))
        rounds("capget", capget_child);
    if (wanted(argc, argv, "priority"))
        rounds("priority", priority_child);
    if (wanted(argc, argv, "sched"))
        rounds("sched", sched_child);
    if (wanted(argc, argv, "setns"))
        rounds("setns", setns_child);
    if (wanted(argc, argv, "user")) {
        int ok = 0;
        for (int round = 0; round < ROUNDS; round++)
            ok += user_round(round);
        report("user", ok);
    }
    return 0;
}
