/* Start a container's entrypoint under the supervisor: fork, wait until the
 * parent has seized the child with ptrace, then install the seccomp filter
 * and execve. Everything between fork and execve is async-signal-safe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <linux/capability.h>

#include "brandpy.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void child_fail(const char *what, int err)
{
    /* One line on the container's stderr, as `docker run` shows exec errors. */
    const char *msg = strerror(err);
    (void)!write(2, "brandpy: ", 9);
    (void)!write(2, what, strlen(what));
    (void)!write(2, ": ", 2);
    (void)!write(2, msg, strlen(msg));
    (void)!write(2, "\n", 1);
    _exit(err == ENOENT ? 127 : 126);
}

/* Docker's capability handling for a real-root container: the bounding set
 * and the ambient set shrink to `caps`, the user and groups are set, and a
 * root user keeps exactly `caps` (a non-root user loses all at setuid). */
static void apply_credentials(const struct bp_spawn_args *a)
{
    if (a->set_caps) {
        for (int cap = 0; cap < 64; cap++)
            if (!(a->caps >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
                errno != EINVAL)
                child_fail("PR_CAPBSET_DROP", errno);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
    if (a->set_ids) {
        if (setgroups(a->ngroups, (const gid_t *)a->groups) < 0)
            child_fail("setgroups", errno);
        if (setresgid(a->gid, a->gid, a->gid) < 0)
            child_fail("setresgid", errno);
        if (setresuid(a->uid, a->uid, a->uid) < 0)
            child_fail("setresuid", errno);
    }
    if (a->set_caps && (!a->set_ids || a->uid == 0)) {
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        for (int i = 0; i < 2; i++) {
            data[i].effective = data[i].permitted = (unsigned int)(a->caps >> (32 * i));
            data[i].inheritable = 0;
        }
        if (syscall(SYS_capset, &hdr, data) < 0)
            child_fail("capset", errno);
    }
}

static void child(const struct bp_spawn_args *a, int sync_fd)
{
    char go;
    struct sock_fprog prog;
    sigset_t none;
    int i;

    /* Block until the supervisor has seized us, so no syscall escapes it. */
    if (read(sync_fd, &go, 1) != 1)
        _exit(125);

    /* Python leaves SIGPIPE ignored and may block signals: give the
     * container the default dispositions and an empty mask. */
    for (i = 1; i < 65; i++)
        if (i != SIGKILL && i != SIGSTOP)
            signal(i, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    for (i = 0; i < a->nfds; i++) {
        if (a->fds[i] == i)
            fcntl(i, F_SETFD, 0);
        else if (dup2(a->fds[i], i) < 0)
            child_fail("dup2", errno);
    }
    /* Only the fds we were given survive: close the rest now, so the seccomp
     * listener (if any) gets the next number, a->nfds. */
    if (syscall(SYS_close_range, a->nfds, ~0U, 0) < 0)
        child_fail("close_range", errno);

    if (a->flags & BP_SPAWN_SETSID) {
        setsid();
        if ((a->flags & BP_SPAWN_CTTY) && ioctl(0, TIOCSCTTY, 0) < 0)
            child_fail("TIOCSCTTY", errno);
    } else if (a->flags & BP_SPAWN_SETPGID) {
        setpgid(0, 0);
    }
    if (a->cwd && chdir(a->cwd) < 0)
        child_fail(a->cwd, errno);
    apply_credentials(a);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail("PR_SET_NO_NEW_PRIVS", errno);
    prog.len = a->filter_len;
    prog.filter = (struct sock_filter *)a->filter;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, a->seccomp_flags, &prog) < 0)
        child_fail("seccomp", errno);
    /* The path and argv are guest names: this execve is itself trapped and
     * translated by the supervisor. */
    execve(a->path, a->argv, a->envp);
    child_fail(a->path, errno);
}

int bp_spawn(const struct bp_spawn_args *a)
{
    int sync[2];
    pid_t pid;
    int err;

    if (pipe2(sync, O_CLOEXEC) < 0)
        return -errno;
    pid = fork();
    if (pid < 0) {
        err = errno;
        close(sync[0]);
        close(sync[1]);
        return -err;
    }
    if (pid == 0) {
        close(sync[1]);
        child(a, sync[0]);
    }
    close(sync[0]);
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(uintptr_t)a->ptrace_options) < 0) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sync[1]);
        return -err;
    }
    if (write(sync[1], "g", 1) != 1) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, __WALL);
        close(sync[1]);
        return -err;
    }
    close(sync[1]);
    return pid;
}
