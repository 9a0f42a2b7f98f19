/* An attacker's program for tests/security/test_seccomp_filters.py: run as
 * a container's entrypoint, it stacks seccomp filters of its own on
 * brandpy's, to make a call brandpy denies or translates run on the host
 * untranslated, and reports what Linux's rules for its own filters gave.
 *
 *   pass FILE      every io_uring call returns SECCOMP_RET_TRACE with the
 *                  data brandpy's filter uses for "trapped only to be seen,
 *                  runs natively" (the kernel reports the newest filter's
 *                  data between equal actions); io_uring (which brandpy
 *                  denies) then opens and reads FILE, a host path
 *   pass-prctl FILE  the same filter installed with prctl(PR_SET_SECCOMP)
 *   listener FILE  openat returns SECCOMP_RET_USER_NOTIF, which outranks
 *                  brandpy's TRACE, to a listener of the program's own that
 *                  answers "continue": the kernel opens FILE as given
 *   restrict       a deny-list of the program's own (ERRNO, TRAP, KILL on
 *                  calls brandpy translates, notifies or lets run) and a
 *                  TRACE with no tracer of its own: prints what each gave
 *
 * What got through is printed as "LEAK <contents>"; the outcomes of
 * `restrict` as "NAME=RESULT" lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR offsetof(struct seccomp_data, nr)
#define PASS_DATA (4 << 12)      /* brandpy's "trapped only to be seen" */

static void die(const char *what)
{
    printf("%s: %s\n", what, strerror(errno));
    fflush(stdout);
    exit(2);
}

static long install(struct sock_filter *insns, unsigned short len, unsigned int flags,
                    int use_prctl)
{
    struct sock_fprog prog = {len, insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("PR_SET_NO_NEW_PRIVS");
    if (use_prctl)
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* -- io_uring by hand: open FILE and read it -------------------------------- */

static void uring_read(const char *path)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0)
        die("io_uring_setup");
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_size > sq_size)
        sq_size = cq_size;
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes,
                                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                                     IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED)
        die("mmap io_uring");
    char *cq = sq;   /* IORING_FEAT_SINGLE_MMAP */
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    unsigned *cq_head = (unsigned *)(cq + p.cq_off.head);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    static char buf[4096];
    int fd = -1;
    for (int step = 0; step < 2; step++) {
        struct io_uring_sqe *sqe = &sqes[step];
        memset(sqe, 0, sizeof *sqe);
        if (step == 0) {
            sqe->opcode = IORING_OP_OPENAT;
            sqe->fd = AT_FDCWD;
            sqe->addr = (unsigned long)path;
            sqe->open_flags = O_RDONLY;
        } else {
            sqe->opcode = IORING_OP_READ;
            sqe->fd = fd;
            sqe->addr = (unsigned long)buf;
            sqe->len = sizeof buf - 1;
        }
        array[step] = step;
        __atomic_store_n(tail, step + 1, __ATOMIC_RELEASE);
        if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
            die("io_uring_enter");
        unsigned head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
        int res = cqes[head & (p.cq_entries - 1)].res;
        __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
        if (res < 0) {
            errno = -res;
            die(step ? "io_uring read" : "io_uring openat");
        }
        if (step == 0)
            fd = res;
        else
            buf[res] = 0;
    }
    printf("LEAK %s\n", buf);
}

static int pass(const char *path, int use_prctl)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | PASS_DATA),
    };
    if (install(f, sizeof f / sizeof *f, 0, use_prctl) < 0)
        die("seccomp");
    uring_read(path);
    return 0;
}

/* -- a listener of our own that lets openat continue ------------------------ */

static int listener_fd;

static void *answer(void *arg)
{
    (void)arg;
    for (;;) {
        struct seccomp_notif req;
        struct seccomp_notif_resp resp;
        memset(&req, 0, sizeof req);
        if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
            if (errno == EINTR || errno == ENOENT)
                continue;
            return NULL;
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

static int listener(const char *path)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    long fd = install(f, sizeof f / sizeof *f, SECCOMP_FILTER_FLAG_NEW_LISTENER, 0);
    if (fd < 0)
        die("seccomp NEW_LISTENER");
    listener_fd = (int)fd;
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL))
        die("pthread_create");
    int file = openat(AT_FDCWD, path, O_RDONLY);
    if (file < 0)
        die("openat");
    static char buf[4096];
    ssize_t n = read(file, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("LEAK %s\n", buf);
    return 0;
}

/* -- restrictions of our own ------------------------------------------------ */

static volatile sig_atomic_t trapped_nr = -1;

static void on_sigsys(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)ctx;
    trapped_nr = info->si_syscall;
}

static void result(const char *name, long rc)
{
    if (rc < 0)
        printf("%s=%s\n", name, strerrorname_np(errno));
    else
        printf("%s=%ld\n", name, rc);
}

static int restrict_(void)
{
    /* mkdir (traced by brandpy): ERRNO EACCES; stat (notified by the native
     * engine): ERRNO EROFS; getppid (notified): TRAP; uname (traced): TRAP;
     * sched_yield (runs natively under brandpy): TRACE, with no tracer of
     * ours; sync: KILL_PROCESS (in a child) */
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mkdir, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_stat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EROFS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP | 7),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_yield, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE | 1),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sync, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    if (install(f, sizeof f / sizeof *f, 0, 0) < 0)
        die("seccomp");
    struct stat st;
    result("mkdir", syscall(__NR_mkdir, "made", 0755));
    result("stat", syscall(__NR_stat, "/", &st));
    /* a trapped call does not run: the handler sees its number */
    syscall(__NR_getppid);
    printf("getppid trapped=%d\n", (int)trapped_nr);
    trapped_nr = -1;
    syscall(__NR_uname, NULL);
    printf("uname trapped=%d\n", (int)trapped_nr);
    result("sched_yield", syscall(__NR_sched_yield));
    result("getpid", syscall(__NR_getpid));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        syscall(__NR_sync);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("sync child=%s\n", WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exited");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return 2;
    if (!strcmp(argv[1], "pass") && argc == 3)
        return pass(argv[2], 0);
    if (!strcmp(argv[1], "pass-prctl") && argc == 3)
        return pass(argv[2], 1);
    if (!strcmp(argv[1], "listener") && argc == 3)
        return listener(argv[2]);
    if (!strcmp(argv[1], "restrict"))
        return restrict_();
    fprintf(stderr, "usage: seccomp_attack pass|pass-prctl|listener FILE | restrict\n");
    return 2;
}
