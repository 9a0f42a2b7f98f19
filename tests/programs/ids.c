/* IDs that travel in structures and side channels: every line is a
 * relation that holds on Linux (the ID a call reports is the one getpid,
 * gettid, getuid... report for that process) or Linux's errno for an edge
 * value, so a run under brandpy must print what a native run prints.
 * `ids SECTION...` runs the named sections (all by default). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOBODY_PID 0x7ffffff0        /* no process has this PID */
#define OTHER_UID 4242               /* a user only this program's children become */
#define F_GETOWNER_UIDS 17           /* linux/fcntl.h, not in glibc's headers */

static long r(long ret) { return ret < 0 ? -errno : ret; }

static void show(const char *what, long ret)
{
    if (ret < 0)
        printf("%s: %s\n", what, strerrorname_np((int)-ret));
    else
        printf("%s: %ld\n", what, ret);
}

static void rel(const char *what, int holds) { printf("%s: %d\n", what, !!holds); }

static pid_t sleeper(int own_group, uid_t uid)
{
    pid_t p = fork();
    if (p == 0) {
        if (own_group)
            setpgid(0, 0);
        if (uid && setresuid(uid, uid, uid) < 0)
            _exit(1);
        for (;;)
            pause();
    }
    usleep(50000);   /* let it reach pause() (and its setuid) */
    return p;
}

static void reap(pid_t p)
{
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
}

/* The first number after `key` in a file, or -1. */
static long field(const char *path, const char *key)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *at = strstr(buf, key);
    return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* -- capabilities ------------------------------------------------------------- */

static long capget_(uint32_t version, int pid, struct __user_cap_data_struct *data)
{
    struct __user_cap_header_struct h = {version, pid};
    return r(syscall(SYS_capget, &h, data));
}

static void caps(void)
{
    struct __user_cap_data_struct own[2], other[2];
    struct __user_cap_header_struct h;
    pid_t child = sleeper(0, 0);
    show("capget 0", capget_(_LINUX_CAPABILITY_VERSION_3, 0, own));
    show("capget gettid", capget_(_LINUX_CAPABILITY_VERSION_3, gettid(), other));
    rel("capget gettid is the caller", !memcmp(own, other, sizeof own));
    show("capget getpid", capget_(_LINUX_CAPABILITY_VERSION_3, getpid(), other));
    rel("capget getpid is the caller", !memcmp(own, other, sizeof own));
    show("capget child", capget_(_LINUX_CAPABILITY_VERSION_3, child, other));
    rel("capget child has the caller's", !memcmp(own, other, sizeof own));
    show("capget nobody", capget_(_LINUX_CAPABILITY_VERSION_3, NOBODY_PID, other));
    show("capget -1", capget_(_LINUX_CAPABILITY_VERSION_3, -1, other));
    h = (struct __user_cap_header_struct){0x1234, 0};
    show("capget version probe", r(syscall(SYS_capget, &h, NULL)));
    printf("capget preferred version: %x\n", h.version);
    h = (struct __user_cap_header_struct){_LINUX_CAPABILITY_VERSION_3, gettid()};
    show("capset gettid", r(syscall(SYS_capset, &h, own)));
    h.pid = child;
    show("capset child", r(syscall(SYS_capset, &h, own)));
    reap(child);
}

/* -- record locks ---------------------------------------------------------------- */

static void lock_probe(const char *path, int expect_parent)
{
    int fd = open(path, O_RDWR);
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10};
    show("F_GETLK", r(fcntl(fd, F_GETLK, &q)));
    if (expect_parent)
        rel("F_GETLK l_pid is the holder", q.l_pid == getppid());
    else
        printf("F_GETLK l_pid of an OFD lock: %d\n", q.l_pid);
    q = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10};
    show("F_OFD_GETLK", r(fcntl(fd, F_OFD_GETLK, &q)));
    if (expect_parent)
        rel("F_OFD_GETLK l_pid is the holder", q.l_pid == getppid());
    else
        printf("F_OFD_GETLK l_pid of an OFD lock: %d\n", q.l_pid);
    q = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10, .l_pid = 1};
    show("F_OFD_GETLK with l_pid", r(fcntl(fd, F_OFD_GETLK, &q)));
}

static void locks(void)
{
    const char *path = "/tmp/ids-lock";
    char line[512], fdinfo[64];
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600), seen = 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10};
    show("F_SETLK", r(fcntl(fd, F_SETLK, &fl)));
    pid_t child = fork();
    if (child == 0) {
        lock_probe(path, 1);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    FILE *f = fopen("/proc/locks", "r");
    while (f && fgets(line, sizeof line, f)) {
        int pid;
        if (sscanf(line, "%*d: %*s %*s %*s %d", &pid) == 1 && pid == getpid())
            seen = 1;
    }
    if (f)
        fclose(f);
    rel("/proc/locks names the holder", seen);
    seen = 0;
    snprintf(fdinfo, sizeof fdinfo, "/proc/self/fdinfo/%d", fd);
    f = fopen(fdinfo, "r");
    while (f && fgets(line, sizeof line, f)) {
        int pid;
        if (sscanf(line, "lock: %*d: %*s %*s %*s %d", &pid) == 1 && pid == getpid())
            seen = 1;
    }
    if (f)
        fclose(f);
    rel("fdinfo lock names the holder", seen);
    fl.l_type = F_UNLCK;
    fcntl(fd, F_SETLK, &fl);
    fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10};
    show("F_OFD_SETLK", r(fcntl(fd, F_OFD_SETLK, &fl)));
    child = fork();
    if (child == 0) {
        lock_probe(path, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    close(fd);
    unlink(path);
}

/* -- file owners (SIGIO) --------------------------------------------------------------- */

static void owners(void)
{
    int sv[2], got, p;
    struct f_owner_ex ex;
    uid_t uids[2] = {-1, -1};
    sigset_t io;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    show("F_SETOWN getpid", r(fcntl(sv[0], F_SETOWN, getpid())));
    rel("F_GETOWN is getpid", syscall(SYS_fcntl, sv[0], F_GETOWN) == getpid());
    show("F_GETOWNER_UIDS", r(fcntl(sv[0], F_GETOWNER_UIDS, uids)));
    rel("F_GETOWNER_UIDS are getuid geteuid", uids[0] == getuid() && uids[1] == geteuid());
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, NULL);
    fcntl(sv[0], F_SETFL, O_ASYNC | O_NONBLOCK);
    (void)!write(sv[1], "x", 1);
    struct timespec second = {1, 0};
    got = sigtimedwait(&io, NULL, &second);
    rel("SIGIO reaches the owner", got == SIGIO);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    ex = (struct f_owner_ex){F_OWNER_TID, gettid()};
    show("F_SETOWN_EX tid", r(fcntl(sv[0], F_SETOWN_EX, &ex)));
    memset(&ex, 0, sizeof ex);
    show("F_GETOWN_EX", r(fcntl(sv[0], F_GETOWN_EX, &ex)));
    rel("F_GETOWN_EX is the thread", ex.type == F_OWNER_TID && ex.pid == gettid());
    pid_t group = sleeper(1, 0);
    ex = (struct f_owner_ex){F_OWNER_PGRP, group};
    show("F_SETOWN_EX pgrp", r(fcntl(sv[0], F_SETOWN_EX, &ex)));
    memset(&ex, 0, sizeof ex);
    fcntl(sv[0], F_GETOWN_EX, &ex);
    rel("F_GETOWN_EX is the group", ex.type == F_OWNER_PGRP && ex.pid == group);
    show("F_SETOWN -pgrp", r(fcntl(sv[0], F_SETOWN, -group)));
    rel("F_GETOWN is -pgrp", fcntl(sv[0], F_GETOWN) == -group);
    show("F_SETOWN nobody", r(fcntl(sv[0], F_SETOWN, NOBODY_PID)));
    ex = (struct f_owner_ex){F_OWNER_PID, NOBODY_PID};
    show("F_SETOWN_EX nobody", r(fcntl(sv[0], F_SETOWN_EX, &ex)));
    ex = (struct f_owner_ex){7, getpid()};
    show("F_SETOWN_EX bad type", r(fcntl(sv[0], F_SETOWN_EX, &ex)));
    p = getpid();
    show("FIOSETOWN", r(ioctl(sv[0], FIOSETOWN, &p)));
    p = 0;
    show("FIOGETOWN", r(ioctl(sv[0], FIOGETOWN, &p)));
    rel("FIOGETOWN is getpid", p == getpid());
    p = -group;
    show("SIOCSPGRP", r(ioctl(sv[0], SIOCSPGRP, &p)));
    p = 0;
    ioctl(sv[0], SIOCGPGRP, &p);
    rel("SIOCGPGRP is -pgrp", p == -group);
    reap(group);
    close(sv[0]);
    close(sv[1]);
}

/* -- POSIX timers --------------------------------------------------------------------- */

static volatile int thread_timer_fired;

static void on_timer(union sigval v)
{
    (void)v;
    thread_timer_fired = 1;
}

static void timers(void)
{
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN};
    sev._sigev_un._tid = gettid();
    timer_t t;
    sigset_t rt;
    siginfo_t si;
    char path[64];
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &rt, NULL);
    show("timer_create SIGEV_THREAD_ID", r(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &t)));
    snprintf(path, sizeof path, "/proc/%d/timers", getpid());
    rel("/proc/PID/timers names the thread", field(path, "tid.") == gettid());
    struct itimerspec soon = {.it_value = {0, 10000000}};
    syscall(SYS_timer_settime, t, 0, &soon, NULL);
    struct timespec second = {1, 0};
    int got = sigtimedwait(&rt, &si, &second);
    rel("the timer signals the thread", got == SIGRTMIN && si.si_code == SI_TIMER);
    sev._sigev_un._tid = NOBODY_PID;
    show("timer_create nobody", r(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &t)));
    pid_t child = sleeper(0, 0);
    sev._sigev_un._tid = child;
    show("timer_create other process", r(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &t)));
    clockid_t cpu;
    rel("clock_getcpuclockid child", clock_getcpuclockid(child, &cpu) == 0);
    struct timespec ts;
    show("clock_gettime child CPU clock", r(clock_gettime(cpu, &ts)));
    reap(child);
    /* glibc's SIGEV_THREAD: a helper thread named by its TID */
    struct sigevent thr = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = on_timer};
    timer_t t2;
    show("timer_create SIGEV_THREAD", r(timer_create(CLOCK_MONOTONIC, &thr, &t2)));
    timer_settime(t2, 0, &soon, NULL);
    for (int i = 0; i < 100 && !thread_timer_fired; i++)
        usleep(10000);
    rel("the SIGEV_THREAD timer runs", thread_timer_fired);
}

/* -- siginfo ------------------------------------------------------------------------------ */

static volatile sig_atomic_t handled_pid, handled_uid, handled;

static void on_info(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    handled_pid = si->si_pid;
    handled_uid = si->si_uid;
    handled = 1;
}

static pid_t signaller(int sig, uid_t uid)
{
    pid_t p = fork();
    if (p == 0) {
        if (uid && setresuid(uid, 0, 0) < 0)     /* the real uid is what si_uid shows */
            _exit(1);
        kill(getppid(), sig);
        pause();
        _exit(0);
    }
    return p;
}

static void wait_info(const char *what, int sig, pid_t pid, uid_t uid)
{
    sigset_t set;
    siginfo_t si = {0};
    char label[128];
    struct timespec limit = {5, 0};
    sigemptyset(&set);
    sigaddset(&set, sig);
    int got = sigtimedwait(&set, &si, &limit);
    snprintf(label, sizeof label, "%s: si_pid si_uid", what);
    rel(label, got == sig && si.si_pid == pid && si.si_uid == uid);
    printf("%s: si_code %d\n", what, si.si_code);
}

static void siginfo(void)
{
    sigset_t set;
    siginfo_t si;
    pid_t child;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);

    child = signaller(SIGUSR1, 0);
    wait_info("sigtimedwait kill", SIGUSR1, child, getuid());
    reap(child);
    child = signaller(SIGUSR1, OTHER_UID);
    wait_info("sigtimedwait kill by another user", SIGUSR1, child, OTHER_UID);
    reap(child);
    sigqueue(getpid(), SIGUSR2, (union sigval){42});
    wait_info("sigqueue self", SIGUSR2, getpid(), getuid());
    child = fork();
    if (child == 0) {
        sigqueue(getppid(), SIGUSR2, (union sigval){7});
        pause();
    }
    wait_info("sigqueue child", SIGUSR2, child, getuid());
    reap(child);
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
    wait_info("tgkill self", SIGUSR1, getpid(), getuid());
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_USER;
    si.si_pid = getpid();
    si.si_uid = getuid();
    show("rt_sigqueueinfo self SI_USER", r(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si)));
    wait_info("rt_sigqueueinfo self SI_USER", SIGUSR1, getpid(), getuid());
    si.si_code = SI_QUEUE;
    show("rt_tgsigqueueinfo self", r(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGUSR1,
                                              &si)));
    wait_info("rt_tgsigqueueinfo self", SIGUSR1, getpid(), getuid());

    /* a handler's siginfo */
    struct sigaction sa = {.sa_sigaction = on_info, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR2, &sa, NULL);
    child = signaller(SIGUSR2, 0);
    sigset_t none;
    sigemptyset(&none);
    while (!handled)
        sigsuspend(&none);     /* SIGUSR1 and SIGUSR2 are unblocked only here */
    rel("handler si_pid si_uid", handled_pid == child && handled_uid == (int)getuid());
    reap(child);

    /* SIGCHLD to a handler, and waitid */
    handled = 0;
    sigaction(SIGCHLD, &(struct sigaction){.sa_sigaction = on_info, .sa_flags = SA_SIGINFO},
              NULL);
    child = fork();
    if (child == 0) {
        if (setresuid(OTHER_UID, OTHER_UID, OTHER_UID) < 0)
            _exit(1);
        _exit(5);
    }
    while (!handled)
        sigsuspend(&none);
    rel("SIGCHLD handler si_pid si_uid", handled_pid == child && handled_uid == OTHER_UID);
    memset(&si, 0, sizeof si);
    show("waitid WNOWAIT", r(waitid(P_PID, child, &si, WEXITED | WNOWAIT)));
    rel("waitid WNOWAIT si_pid si_uid", si.si_pid == child && si.si_uid == OTHER_UID &&
        si.si_status == 5);
    memset(&si, 0, sizeof si);
    show("waitid", r(waitid(P_PID, child, &si, WEXITED)));
    rel("waitid si_pid si_uid", si.si_pid == child && si.si_uid == OTHER_UID);
    signal(SIGCHLD, SIG_DFL);

    /* signalfd */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    child = signaller(SIGUSR1, 0);
    struct signalfd_siginfo ssi;
    rel("signalfd read", read(sfd, &ssi, sizeof ssi) == sizeof ssi);
    rel("signalfd ssi_pid ssi_uid", ssi.ssi_pid == (uint32_t)child && ssi.ssi_uid == getuid() &&
        ssi.ssi_code == SI_USER);
    reap(child);
    close(sfd);
}

/* -- pidfds ---------------------------------------------------------------------------------- */

struct pidfd_info_v0 {                 /* linux/pidfd.h, Linux 6.13 */
    uint64_t mask, cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define PIDFD_GET_INFO_V0 _IOWR(0xFF, 11, struct pidfd_info_v0)

static void pidfds(void)
{
    pid_t child = sleeper(0, OTHER_UID);
    int pfd = syscall(SYS_pidfd_open, child, 0);
    char path[64];
    siginfo_t si;
    show("pidfd_open child", pfd < 0 ? -errno : 0);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pfd);
    rel("pidfd fdinfo Pid", field(path, "Pid:") == child);
    rel("pidfd fdinfo NSpid", field(path, "NSpid:") == child);
    struct pidfd_info_v0 info = {.mask = 3};
    long rc = r(ioctl(pfd, PIDFD_GET_INFO_V0, &info));
    show("PIDFD_GET_INFO", rc == -ENOTTY || rc == -EINVAL ? 0 : rc);
    rel("PIDFD_GET_INFO ids", rc < 0 || (info.pid == (uint32_t)child && info.tgid == (uint32_t)child
        && info.ppid == (uint32_t)getpid() && info.ruid == OTHER_UID && info.euid == OTHER_UID));
    show("pidfd_send_signal", r(syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0)));
    memset(&si, 0, sizeof si);
    show("waitid P_PIDFD", r(waitid(P_PIDFD, pfd, &si, WEXITED)));
    rel("waitid P_PIDFD si_pid si_uid", si.si_pid == child && si.si_uid == OTHER_UID &&
        si.si_code == CLD_KILLED && si.si_status == SIGKILL);
    close(pfd);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pfd = syscall(SYS_pidfd_open, getpid(), 0);
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    show("pidfd_send_signal info", r(syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, &si, 0)));
    wait_info("pidfd_send_signal info", SIGUSR1, getpid(), getuid());
    show("pidfd_send_signal no info", r(syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0)));
    wait_info("pidfd_send_signal no info", SIGUSR1, getpid(), getuid());
    close(pfd);
    show("pidfd_open -1", r(syscall(SYS_pidfd_open, -1, 0)));
    show("pidfd_open 0", r(syscall(SYS_pidfd_open, 0, 0)));
    show("pidfd_open nobody", r(syscall(SYS_pidfd_open, NOBODY_PID, 0)));
}

/* -- sockets ------------------------------------------------------------------------------- */

static void peer_of_child(uid_t uid)
{
    const char *path = "/tmp/ids.sock";
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&a, sizeof a);
    chmod(path, 0666);
    listen(l, 1);
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (uid && setresuid(uid, uid, uid) < 0)
            _exit(1);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(s, (struct sockaddr *)&a, sizeof a);
        (void)!read(s, &c, 1);
        _exit(0);
    }
    int c = accept(l, NULL, NULL);
    struct ucred uc = {0};
    socklen_t len = sizeof uc;
    show("SO_PEERCRED child", r(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &len)));
    rel(uid ? "SO_PEERCRED child of another user" : "SO_PEERCRED child",
        uc.pid == child && uc.uid == (uid ? uid : geteuid()) && len == sizeof uc);
    close(c);
    waitpid(child, NULL, 0);
    close(l);
    unlink(path);
}

static void creds_message(int from, int to, const struct ucred *explicit, const char *what)
{
    char cbuf[CMSG_SPACE(sizeof(struct ucred))] = {0}, data = 'x', label[128];
    struct iovec iov = {&data, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (explicit) {
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
        memcpy(CMSG_DATA(c), explicit, sizeof *explicit);
    }
    snprintf(label, sizeof label, "sendmsg %s", what);
    show(label, r(sendmsg(from, &m, 0)));
    memset(cbuf, 0, sizeof cbuf);
    m = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = sizeof cbuf};
    snprintf(label, sizeof label, "recvmsg %s", what);
    show(label, r(recvmsg(to, &m, MSG_DONTWAIT)));
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    struct ucred got = {0};
    if (c && c->cmsg_type == SCM_CREDENTIALS)
        memcpy(&got, CMSG_DATA(c), sizeof got);
    snprintf(label, sizeof label, "SCM_CREDENTIALS %s", what);
    rel(label, got.pid == getpid() && got.uid == getuid() && got.gid == getgid());
}

static void sockets(void)
{
    int sv[2], one = 1;
    struct ucred uc = {0};
    socklen_t len = sizeof uc;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    show("SO_PEERCRED", r(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &len)));
    rel("SO_PEERCRED is the caller", uc.pid == getpid() && uc.uid == geteuid() &&
        uc.gid == getegid() && len == sizeof uc);
    len = 4;
    uc.pid = 0;
    show("SO_PEERCRED short", r(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &len)));
    rel("SO_PEERCRED short is the caller's pid", uc.pid == getpid() && len == 4);
    gid_t groups[64], mine[64];
    int n = getgroups(64, mine);
    len = 0;
    long rc = r(getsockopt(sv[0], SOL_SOCKET, SO_PEERGROUPS, groups, &len));
    rel("SO_PEERGROUPS with no room: ERANGE unless no groups", rc == (n ? -ERANGE : 0));
    rel("SO_PEERGROUPS size is getgroups'", len == n * sizeof(gid_t));
    len = sizeof groups;
    show("SO_PEERGROUPS", r(getsockopt(sv[0], SOL_SOCKET, SO_PEERGROUPS, groups, &len)));
    rel("SO_PEERGROUPS are getgroups'", len == n * sizeof(gid_t) && !memcmp(groups, mine, len));
    close(sv[0]);
    close(sv[1]);
    peer_of_child(0);
    peer_of_child(OTHER_UID);
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    creds_message(sv[0], sv[1], NULL, "implicit");
    struct ucred self = {getpid(), getuid(), getgid()};
    creds_message(sv[0], sv[1], &self, "explicit");
    close(sv[0]);
    close(sv[1]);
}

/* -- priorities and other calls naming processes ------------------------------------------------ */

#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_WHO_PGRP 2
#define IOPRIO_WHO_USER 3
#define IOPRIO_BE(level) ((2 << 13) | (level))

static int nice_of(int which, int who)
{
    errno = 0;
    int v = getpriority(which, who);
    return errno ? -1000 - errno : v;
}

static int marker = 1234;

static void prio(void)
{
    pid_t child = sleeper(1, 0), other = sleeper(0, OTHER_UID);
    show("setpriority PRIO_PROCESS", r(setpriority(PRIO_PROCESS, child, 5)));
    printf("getpriority PRIO_PROCESS: %d\n", nice_of(PRIO_PROCESS, child));
    show("setpriority PRIO_PGRP", r(setpriority(PRIO_PGRP, child, 6)));
    printf("getpriority PRIO_PGRP: %d\n", nice_of(PRIO_PGRP, child));
    show("setpriority PRIO_USER", r(setpriority(PRIO_USER, OTHER_UID, 7)));
    printf("getpriority PRIO_USER: %d\n", nice_of(PRIO_USER, OTHER_UID));
    printf("getpriority of that user's process: %d\n", nice_of(PRIO_PROCESS, other));
    show("setpriority PRIO_USER unknown", r(setpriority(PRIO_USER, OTHER_UID + 1, 7)));
    printf("getpriority PRIO_USER unknown: %d\n", nice_of(PRIO_USER, OTHER_UID + 1));
    show("setpriority bad which", r(setpriority(7, 0, 1)));
    printf("getpriority bad which: %d\n", nice_of(7, 0));
    show("setpriority nobody", r(setpriority(PRIO_PROCESS, NOBODY_PID, 1)));
    show("ioprio_set process", r(syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, child, IOPRIO_BE(4))));
    rel("ioprio_get process", syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, child) == IOPRIO_BE(4));
    show("ioprio_set pgrp", r(syscall(SYS_ioprio_set, IOPRIO_WHO_PGRP, child, IOPRIO_BE(3))));
    rel("ioprio_get pgrp", syscall(SYS_ioprio_get, IOPRIO_WHO_PGRP, child) == IOPRIO_BE(3));
    show("ioprio_set user", r(syscall(SYS_ioprio_set, IOPRIO_WHO_USER, OTHER_UID, IOPRIO_BE(6))));
    rel("ioprio_get user", syscall(SYS_ioprio_get, IOPRIO_WHO_USER, OTHER_UID) == IOPRIO_BE(6));
    rel("ioprio_get of that user's process",
        syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, other) == IOPRIO_BE(6));
    show("ioprio_get user unknown", r(syscall(SYS_ioprio_get, IOPRIO_WHO_USER, OTHER_UID + 1)));
    show("ioprio_set user unknown", r(syscall(SYS_ioprio_set, IOPRIO_WHO_USER, OTHER_UID + 1,
                                              IOPRIO_BE(6))));
    show("ioprio_get bad which", r(syscall(SYS_ioprio_get, 9, 0)));
    show("ioprio_get nobody", r(syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, NOBODY_PID)));

    struct sched_param sp;
    show("sched_getparam child", r(sched_getparam(child, &sp)));
    show("sched_getscheduler child", r(sched_getscheduler(child)));
    cpu_set_t cpus;
    show("sched_getaffinity child", r(sched_getaffinity(child, sizeof cpus, &cpus)));
    struct rlimit rl;
    show("prlimit child", r(prlimit(child, RLIMIT_NOFILE, NULL, &rl)));
    void *head;
    size_t hlen;
    show("get_robust_list child", r(syscall(SYS_get_robust_list, child, &head, &hlen)));
    int value = 0;
    struct iovec local = {&value, sizeof value}, remote = {&marker, sizeof marker};
    show("process_vm_readv child", r(process_vm_readv(child, &local, 1, &remote, 1, 0)));
    rel("process_vm_readv reads the child", value == 1234);
    show("kcmp self", r(syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0)));
    show("kcmp child files", r(syscall(SYS_kcmp, getpid(), child, KCMP_FILE, 1, 1)));
    rel("kcmp child vm differs", syscall(SYS_kcmp, getpid(), child, KCMP_VM, 0, 0) > 0);
    show("kcmp nobody", r(syscall(SYS_kcmp, getpid(), NOBODY_PID, KCMP_VM, 0, 0)));
    show("move_pages child", r(syscall(SYS_move_pages, child, 0, NULL, NULL, NULL, 0)));
    show("move_pages nobody", r(syscall(SYS_move_pages, NOBODY_PID, 0, NULL, NULL, NULL, 0)));
    unsigned long nodes = 1;
    show("migrate_pages child", r(syscall(SYS_migrate_pages, child, 2, &nodes, &nodes)));
    show("migrate_pages nobody", r(syscall(SYS_migrate_pages, NOBODY_PID, 2, &nodes, &nodes)));
    reap(child);
    reap(other);
}

/* -- /proc ------------------------------------------------------------------------------------ */

static void proc(void)
{
    char path[128], line[1024];
    pid_t child = sleeper(1, 0);
    snprintf(path, sizeof path, "/proc/%d/status", child);
    rel("status Pid", field(path, "\nPid:") == child);
    rel("status Tgid", field(path, "\nTgid:") == child);
    rel("status PPid", field(path, "\nPPid:") == getpid());
    rel("status NSpid", field(path, "\nNSpid:") == child);
    rel("status NSpgid", field(path, "\nNSpgid:") == getpgid(child));
    rel("self status Uid", field("/proc/self/status", "\nUid:") == getuid());
    rel("self status Gid", field("/proc/self/status", "\nGid:") == getgid());
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    FILE *f = fopen(path, "r");
    int pid = 0, ppid = 0, pgrp = 0, sid = 0;
    if (f && fgets(line, sizeof line, f))
        sscanf(strrchr(line, ')') + 2, "%*c %d %d %d", &ppid, &pgrp, &sid);
    sscanf(line, "%d", &pid);
    if (f)
        fclose(f);
    rel("stat pid ppid pgrp session", pid == child && ppid == getpid() && pgrp == child &&
        sid == getsid(0));
    snprintf(path, sizeof path, "/proc/self/task/%d/children", gettid());
    rel("task children", field(path, "") == child);
    snprintf(path, sizeof path, "/proc/%d/sched", child);
    rel("sched names the process", field(path, "(") == child);
    rel("ns_last_pid", field("/proc/sys/kernel/ns_last_pid", "") >= child);
    f = fopen("/proc/loadavg", "r");
    long last = 0;
    if (f && fscanf(f, "%*s %*s %*s %*s %ld", &last) != 1)
        last = 0;
    if (f)
        fclose(f);
    rel("loadavg last pid", last >= child);
    reap(child);
    /* an orphan: its parent exits before it looks */
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return;
    pid_t middle = fork();
    if (middle == 0) {
        if (fork() == 0) {
            char c;
            (void)!read(pipefd[0], &c, 1);
            rel("an orphan's status PPid is its getppid", field("/proc/self/status", "\nPPid:")
                == getppid());
            _exit(0);
        }
        _exit(0);
    }
    waitpid(middle, NULL, 0);
    (void)!write(pipefd[1], "x", 1);
    usleep(200000);
}

/* -- edge values ---------------------------------------------------------------------------- */

static void edges(void)
{
    show("waitpid INT_MIN", r(waitpid(INT_MIN, NULL, WNOHANG)));
    show("waitpid -INT_MAX", r(waitpid(-INT_MAX, NULL, WNOHANG)));
    show("waitpid nobody", r(waitpid(NOBODY_PID, NULL, WNOHANG)));
    siginfo_t si;
    show("waitid P_PID 0", r(waitid(P_PID, 0, &si, WEXITED | WNOHANG)));
    show("waitid P_PID -1", r(waitid(P_PID, -1, &si, WEXITED | WNOHANG)));
    show("waitid P_PGID -5", r(waitid(P_PGID, -5, &si, WEXITED | WNOHANG)));
    show("waitid P_PID nobody", r(waitid(P_PID, NOBODY_PID, &si, WEXITED | WNOHANG)));
    show("kill INT_MIN", r(kill(INT_MIN, 0)));
    show("kill nobody", r(kill(NOBODY_PID, 0)));
    show("kill -nobody", r(kill(-NOBODY_PID, 0)));
    show("getpgid -1", r(getpgid(-1)));
    rel("getpgid 0 is getpgrp", getpgid(0) == getpgrp());
    show("getsid -1", r(getsid(-1)));
    show("getsid nobody", r(getsid(NOBODY_PID)));
    show("setpgid -1 0", r(setpgid(-1, 0)));
    show("setpgid nobody 0", r(setpgid(NOBODY_PID, 0)));
    show("setpgid 0 -1", r(setpgid(0, -1)));
    show("tkill -1", r(syscall(SYS_tkill, -1, 0)));
    show("tkill 0", r(syscall(SYS_tkill, 0, 0)));
    show("tgkill self -1", r(syscall(SYS_tgkill, getpid(), -1, 0)));
    show("tgkill nobody", r(syscall(SYS_tgkill, NOBODY_PID, NOBODY_PID, 0)));
    struct sched_param sp;
    show("sched_getparam -1", r(sched_getparam(-1, &sp)));
    show("sched_getscheduler -1", r(sched_getscheduler(-1)));
    show("sched_getparam nobody", r(sched_getparam(NOBODY_PID, &sp)));
    struct rlimit rl;
    show("prlimit -1", r(prlimit(-1, RLIMIT_NOFILE, NULL, &rl)));
    show("prlimit nobody", r(prlimit(NOBODY_PID, RLIMIT_NOFILE, NULL, &rl)));
    int value;
    struct iovec local = {&value, sizeof value}, remote = {&value, sizeof value};
    show("process_vm_readv -1", r(process_vm_readv(-1, &local, 1, &remote, 1, 0)));
    siginfo_t q = {.si_code = SI_QUEUE};
    show("rt_sigqueueinfo nobody", r(syscall(SYS_rt_sigqueueinfo, NOBODY_PID, 0, &q)));
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    int ns = ioctl(self, _IO(0xFF, 9), 0);      /* PIDFD_GET_USER_NAMESPACE, Linux 6.11 */
    close(self);
    uid_t owner = 12345;
    struct stat st;
    show("NS_GET_OWNER_UID", r(ioctl(ns, NS_GET_OWNER_UID, &owner)));
    rel("NS_GET_OWNER_UID is the owner stat shows of root's files",
        stat("/proc/sys", &st) == 0 && owner == st.st_uid);
    close(ns);
    show("prctl PR_SET_PTRACER parent", r(prctl(PR_SET_PTRACER, getppid(), 0, 0, 0)));
    show("prctl PR_SET_PTRACER nobody", r(prctl(PR_SET_PTRACER, NOBODY_PID, 0, 0, 0)));
    pid_t child = fork();
    if (child == 0) {
        pid_t sid = setsid();
        rel("setsid returns the caller's pid", sid == getpid());
        rel("getsid after setsid", getsid(0) == getpid());
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

/* -- SysV IPC ------------------------------------------------------------------------------- */

static void ipc(void)
{
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    struct shmid_ds sds;
    void *at = shmat(shm, NULL, 0);
    show("shmctl IPC_STAT", r(shmctl(shm, IPC_STAT, &sds)));
    rel("shm_cpid shm_lpid", sds.shm_cpid == getpid() && sds.shm_lpid == getpid());
    rel("shm_perm uid cuid", sds.shm_perm.uid == geteuid() && sds.shm_perm.cuid == geteuid() &&
        sds.shm_perm.gid == getegid());
    char line[512];
    int found = 0;
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    while (f && fgets(line, sizeof line, f)) {
        int id, cpid, lpid;
        unsigned uid;
        if (sscanf(line, "%*d %d %*o %*u %d %d %*u %u", &id, &cpid, &lpid, &uid) == 4 &&
            id == shm)
            found = cpid == getpid() && lpid == getpid() && uid == geteuid();
    }
    if (f)
        fclose(f);
    rel("/proc/sysvipc/shm cpid lpid uid", found);
    shmdt(at);
    shmctl(shm, IPC_RMID, NULL);
    int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    struct sembuf up = {0, 1, 0};
    semop(sem, &up, 1);
    rel("semctl GETPID", semctl(sem, 0, GETPID) == getpid());
    struct semid_ds semds;
    show("semctl IPC_STAT", r(semctl(sem, 0, IPC_STAT, &semds)));
    rel("sem_perm uid", semds.sem_perm.uid == geteuid() && semds.sem_perm.cuid == geteuid());
    semctl(sem, 0, IPC_RMID);
    int msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct { long type; char text[4]; } msg = {1, "abc"};
    msgsnd(msq, &msg, sizeof msg.text, 0);
    struct msqid_ds mds;
    msgctl(msq, IPC_STAT, &mds);
    rel("msg_lspid", mds.msg_lspid == getpid());
    msgrcv(msq, &msg, sizeof msg.text, 0, 0);
    show("msgctl IPC_STAT", r(msgctl(msq, IPC_STAT, &mds)));
    rel("msg_lrpid", mds.msg_lrpid == getpid() && mds.msg_perm.uid == geteuid());
    msgctl(msq, IPC_RMID, NULL);
}

/* -- the same from another thread ------------------------------------------------------------- */

static int go[2], thread_sfd, thread_sock;
static struct signalfd_siginfo thread_ssi;
static struct ucred thread_cred;

static void *other_thread(void *arg)
{
    char c, data, cbuf[CMSG_SPACE(sizeof(struct ucred))];
    (void)arg;
    if (read(go[0], &c, 1) != 1 || read(thread_sfd, &thread_ssi, sizeof thread_ssi) < 0)
        return NULL;
    struct iovec iov = {&data, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    if (recvmsg(thread_sock, &m, 0) > 0 && CMSG_FIRSTHDR(&m))
        memcpy(&thread_cred, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof thread_cred);
    return NULL;
}

/* A signalfd and SO_PASSCRED set up while another thread exists, which
 * then reads them. */
static void threads(void)
{
    sigset_t set;
    pthread_t t;
    int sv[2], one = 1;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    if (pipe(go) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
        return;
    pthread_create(&t, NULL, other_thread, NULL);
    thread_sfd = signalfd(-1, &set, 0);
    thread_sock = sv[1];
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    (void)!write(go[1], "x", 1);
    pid_t child = signaller(SIGUSR1, 0);
    usleep(100000);
    (void)!write(sv[0], "y", 1);
    pthread_join(t, NULL);
    rel("another thread's signalfd ssi_pid", thread_ssi.ssi_pid == (uint32_t)child);
    rel("another thread's SCM_CREDENTIALS", thread_cred.pid == getpid() &&
        thread_cred.uid == getuid());
    reap(child);
}

/* -- clone3's set_tid ------------------------------------------------------------------------ */

struct clone_args_v1 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size;
};

static long clone3_with(pid_t *tids, uint64_t count)
{
    struct clone_args_v1 a = {.exit_signal = SIGCHLD, .set_tid = (uintptr_t)tids,
                              .set_tid_size = count};
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        _exit(getpid() == tids[0] ? 0 : 1);
    if (pid < 0)
        return -errno;
    int status;
    waitpid(pid, &status, 0);
    return pid == tids[0] && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void set_tid(void)
{
    /* A PID nothing has, below pid_max (a host whose PIDs are near it,
     * 32768 by default, would otherwise ask for one past it: EINVAL). */
    long max = 32768;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 32768;
        fclose(f);
    }
    pid_t want = (pid_t)((getpid() + 1000) % max);
    while (want < 300 || kill(want, 0) == 0 || errno != ESRCH)
        want = want + 1 < max ? want + 1 : 300;
    show("clone3 set_tid gives that PID", clone3_with(&want, 1));
    pid_t own = getpid();
    show("clone3 set_tid taken", clone3_with(&own, 1));
    pid_t zero = 0;
    show("clone3 set_tid 0", clone3_with(&zero, 1));
    show("clone3 set_tid NULL", clone3_with(NULL, 1));
}

static const struct { const char *name; void (*run)(void); } SECTIONS[] = {
    {"caps", caps}, {"locks", locks}, {"owners", owners}, {"timers", timers},
    {"siginfo", siginfo}, {"pidfds", pidfds}, {"sockets", sockets}, {"prio", prio},
    {"proc", proc}, {"edges", edges}, {"ipc", ipc}, {"threads", threads},
    {"set_tid", set_tid}};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t n = sizeof SECTIONS / sizeof *SECTIONS;
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= !strcmp(argv[a], SECTIONS[i].name);
        if (wanted) {
            printf("== %s\n", SECTIONS[i].name);
            SECTIONS[i].run();
        }
    }
    return 0;
}
