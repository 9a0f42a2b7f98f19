/* Start a container's process under the supervisor: fork it here or in the
 * container's spawner (spawner.c), seize it with ptrace, and let the child
 * (child.c) install the seccomp filter and execve. */
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

int bp_recv_listener(int sock)
{
    int32_t msg[2];
    ssize_t n;
    do
        n = recv(sock, msg, sizeof msg, 0);
    while (n < 0 && errno == EINTR);
    if (n != sizeof msg)
        return n < 0 ? -errno : -EPIPE;
    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)msg[0], 0);
    if (pidfd < 0)
        return -errno;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, msg[1], 0);
    int err = errno;
    close(pidfd);
    if (fd < 0)
        return -err;
    if (write(sock, "k", 1) != 1) {   /* the child is gone: so is what it traps */
        close(fd);
        return -EPIPE;
    }
    return fd;
}

int bp_spawn(const struct bp_spawn_args *a, int *listener)
{
    int sync[2], sock[2] = {-1, -1};
    pid_t pid;
    int err;
    int want_listener = (a->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) != 0;

    if (pipe2(sync, O_CLOEXEC) < 0)
        return -errno;
    if (want_listener && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0) {
        err = errno;
        close(sync[0]);
        close(sync[1]);
        return -err;
    }
    if (a->spawner >= 0) {
        pid = bp_spawn_remote(a, sync[0], sock[1]);
    } else {
        pid = fork();
        if (pid == 0) {
            close(sync[1]);
            if (want_listener)
                close(sock[0]);
            bp_spawn_child(a, sync[0], sock[1], (int)getpid());
        }
        if (pid < 0)
            pid = -errno;
    }
    if (pid < 0) {
        close(sync[0]);
        close(sync[1]);
        if (want_listener) {
            close(sock[0]);
            close(sock[1]);
        }
        return pid;
    }
    close(sync[0]);
    if (want_listener)
        close(sock[1]);
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(uintptr_t)a->ptrace_options) < 0) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sync[1]);
        if (want_listener)
            close(sock[0]);
        return -err;
    }
    if (write(sync[1], "g", 1) != 1) {
        err = errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, __WALL);
        close(sync[1]);
        if (want_listener)
            close(sock[0]);
        return -err;
    }
    close(sync[1]);
    /* The listener arrives on this socket once the child has its filter; the
     * supervisor's loop receives it (bp_recv_listener): the child's own calls
     * before exec may be trapped already (--trace-all), so we cannot wait. */
    if (want_listener)
        *listener = sock[0];
    return pid;
}
