/* The child side of a spawn: what runs between fork and execve, in the
 * supervisor's own child (bp_spawn) or in the container's spawner
 * (spawner.c). Everything here is async-signal-safe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <linux/capability.h>

#include "brandpy.h"
#include "internal.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void __attribute__((noreturn)) child_fail(const char *what, int err)
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
        /* Only what we hold can be kept: --cap-add ALL on a host whose root
         * lacks some (CAP_SYS_RESOURCE here) gets the rest, not EPERM. */
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct held[2], data[2];
        if (syscall(SYS_capget, &hdr, held) < 0)
            child_fail("capget", errno);
        for (int i = 0; i < 2; i++) {
            data[i].effective = data[i].permitted =
                (unsigned int)(a->caps >> (32 * i)) & held[i].permitted;
            data[i].inheritable = 0;
        }
        if (syscall(SYS_capset, &hdr, data) < 0)
            child_fail("capset", errno);
    }
}

/* Hand the seccomp notification fd to the supervisor, and drop our copy:
 * a tracee holding it could answer its own notifications. Not with
 * SCM_RIGHTS: sendmsg is trapped by the filter now installed (performed by
 * the supervisor, which does not serve this listener yet). We tell our pid
 * as the supervisor sees it and the fd's number; the supervisor takes it with pidfd_getfd
 * (bp_recv_listener) and says so, then we close ours. */
static void send_listener(int sock, pid_t pid, int listener)
{
    int32_t msg[2] = {pid, listener};
    char done;
    if (write(sock, msg, sizeof msg) != sizeof msg)
        child_fail("sending the seccomp listener", errno);
    if (read(sock, &done, 1) != 1)
        child_fail("the supervisor did not take the seccomp listener", EPIPE);
    close(listener);
    close(sock);
}


/* An fd we keep, moved above the range the mapped fds will take. */
static int move_away(int fd, int nfds)
{
    if (fd < 0)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, nfds + 64);
    if (moved < 0)
        child_fail("F_DUPFD", errno);
    return moved;
}

void bp_spawn_child(const struct bp_spawn_args *a, int sync_fd, int listener_sock, int self)
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

    /* the listener socket and the hold pipe move out of the way of the fds
     * we map, then right behind them */
    int hold_fd = move_away(a->hold_fd, a->nfds);
    listener_sock = move_away(listener_sock, a->nfds);
    for (i = 0; i < a->nfds; i++) {
        if (a->fds[i] == i)
            fcntl(i, F_SETFD, 0);
        else if (dup2(a->fds[i], i) < 0)
            child_fail("dup2", errno);
    }
    /* Only the fds we were given (and our two) survive. */
    int next = a->nfds;
    if (listener_sock >= 0) {
        if (dup2(listener_sock, next) < 0)
            child_fail("dup2", errno);
        listener_sock = next++;
    }
    if (hold_fd >= 0) {
        if (dup2(hold_fd, next) < 0)
            child_fail("dup2", errno);
        hold_fd = next++;
    }
    if (syscall(SYS_close_range, next, ~0U, 0) < 0)
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
    if (a->personality >= 0 && personality((unsigned long)a->personality) < 0)
        child_fail("personality", errno);
    for (i = 0; i < a->nrlimits; i++) {
        struct rlimit lim = {a->rlimits[i].soft, a->rlimits[i].hard};
        if (setrlimit(a->rlimits[i].resource, &lim) < 0)
            child_fail("setrlimit (a hard limit above the supervisor's needs "
                       "CAP_SYS_RESOURCE)", errno);
    }
    apply_credentials(a);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail("PR_SET_NO_NEW_PRIVS", errno);
    prog.len = a->filter_len;
    prog.filter = (struct sock_filter *)a->filter;
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, a->seccomp_flags, &prog);
    if (listener < 0)
        child_fail("seccomp", errno);
    if (listener_sock >= 0)
        send_listener(listener_sock, self, (int)listener);
    /* OCI "created": the process exists but waits here until `start` (a
     * byte on the hold pipe), or exits if the hold is dropped (`delete`). */
    if (hold_fd >= 0) {
        char start;
        if (read(hold_fd, &start, 1) != 1)
            _exit(0);
        close(hold_fd);
    }
    /* The path and argv are guest names: this execve is itself trapped and
     * translated by the supervisor. */
    execve(a->path, a->argv, a->envp);
    child_fail(a->path, errno);
}
