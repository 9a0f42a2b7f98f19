/* The native engine's event loop: one thread waits for ptrace stops
 * (SIGCHLD through a signalfd) and seccomp notifications at once. Stops go
 * to the Python supervisor (bp_py_wait); notifications are answered in C
 * (notify.c) or by Python (bp_py_notify); control requests from other
 * threads, and Python's signal wake-ups, arrive on a pipe (bp_py_wake).
 *
 * As root the thread waits and answers inside the container's mount
 * namespace (bp_loop_set_walls; brandpy/runtime/acting.py says why) and
 * goes back to the supervisor's own for every call into Python, which
 * enters the container's again only to perform a call. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/* SIGCHLD reaches our signalfd only if every thread blocks it (see
 * native_engine.block_sigchld); a thread that does not steals it. */
#define SAFETY_POLL_MS 10

int bp_notify_handle(struct bp_state *s, int lfd, struct seccomp_notif *req);

struct bp_loop *bp_loop_new(struct bp_state *state)
{
    struct bp_loop *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->state = state;
    int wake[2];
    L->sigfd = L->walls = L->home = L->cwd = -1;
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(L);
        return NULL;
    }
    L->wakefd = wake[0];
    L->wake_w = wake[1];
    return L;
}

void bp_loop_free(struct bp_loop *L)
{
    if (!L)
        return;
    for (int i = 0; i < L->nlisteners; i++)
        close(L->listeners[i]);
    for (int i = 0; i < L->nsockets; i++)
        close(L->sockets[i]);
    close(L->wakefd);
    close(L->wake_w);
    if (L->sigfd >= 0)
        close(L->sigfd);
    if (L->cwd >= 0)
        close(L->cwd);
    free(L);
}

/* mount_ns and home_ns stay the caller's (the sandbox's); called on the
 * thread that will run the loop, which gets a root and working directory
 * of its own for setns. */
int bp_loop_set_walls(struct bp_loop *L, int mount_ns, int home_ns)
{
    if (unshare(CLONE_FS) < 0)
        return -errno;
    int cwd = open(".", O_PATH | O_CLOEXEC);
    if (cwd < 0)
        return -errno;
    if (L->cwd >= 0)
        close(L->cwd);
    L->walls = mount_ns;
    L->home = home_ns;
    L->cwd = cwd;
    return 0;
}

/* Into the container's mount namespace, or home to ours (and our working
 * directory) around a call into Python. A failure leaves the thread where
 * it must not act, or walled away from the supervisor's files: fatal. */
static void walled(const struct bp_loop *L)
{
    /* unshare again: a thread Python started shares our root and cwd */
    if (L->walls >= 0 && (unshare(CLONE_FS) < 0 || setns(L->walls, CLONE_NEWNS) < 0))
        abort();
}

static void home(const struct bp_loop *L)
{
    if (L->walls >= 0 && (unshare(CLONE_FS) < 0 || setns(L->home, CLONE_NEWNS) < 0 ||
                          fchdir(L->cwd) < 0))
        abort();
}

static int py_wait(const struct bp_loop *L, pid_t tid, int status)
{
    home(L);
    int rc = bp_py_wait(tid, status);
    walled(L);
    return rc;
}

static void py_notify(const struct bp_loop *L, struct bp_notif *n)
{
    home(L);
    bp_py_notify(n);
    walled(L);
}

static void py_wake(const struct bp_loop *L)
{
    home(L);
    bp_py_wake();
    walled(L);
}

int bp_loop_add_listener(struct bp_loop *L, int fd)
{
    if (L->nlisteners >= BP_MAX_LISTENERS)
        return -ENOSPC;
    /* Wake-ups on the current CPU both ways (Linux 6.6+); older kernels
     * refuse the flag and the notifications still work. */
    unsigned long long flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags);
    L->listeners[L->nlisteners++] = fd;
    return 0;
}

int bp_loop_add_listener_socket(struct bp_loop *L, int sock)
{
    if (L->nsockets >= BP_MAX_LISTENERS)
        return -ENOSPC;
    L->sockets[L->nsockets++] = sock;
    return 0;
}

int bp_loop_wake(struct bp_loop *L)
{
    /* a full pipe already wakes the loop */
    return write(L->wake_w, "w", 1) == 1 || errno == EAGAIN ? 0 : -errno;
}

static void drop_listener(struct bp_loop *L, int i)
{
    close(L->listeners[i]);
    L->listeners[i] = L->listeners[--L->nlisteners];
}

static void serve(struct bp_loop *L, int i)
{
    struct seccomp_notif req;
    memset(&req, 0, sizeof req);
    if (ioctl(L->listeners[i], SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
        return;   /* ENOENT: the notifying task was interrupted meanwhile */
    if (bp_notify_handle(L->state, L->listeners[i], &req))
        return;
    struct bp_notif n = {.id = req.id, .pid = req.pid, .nr = req.data.nr,
                         .listener = L->listeners[i]};
    memcpy(n.args, req.data.args, sizeof n.args);
    if (req.data.nr >= 0 && req.data.nr < 512)
        L->state->fallbacks[req.data.nr]++;
    py_notify(L, &n);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int run(struct bp_loop *L)
{
    sigset_t chld;
    struct pollfd fds[2 + 2 * BP_MAX_LISTENERS];
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, NULL);
    L->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (L->sigfd < 0)
        return -errno;
    int reap = 1;   /* a SIGCHLD (or the safety timeout) says stops may be waiting */
    long long last_reap = 0;
    for (;;) {
        int status, ready;
        pid_t tid;
        long long now = now_ms();
        if (reap || now - last_reap >= SAFETY_POLL_MS) {   /* busy notifications: still reap */
            last_reap = now;
            while ((tid = waitpid(-1, &status, __WALL | __WNOTHREAD | WNOHANG)) > 0)
                if (py_wait(L, tid, status) < 0)
                    return -EINTR;
            if (tid < 0 && errno == ECHILD)
                return 0;
        }
        fds[0] = (struct pollfd){L->sigfd, POLLIN, 0};
        fds[1] = (struct pollfd){L->wakefd, POLLIN, 0};
        int n = L->nlisteners, m = L->nsockets;
        for (int i = 0; i < n; i++)
            fds[2 + i] = (struct pollfd){L->listeners[i], POLLIN, 0};
        for (int i = 0; i < m; i++)
            fds[2 + n + i] = (struct pollfd){L->sockets[i], POLLIN, 0};
        ready = poll(fds, 2 + n + m, SAFETY_POLL_MS);
        if (ready < 0 && errno != EINTR)
            return -errno;
        reap = ready <= 0;
        if (ready < 0)
            py_wake(L);   /* a signal for Python (brandpy run forwards SIGTERM) */
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(L->sigfd, &si, sizeof si) == sizeof si)
                ;
            reap = 1;
        }
        if (fds[1].revents & POLLIN) {
            char drain[256];
            while (read(L->wakefd, drain, sizeof drain) > 0)
                ;
            py_wake(L);
            reap = 1;   /* a request may have spawned or resumed a task */
        }
        for (int i = m - 1; i >= 0; i--) {
            if (!fds[2 + n + i].revents)
                continue;
            /* a listener sent by a new child (or the child died first) */
            int fd = bp_recv_listener(L->sockets[i]);
            close(L->sockets[i]);
            L->sockets[i] = L->sockets[--L->nsockets];
            if (fd >= 0)
                bp_loop_add_listener(L, fd);
        }
        for (int i = n - 1; i >= 0; i--) {
            if (fds[2 + i].revents & POLLIN)
                serve(L, i);
            else if (fds[2 + i].revents & (POLLHUP | POLLERR | POLLNVAL))
                drop_listener(L, i);   /* every task using that filter is gone */
        }
    }
}

int bp_loop_run(struct bp_loop *L)
{
    walled(L);
    int rc = run(L);
    home(L);
    return rc;
}
