/* A static test program for brandpy's runtime tests: each subcommand makes
 * raw syscalls and prints their results, so the same binary can be run
 * under chroot and under brandpy and the outputs compared. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

static long r(long ret) { return ret < 0 ? -errno : ret; }

static void show(const char *what, long ret)
{
    if (ret < 0)
        printf("%s: %s\n", what, strerrorname_np((int)-ret));
    else
        printf("%s: %ld\n", what, ret);
}

/* Pointers a buggy or hostile program might pass. */
static char *bad_pointers[4];

static void setup_bad(void)
{
    long page = sysconf(_SC_PAGESIZE);
    char *two = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *gone = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, page);
    mprotect(two + page, page, PROT_NONE);
    memset(two, 'a', page);               /* no NUL before the protected page */
    bad_pointers[0] = (char *)1;
    bad_pointers[1] = (char *)0xffffffffffff0000UL;
    bad_pointers[2] = gone;
    bad_pointers[3] = two + page - 10;    /* a string running into PROT_NONE */
}

static int badptr(void)
{
    char name[64];
    setup_bad();
    for (int i = 0; i < 4; i++) {
        char *b = bad_pointers[i];
#define T(label, call) do { snprintf(name, sizeof name, "%s[%d]", label, i); show(name, r(call)); } while (0)
        T("open", syscall(SYS_open, b, O_RDONLY));
        T("openat", syscall(SYS_openat, AT_FDCWD, b, O_RDONLY));
        T("creat", syscall(SYS_creat, b, 0644));
        T("stat", syscall(SYS_stat, b, bad_pointers[0]));
        T("stat-buf", syscall(SYS_stat, "/", b));
        T("lstat", syscall(SYS_lstat, b, NULL));
        T("newfstatat", syscall(SYS_newfstatat, AT_FDCWD, b, NULL, 0));
        T("statx", syscall(SYS_statx, AT_FDCWD, b, 0, 0x7ff, NULL));
        T("access", syscall(SYS_access, b, F_OK));
        T("faccessat2", syscall(SYS_faccessat2, AT_FDCWD, b, F_OK, 0));
        T("readlink", syscall(SYS_readlink, b, name, 10));
        T("readlink-buf", syscall(SYS_readlink, "/proc/self/exe", b, 100));
        T("mkdir", syscall(SYS_mkdir, b, 0755));
        T("unlink", syscall(SYS_unlink, b));
        T("rmdir", syscall(SYS_rmdir, b));
        T("rename-old", syscall(SYS_rename, b, "/tmp/x"));
        T("rename-new", syscall(SYS_rename, "/etc/hostname", b));
        T("link", syscall(SYS_link, "/etc/hostname", b));
        T("symlink", syscall(SYS_symlink, "x", b));
        T("chdir", syscall(SYS_chdir, b));
        T("chmod", syscall(SYS_chmod, b, 0644));
        T("chown", syscall(SYS_chown, b, 0, 0));
        T("truncate", syscall(SYS_truncate, b, 0));
        T("utimensat", syscall(SYS_utimensat, AT_FDCWD, b, NULL, 0));
        T("getxattr", syscall(SYS_getxattr, b, "user.x", name, 10));
        T("statfs", syscall(SYS_statfs, b, name));
        T("chroot", syscall(SYS_chroot, b));
        T("getcwd", syscall(SYS_getcwd, b, 100));
        T("execve", syscall(SYS_execve, b, NULL, NULL));
        T("execve-argv", syscall(SYS_execve, "/bin/true", b, NULL));
        T("openat2-how", syscall(SYS_openat2, AT_FDCWD, "/", b, sizeof(struct open_how)));
        T("connect", syscall(SYS_connect, 0, b, 110));
        T("kill-ok", syscall(SYS_kill, getpid(), 0));
#undef T
    }
    printf("survived\n");
    return 0;
}

static int openat_escape(const char *secret)
{
    char up[4096] = "";
    int root = open("/", O_RDONLY | O_DIRECTORY);
    int tmp = open("/tmp", O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 20; i++)
        strcat(up, "../");
    strcat(up, secret);
    show("openat-root", r(openat(root, up, O_RDONLY)));
    show("openat-tmp", r(openat(tmp, up, O_RDONLY)));
    show("openat-abs", r(openat(tmp, secret, O_RDONLY)));
    struct open_how how = {.flags = O_RDONLY};
    show("openat2", r(syscall(SYS_openat2, tmp, up, &how, sizeof how)));
    how.resolve = RESOLVE_IN_ROOT;
    show("openat2-in-root", r(syscall(SYS_openat2, tmp, up, &how, sizeof how)));
    how.resolve = RESOLVE_BENEATH;
    show("openat2-beneath", r(syscall(SYS_openat2, tmp, "../etc", &how, sizeof how)));
    return 0;
}

static int unix_sock(const char *op, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    socklen_t len = sizeof addr;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (!strcmp(op, "connect")) {
        show("connect", r(connect(s, (struct sockaddr *)&addr, sizeof addr)));
        return 0;
    }
    show("bind", r(bind(s, (struct sockaddr *)&addr, sizeof addr)));
    memset(&addr, 0, sizeof addr);
    show("getsockname", r(getsockname(s, (struct sockaddr *)&addr, &len)));
    printf("name: %s\n", addr.sun_path);
    listen(s, 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    strncpy(to.sun_path, path, sizeof to.sun_path - 1);
    show("connect", r(connect(c, (struct sockaddr *)&to, sizeof to)));
    memset(&addr, 0, sizeof addr);
    len = sizeof addr;
    show("getpeername", r(getpeername(c, (struct sockaddr *)&addr, &len)));
    printf("peer: %s\n", addr.sun_path);
    memset(&addr, 0, sizeof addr);
    len = sizeof addr;
    int a = accept(s, (struct sockaddr *)&addr, &len);
    show("accept", a < 0 ? -errno : 0);
    unlink(path);
    return 0;
}

/* Datagrams to a pathname: sendto, sendmsg (two iovecs, SCM_RIGHTS) and
 * sendmmsg (msg_len), a connected send, a missing destination, bad
 * pointers and descriptors. Prints what arrived. */
static void dgram_recv(int s, const char *what)
{
    char buf[64] = "";
    int fd = -1;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof ctl.buf};
    long n = r(recvmsg(s, &msg, MSG_DONTWAIT));
    struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
    printf("%s: recv %ld '%s'%s\n", what, n, n > 0 ? buf : "", fd >= 0 ? " +fd" : "");
    if (fd >= 0) {
        show("write through the fd", r(write(fd, "piped", 5)));
        close(fd);
    }
}

static int dgram(const char *path)
{
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    strncpy(to.sun_path, path, sizeof to.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0), c = socket(AF_UNIX, SOCK_DGRAM, 0);
    show("bind", r(bind(s, (struct sockaddr *)&to, sizeof to)));
    show("sendto", r(sendto(c, "to", 2, 0, (struct sockaddr *)&to, sizeof to)));
    dgram_recv(s, "sendto");
    struct iovec iov[2] = {{"two ", 4}, {"parts", 5}};
    struct msghdr msg = {.msg_name = &to, .msg_namelen = sizeof to, .msg_iov = iov,
                         .msg_iovlen = 2};
    show("sendmsg", r(sendmsg(c, &msg, 0)));
    dgram_recv(s, "sendmsg");
    int pipefd[2];
    pipe(pipefd);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &pipefd[1], sizeof(int));
    show("sendmsg-fd", r(sendmsg(c, &msg, 0)));
    close(pipefd[1]);
    dgram_recv(s, "sendmsg-fd");
    char got[8] = "";
    show("read the pipe", r(read(pipefd[0], got, sizeof got - 1)));
    printf("pipe: '%s'\n", got);
    int bad = 999;
    memcpy(CMSG_DATA(cm), &bad, sizeof(int));
    show("sendmsg-badfd", r(sendmsg(c, &msg, 0)));
    cm->cmsg_len = sizeof ctl.buf + 8;
    show("sendmsg-badcmsg", r(sendmsg(c, &msg, 0)));
    msg.msg_control = NULL;
    msg.msg_controllen = 0;
    struct mmsghdr mm[3] = {{.msg_hdr = msg}, {.msg_hdr = msg}, {.msg_hdr = msg}};
    mm[1].msg_hdr.msg_iovlen = 1;
    mm[2].msg_hdr.msg_iov = (struct iovec *)8;   /* the third fails: two are sent */
    show("sendmmsg", r(syscall(SYS_sendmmsg, c, mm, 3, 0)));
    printf("msg_len: %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    dgram_recv(s, "sendmmsg");
    dgram_recv(s, "sendmmsg");
    show("sendmsg-badptr", r(syscall(SYS_sendmsg, c, (void *)8, 0)));
    struct sockaddr_un missing = {.sun_family = AF_UNIX, .sun_path = "/nowhere/x"};
    msg.msg_name = &missing;
    show("sendmsg-missing", r(sendmsg(c, &msg, 0)));
    show("connect", r(connect(c, (struct sockaddr *)&to, sizeof to)));
    msg.msg_name = NULL;
    msg.msg_namelen = 0;
    show("sendmsg-connected", r(sendmsg(c, &msg, 0)));
    dgram_recv(s, "sendmsg-connected");
    unlink(path);
    return 0;
}

static void *thread_exec(void *arg)
{
    char *argv[] = {"/bin/sh", "-c", "echo exec from thread; exit 9", NULL};
    execv(argv[0], argv);
    return arg;
}

static int procs(void)
{
    /* fork, vfork, threads, clone3, exec from a thread */
    pid_t p = fork();
    if (p == 0)
        _exit(11);
    int st;
    waitpid(p, &st, 0);
    printf("fork: %d\n", WEXITSTATUS(st));
    p = vfork();
    if (p == 0) {
        char *argv[] = {"/bin/sh", "-c", "exit 12", NULL};
        execv(argv[0], argv);
        _exit(99);
    }
    waitpid(p, &st, 0);
    printf("vfork+exec: %d\n", WEXITSTATUS(st));
    struct { unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack,
             stack_size, tls; } args = {.exit_signal = SIGCHLD};
    long c = syscall(SYS_clone3, &args, sizeof args);
    if (c == 0)
        _exit(13);
    if (c < 0) {
        printf("clone3: %s\n", strerrorname_np(errno));
    } else {
        waitpid(c, &st, 0);
        printf("clone3: %d\n", WEXITSTATUS(st));
    }
    args.flags = CLONE_NEWUSER;
    show("clone3-newuser", r(syscall(SYS_clone3, &args, sizeof args)));
    p = fork();
    if (p == 0) {
        pthread_t t;
        pthread_create(&t, NULL, thread_exec, NULL);
        pthread_join(t, NULL);
        _exit(98);
    }
    waitpid(p, &st, 0);
    printf("exec from thread: %d\n", WEXITSTATUS(st));
    return 0;
}

static int chroot_escape(void)
{
    /* the classic: chroot without chdir, climb out with "..", chroot(".") */
    char buf[256] = "";
    mkdir("/tmp/jail", 0755);
    show("chroot", r(chroot("/tmp/jail")));
    for (int i = 0; i < 10; i++)
        chdir("..");
    show("chroot-dot", r(chroot(".")));
    int fd = open("/secret", O_RDONLY);
    show("open", fd < 0 ? -errno : 0);
    if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0)
        printf("read: %s", buf);
    return 0;
}

static int newer_syscalls(void)
{
    /* raw calls added after Linux 4.19, then the libc paths that fall back */
    struct open_how how = {.flags = O_RDONLY};
    show("openat2", r(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how)));
    struct { unsigned long long flags, pidfd, child_tid, parent_tid, exit_signal, stack,
             stack_size, tls; } args = {.exit_signal = SIGCHLD};
    long c = syscall(SYS_clone3, &args, sizeof args);
    if (c == 0)
        _exit(0);
    if (c > 0)
        waitpid(c, NULL, 0);
    show("clone3", c < 0 ? -errno : 0);
    show("close_range", r(syscall(SYS_close_range, 100, 200, 0)));
    show("pidfd_open", r(syscall(SYS_pidfd_open, getpid(), 0)));
    pid_t p = fork();      /* glibc's fork: clone */
    if (p == 0)
        _exit(3);
    int st;
    waitpid(p, &st, 0);
    printf("fork: %d\n", WEXITSTATUS(st));
    closefrom(3);          /* close_range, or a loop over /proc/self/fd */
    printf("closefrom: ok\n");
    return 0;
}

static int denied(void)
{
    show("mount", r(syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, NULL)));
    show("umount2", r(syscall(SYS_umount2, "/", 0)));
    show("reboot", r(syscall(SYS_reboot, 0xfee1dead, 672274793, 0x1234567, NULL)));
    show("kexec_load", r(syscall(SYS_kexec_load, 0, 0, NULL, 0)));
    show("init_module", r(syscall(SYS_init_module, NULL, 0, "")));
    show("bpf", r(syscall(SYS_bpf, 0, NULL, 0)));
    show("swapon", r(syscall(SYS_swapon, "/swap", 0)));
    show("settimeofday", r(syscall(SYS_settimeofday, NULL, NULL)));
    show("keyctl", r(syscall(SYS_keyctl, 0, 0, 0, 0, 0)));
    show("unshare", r(syscall(SYS_unshare, CLONE_NEWUSER)));
    show("userfaultfd", r(syscall(SYS_userfaultfd, 0)));
    show("perf_event_open", r(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)));
    show("open_by_handle_at", r(syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0)));
    show("ptrace-attach-init", r(syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0)));
    show("personality", r(syscall(SYS_personality, 0x0400000)));   /* READ_IMPLIES_EXEC */
    return 0;
}

static void on_alarm(int sig)
{
    /* use the stack below the interrupted call's red zone, where the
     * supervisor's scratch copy of the path lived */
    volatile char scribble[8192];
    memset((char *)scribble, 'x', sizeof scribble);
    (void)sig;
}

static int restart(void)
{
    /* a blocking open interrupted by a SA_RESTART handler is restarted by
     * the kernel with the registers the supervisor rewrote */
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    unlink("/tmp/fifo");
    mkfifo("/tmp/fifo", 0600);
    pid_t writer = fork();
    if (writer == 0) {
        usleep(400000);
        int fd = open("/tmp/fifo", O_WRONLY);
        (void)!write(fd, "hi", 2);
        _exit(0);
    }
    struct itimerval it = {.it_value = {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int fd = open("/tmp/fifo", O_RDONLY);
    char buf[3] = "";
    show("open", fd < 0 ? -errno : 0);
    if (fd >= 0 && read(fd, buf, 2) == 2)
        printf("read: %s\n", buf);
    waitpid(writer, NULL, 0);
    return 0;
}

/* Calls Linux never fails with EINTR, each with a signal due within
 * microseconds whose handler lacks SA_RESTART (one-shot, so a slow engine
 * is not buried under signals); then a fifo open, which such a signal does
 * interrupt. */
static int interrupted(void)
{
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    pid_t pid = getpid();
    int wrong_pid = 0, failed_stat = 0, failed_open = 0;
    for (int i = 0; i < 10000; i++) {
        struct itimerval soon = {.it_value = {0, 1 + i % 10}};
        struct stat st;
        setitimer(ITIMER_REAL, &soon, NULL);
        wrong_pid += getpid() != pid;
        failed_stat += stat("/", &st) != 0;
        int fd = open("/etc/passwd", O_RDONLY);
        failed_open += fd < 0;
        if (fd >= 0)
            close(fd);
    }
    printf("wrong getpid: %d\nfailed stat: %d\nfailed open: %d\n", wrong_pid, failed_stat,
           failed_open);
    unlink("/tmp/fifo");
    mkfifo("/tmp/fifo", 0600);
    struct itimerval once = {.it_value = {0, 100000}};
    setitimer(ITIMER_REAL, &once, NULL);
    show("fifo open", r(open("/tmp/fifo", O_RDONLY)));
    return 0;
}

/* One line per call: the result the engines must agree on (and with Linux). */
static void stat_line(const char *what, const char *path, int flags)
{
    struct stat st;
    long rc = r(fstatat(AT_FDCWD, path, &st, flags));
    if (rc < 0)
        printf("%s %s: %s\n", what, path, strerrorname_np((int)-rc));
    else
        printf("%s %s: mode=%o uid=%u gid=%u size=%lld nlink=%lu\n", what, path, st.st_mode,
               st.st_uid, st.st_gid, S_ISDIR(st.st_mode) ? 0LL : (long long)st.st_size,
               (unsigned long)st.st_nlink);
}

static int corpus(void)
{
    static const char *paths[] = {
        "/", "/etc", "/etc/passwd", "/etc/", "/etc/passwd/", "/nonexistent", "/etc/nope/x",
        "/tmp/c/file", "/tmp/c/dir", "/tmp/c/link", "/tmp/c/dangling", "/tmp/c/loop",
        "/tmp/c/abs", "/tmp/c/dir/..", "/tmp/c/dir/.", "/tmp/c/link/", "/../../etc/passwd",
        "tmp/c/file", "./tmp/c/dir/../file", "/dev/null", "/proc/self", "/proc/1/stat", ""};
    char buf[256];
    mkdir("/tmp/c", 0755);
    int fd = open("/tmp/c/file", O_CREAT | O_WRONLY | O_TRUNC, 0640);
    (void)!write(fd, "12345", 5);
    close(fd);
    mkdir("/tmp/c/dir", 0700);
    symlink("file", "/tmp/c/link");
    symlink("missing", "/tmp/c/dangling");
    symlink("loop", "/tmp/c/loop");
    symlink("/tmp/c/dir", "/tmp/c/abs");
    chdir("/");
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        const char *p = paths[i];
        stat_line("stat", p, 0);
        stat_line("lstat", p, AT_SYMLINK_NOFOLLOW);
        printf("access %s: %ld %ld\n", p, r(access(p, F_OK)), r(access(p, R_OK | X_OK)));
        long n = r(readlink(p, buf, sizeof buf - 1));
        if (n >= 0) {
            buf[n] = 0;
            printf("readlink %s: %s\n", p, buf);
        } else {
            printf("readlink %s: %s\n", p, strerrorname_np((int)-n));
        }
        int flags[] = {O_RDONLY, O_RDONLY | O_DIRECTORY, O_RDONLY | O_NOFOLLOW, O_WRONLY,
                       O_PATH};
        for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
            int o = open(p, flags[f] | O_CLOEXEC);
            printf("open %s %o: %s\n", p, flags[f], o >= 0 ? "ok" : strerrorname_np(errno));
            if (o >= 0) {
                struct stat st;
                printf("  fstat: %ld mode=%o\n", r(fstat(o, &st)), st.st_mode);
                close(o);
            }
        }
    }
    int dfd = open("/tmp/c", O_RDONLY | O_DIRECTORY);
    printf("openat rel: %s\n", openat(dfd, "file", O_RDONLY) >= 0 ? "ok" : strerrorname_np(errno));
    printf("openat dotdot: %s\n",
           openat(dfd, "../../../etc/passwd", O_RDONLY) >= 0 ? "ok" : strerrorname_np(errno));
    printf("excl: %s\n", open("/tmp/c/file", O_CREAT | O_EXCL | O_WRONLY, 0600) >= 0 ? "ok"
                                                                                   : strerrorname_np(errno));
    printf("creat new: %s\n", open("/tmp/c/new", O_CREAT | O_EXCL | O_WRONLY, 0604) >= 0 ? "ok"
                                                                                      : strerrorname_np(errno));
    stat_line("stat", "/tmp/c/new", 0);
    umask(077);
    printf("creat umask: %s\n", open("/tmp/c/new2", O_CREAT | O_WRONLY, 0666) >= 0 ? "ok"
                                                                                  : strerrorname_np(errno));
    stat_line("stat", "/tmp/c/new2", 0);
    if (fork() == 0)        /* a child creates with the umask it inherited */
        _exit(open("/tmp/c/new3", O_CREAT | O_WRONLY, 0666) < 0);
    wait(NULL);
    stat_line("stat", "/tmp/c/new3", 0);
    chdir("/tmp/c/dir");
    printf("getcwd: %s\n", getcwd(buf, sizeof buf) ? buf : strerrorname_np(errno));
    printf("getcwd small: %s\n", getcwd(buf, 3) ? buf : strerrorname_np(errno));
    printf("getpid: %d gettid: %ld\n", getpid(), syscall(SYS_gettid));
    return 0;
}

/* Job control on a pseudo-terminal: the process group and session IDs
 * the terminal ioctls take and give must be the ones getpgrp and getsid
 * report. */
static int tty(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) {
        show("posix_openpt", -errno);
        return 1;
    }
    pid_t child = fork();
    if (child == 0) {
        setsid();
        int slave = open(ptsname(master), O_RDWR);
        show("TIOCSCTTY", r(ioctl(slave, TIOCSCTTY, 0)));
        pid_t pgrp = 0, sid = 0;
        show("TIOCGPGRP", r(ioctl(slave, TIOCGPGRP, &pgrp)));
        printf("pgrp matches: %d\n", pgrp == getpgrp());
        show("TIOCGSID", r(ioctl(slave, TIOCGSID, &sid)));
        printf("sid matches: %d\n", sid == getsid(0));
        pid_t group = fork();
        if (group == 0) {
            setpgid(0, 0);
            pause();
            _exit(0);
        }
        setpgid(group, group);             /* both sides, as shells do */
        show("TIOCSPGRP child group", r(ioctl(slave, TIOCSPGRP, &group)));
        ioctl(slave, TIOCGPGRP, &pgrp);
        printf("foreground is the child group: %d\n", pgrp == group);
        signal(SIGTTOU, SIG_IGN);          /* we are in the background now */
        pid_t own = getpgrp();
        show("TIOCSPGRP back", r(ioctl(slave, TIOCSPGRP, &own)));
        pid_t unknown = 4242;
        show("TIOCSPGRP unknown group", r(ioctl(slave, TIOCSPGRP, &unknown)));
        show("TIOCSPGRP bad pointer", r(ioctl(slave, TIOCSPGRP, (pid_t *)1)));
        kill(group, SIGKILL);
        waitpid(group, NULL, 0);
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    return 0;
}

/* prctl's name and dumpable options (the supervisor performs them) and
 * PR_SET_PTRACER (a PID, translated at a ptrace stop): the name exec
 * gave, renamed ones (a process's, a thread's, one ending in a newline),
 * all 16 bytes written; dumpable per process, inherited by fork, reset by
 * a change of IDs and by exec. Started as /usr/bin/pname (a symlink to probe), as busybox's
 * applets are. */
static void show_name(const char *what)
{
    char name[16];
    memset(name, 'X', sizeof name);
    long rc = r(prctl(PR_GET_NAME, name));
    if (rc < 0) {
        show(what, rc);
        return;
    }
    printf("%s: %ld \"", what, rc);
    for (size_t i = 0; i < sizeof name; i++)
        printf(name[i] > ' ' && name[i] < 127 ? "%c" : "\\x%02x", (unsigned char)name[i]);
    printf("\"\n");
}

static void *prctl_thread(void *arg)
{
    show_name("thread name");
    pthread_setname_np(pthread_self(), "worker");
    show_name("thread renamed");
    show("thread dumpable", r(prctl(PR_GET_DUMPABLE)));
    return arg;
}

static int prctl_probe(const char *self, int after_exec)
{
    show_name("name");
    show("dumpable", r(prctl(PR_GET_DUMPABLE)));
    if (after_exec)
        return 0;
    show("name bad pointer", r(prctl(PR_GET_NAME, (char *)1)));
    show("set dumpable 2", r(prctl(PR_SET_DUMPABLE, 2)));
    show("set dumpable 1<<32", r(syscall(SYS_prctl, PR_SET_DUMPABLE, 1UL << 32)));
    show("set dumpable 0", r(prctl(PR_SET_DUMPABLE, 0)));
    show("dumpable", r(prctl(PR_GET_DUMPABLE)));
    show("option 1<<32 | GET_DUMPABLE", r(syscall(SYS_prctl, 1UL << 32 | PR_GET_DUMPABLE)));
    pthread_t t;
    pthread_create(&t, NULL, prctl_thread, NULL);
    pthread_join(t, NULL);
    show_name("name after the thread's");
    pid_t child = fork();
    if (child == 0) {
        show("child dumpable", r(prctl(PR_GET_DUMPABLE)));
        show("child set dumpable 1", r(prctl(PR_SET_DUMPABLE, 1)));
        _exit(0);
    }
    waitpid(child, NULL, 0);
    show("dumpable after the child's", r(prctl(PR_GET_DUMPABLE)));
    show("set ptracer parent", r(prctl(PR_SET_PTRACER, getppid())));
    show("set ptracer 4242", r(prctl(PR_SET_PTRACER, 4242)));
    show("set ptracer any", r(prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY)));
    show("set dumpable 1", r(prctl(PR_SET_DUMPABLE, 1)));
    show("setresgid 1000", r(syscall(SYS_setresgid, 1000, 1000, 1000)));
    show("dumpable after setresgid", r(prctl(PR_GET_DUMPABLE)));
    show("set dumpable 1", r(prctl(PR_SET_DUMPABLE, 1)));
    show("setresuid unchanged", r(syscall(SYS_setresuid, -1, -1, -1)));
    show("dumpable after an unchanged setresuid", r(prctl(PR_GET_DUMPABLE)));
    show("setresuid 1000", r(syscall(SYS_setresuid, 1000, 1000, 1000)));
    show("dumpable after setresuid", r(prctl(PR_GET_DUMPABLE)));
    show("set name", r(prctl(PR_SET_NAME, "renamed-longer-than-15")));
    show_name("renamed");
    show("set name newline", r(prctl(PR_SET_NAME, "nl\n")));
    show_name("renamed newline");
    execl(self, "pname", "prctl", "exec", (char *)NULL);
    show("exec", -errno);
    return 1;
}

/* uname: every field, and how many bytes past each field's end are not
 * NUL (Linux pads them); bad pointers; sethostname, setdomainname; a
 * process in a UTS namespace it unshared, and its child. */
static void show_uts(const char *what, void *buf)
{
    struct utsname *u = buf;
    memset(u, 'X', sizeof *u);
    long rc = r(syscall(SYS_uname, u));
    if (rc < 0) {
        show(what, rc);
        return;
    }
    int dirt = 0;
    char *fields[6] = {u->sysname, u->nodename, u->release, u->version, u->machine,
                       u->domainname};
    for (int i = 0; i < 6; i++)
        for (size_t j = strnlen(fields[i], sizeof u->sysname); j < sizeof u->sysname; j++)
            dirt += fields[i][j] != 0;
    printf("%s: %ld [%.65s] [%.65s] [%.65s] [%.65s] [%.65s] [%.65s] dirt %d\n", what, rc,
           u->sysname, u->nodename, u->release, u->version, u->machine, u->domainname, dirt);
}

static void *uts_thread(void *arg)
{
    struct utsname u;
    show_uts("thread", &u);
    return arg;
}

static int uts_probe(void)
{
    struct utsname u;
    char long_name[66];
    setup_bad();
    show_uts("uname", &u);
    show("uname bad pointer", r(syscall(SYS_uname, bad_pointers[0])));
    show("uname into PROT_NONE", r(syscall(SYS_uname, bad_pointers[3])));
    pthread_t t;
    pthread_create(&t, NULL, uts_thread, NULL);
    pthread_join(t, NULL);
    show("sethostname", r(sethostname("probe-host", 10)));
    show_uts("after sethostname", &u);
    show("setdomainname", r(setdomainname("probe.domain", 12)));
    show_uts("after setdomainname", &u);
    memset(long_name, 'h', sizeof long_name);
    show("sethostname 65", r(sethostname(long_name, 65)));
    show("sethostname 64", r(sethostname(long_name, 64)));
    show_uts("after a 64-byte name", &u);
    pid_t child = fork();
    if (child == 0) {
        show("child unshare", r(unshare(CLONE_NEWUTS)));
        show("child sethostname", r(sethostname("own-uts", 7)));
        show_uts("child", &u);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            show_uts("grandchild", &u);
            _exit(0);
        }
        waitpid(grandchild, NULL, 0);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    show_uts("after the child's", &u);
    return 0;
}

/* statfs of each path given (the fields that do not change as files come
 * and go), then bad pointers for the path and the buffer. */
static int statfs_probe(int n, char **paths)
{
    struct statfs sfs;
    setup_bad();
    for (int i = 0; i < n; i++) {
        memset(&sfs, 'X', sizeof sfs);
        long rc = r(syscall(SYS_statfs, paths[i], &sfs));
        if (rc < 0) {
            show(paths[i], rc);
            continue;
        }
        printf("%s: %ld type %lx bsize %ld namelen %ld frsize %ld flags %lx fsid %x:%x\n",
               paths[i], rc, (long)sfs.f_type, (long)sfs.f_bsize, (long)sfs.f_namelen,
               (long)sfs.f_frsize, (long)sfs.f_flags, sfs.f_fsid.__val[0], sfs.f_fsid.__val[1]);
    }
    show("bad path", r(syscall(SYS_statfs, bad_pointers[0], &sfs)));
    show("path into PROT_NONE", r(syscall(SYS_statfs, bad_pointers[3], &sfs)));
    show("bad buffer", r(syscall(SYS_statfs, "/", bad_pointers[0])));
    show("buffer into PROT_NONE", r(syscall(SYS_statfs, "/", bad_pointers[3])));
    return 0;
}

/* /proc/filesystems opened as libselinux does, and in other ways: the
 * descriptor's flags and what it reads. */
static void show_read(const char *what, int dirfd, const char *path, int flags)
{
    char buf[4096];
    long fd = r(syscall(SYS_openat, dirfd, path, flags)), n, total = 0;
    unsigned long sum = 0;
    if (fd < 0) {
        show(what, fd);
        return;
    }
    while ((n = read((int)fd, buf, sizeof buf)) > 0)
        for (long i = 0; i < n; i++, total++)
            sum = sum * 31 + (unsigned char)buf[i];
    printf("%s: fd flags %d status flags %o bytes %ld sum %lx\n", what, fcntl((int)fd, F_GETFD),
           fcntl((int)fd, F_GETFL), total, sum);
    close((int)fd);
}

static int filesystems_probe(void)
{
    show_read("libselinux's", AT_FDCWD, "/proc/filesystems", O_RDONLY | O_CLOEXEC);
    show_read("inherited", AT_FDCWD, "/proc/filesystems", O_RDONLY);
    show_read("nonblocking", AT_FDCWD, "/proc/filesystems", O_RDONLY | O_NONBLOCK);
    show_read("dot", AT_FDCWD, "/proc/./filesystems", O_RDONLY);
    show_read("slash", AT_FDCWD, "/proc/filesystems/", O_RDONLY);
    show_read("directory", AT_FDCWD, "/proc/filesystems", O_RDONLY | O_DIRECTORY);
    int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    show_read("relative", proc, "filesystems", O_RDONLY);
    show_read("bad pointer", AT_FDCWD, (char *)1, O_RDONLY);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && !strcmp(argv[1], "badptr"))
        return badptr();
    if (argc >= 3 && !strcmp(argv[1], "openat-escape"))
        return openat_escape(argv[2]);
    if (argc >= 4 && !strcmp(argv[1], "unix"))
        return unix_sock(argv[2], argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "dgram"))
        return dgram(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "procs"))
        return procs();
    if (argc >= 2 && !strcmp(argv[1], "chroot-escape"))
        return chroot_escape();
    if (argc >= 2 && !strcmp(argv[1], "newer-syscalls"))
        return newer_syscalls();
    if (argc >= 2 && !strcmp(argv[1], "denied"))
        return denied();
    if (argc >= 2 && !strcmp(argv[1], "restart"))
        return restart();
    if (argc >= 2 && !strcmp(argv[1], "interrupted"))
        return interrupted();
    if (argc >= 2 && !strcmp(argv[1], "tty"))
        return tty();
    if (argc >= 2 && !strcmp(argv[1], "corpus"))
        return corpus();
    if (argc >= 2 && !strcmp(argv[1], "prctl"))
        return prctl_probe("/usr/bin/pname", argc >= 3);
    if (argc >= 2 && !strcmp(argv[1], "uname"))
        return uts_probe();
    if (argc >= 2 && !strcmp(argv[1], "filesystems"))
        return filesystems_probe();
    if (argc >= 2 && !strcmp(argv[1], "statfs"))
        return statfs_probe(argc - 2, argv + 2);
    fprintf(stderr, "usage: probe badptr | openat-escape PATH | unix bind|connect PATH | dgram PATH | procs | "
            "chroot-escape | newer-syscalls | denied | restart | interrupted | tty | corpus | prctl | "
            "uname | statfs PATH... | filesystems\n");
    return 2;
}
