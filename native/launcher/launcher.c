/* The `brandpy` command: `brandpy run` and `brandpy trace` without
 * starting Python. CPython alone needs ~36 ms to start here, and brandpy's
 * imports ~150 ms more; this program hands the request (argv, environment,
 * umask, working directory and stdio as fds) to a warm zygote, a Python
 * process of the same user with brandpy imported, which forks a supervisor
 * for it (brandpy/zygote/). Every other command, and a run in a terminal's
 * foreground (the supervisor, which relays the terminal, must be in its
 * session for job control: a background run reading it stops on SIGTTIN),
 * execs Python as before.
 *
 * The first run starts the zygote (it costs what a Python start costs); the
 * zygote exits after an idle timeout. It is private to the user: its socket
 * is 0600 in a 0700 directory ($XDG_RUNTIME_DIR/brandpy-zygote, else
 * /tmp/brandpy-zygote-UID, refused unless ours), and it serves only peers
 * (SO_PEERCRED) with its own uid, credentials, capabilities, namespaces,
 * root, cgroup, limits, seccomp state and environment keys: a zygote is
 * chosen by a hash of those (the socket's name), and checks them again.
 * When the zygote cannot take a request before anything ran, Python runs it.
 *
 * Protocol (stream socket): the request is a header with fds 0, 1, 2 and
 * the working directory attached (SCM_RIGHTS), then the strings; then
 * struct bp_zmsg both ways: ACCEPT, EXIT status or DIED wait-status, STALE
 * or REFUSED from the zygote, SIGNAL n (a signal to forward) from us. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef BP_PYTHON
#error "BP_PYTHON: the interpreter brandpy is installed for (setup.py defines it)"
#endif

#define MAGIC "BPZ1"
enum { MSG_ACCEPT = 1, MSG_EXIT, MSG_DIED, MSG_STALE, MSG_REFUSED, MSG_SIGNAL };

struct bp_zmsg {
    uint32_t type;
    int32_t value;
};

struct bp_zreq {
    char magic[4];
    uint32_t umask, argc, envc, len;
};

extern char **environ;

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
static int conn = -1;

static _Noreturn void slow(int argc, char **argv)
{
    char **args = calloc(argc + 4, sizeof *args);
    if (!args) {
        perror("brandpy");
        exit(125);
    }
    args[0] = BP_PYTHON;   /* Python finds its venv from argv[0] */
    args[1] = "-P";       /* not the working directory on sys.path: as the pip script */
    args[2] = "-m";
    args[3] = "brandpy";
    memcpy(args + 4, argv + 1, (argc - 1) * sizeof *args);
    execv(BP_PYTHON, args);
    fprintf(stderr, "brandpy: cannot run %s: %s\n", BP_PYTHON, strerror(errno));
    exit(127);
}

/* -- which zygote: a hash of everything a forked supervisor inherits ------- */

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ULL;
    return h;
}

static uint64_t hash_file(uint64_t h, const char *path, const char *const *prefixes)
{
    char buf[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = 0;
    h = fnv(h, path, strlen(path) + 1);
    for (char *line = buf, *end; *line; line = end) {
        end = strchrnul(line, '\n');
        if (*end)
            end++;
        int keep = !prefixes;
        for (const char *const *p = prefixes; p && *p && !keep; p++)
            keep = strncmp(line, *p, strlen(*p)) == 0;
        if (keep)
            h = fnv(h, line, end - line);
    }
    return h;
}

static uint64_t identity_key(void)
{
    static const char *const status[] = {
        "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:",
        "NoNewPrivs:", "Seccomp:", "Seccomp_filters:", "Cpus_allowed_list:",
        "Mems_allowed_list:", NULL};
    static const char *const ns[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children",
                                     "time", "user", "uts", NULL};
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, BP_PYTHON, sizeof BP_PYTHON);
    h = hash_file(h, "/proc/self/status", status);
    h = hash_file(h, "/proc/self/limits", NULL);
    h = hash_file(h, "/proc/self/cgroup", NULL);
    h = hash_file(h, "/proc/self/attr/current", NULL);
    for (const char *const *n = ns; *n; n++) {
        char path[64], link[128];
        snprintf(path, sizeof path, "/proc/self/ns/%s", *n);
        ssize_t len = readlink(path, link, sizeof link);
        h = fnv(h, link, len > 0 ? len : 0);
    }
    struct stat root;
    if (stat("/", &root) == 0) {
        h = fnv(h, &root.st_dev, sizeof root.st_dev);
        h = fnv(h, &root.st_ino, sizeof root.st_ino);
    }
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    h = fnv(h, &nice, sizeof nice);
    /* read by Python at import time, so part of what a zygote is */
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, "PYTHON", 6) || !strncmp(*e, "BRANDPY_", 8))
            h = fnv(h, *e, strlen(*e) + 1);
    return h;
}

/* -- the private directory -------------------------------------------------- */

static int private_dir(char *dir, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && *xdg ? snprintf(dir, size, "%s/brandpy-zygote", xdg)
                        : snprintf(dir, size, "/tmp/brandpy-zygote-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= size)
        return -1;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077))
        return -1;   /* someone else's, or open to others: not ours to trust */
    return 0;
}

/* -- starting the zygote ------------------------------------------------------ */

static void start_zygote(int listener, const char *sock_path, const char *log_path)
{
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    /* the zygote is a grandchild, reparented at once: never our zombie */
    if (fork() != 0)
        _exit(0);
    setsid();
    int null = open("/dev/null", O_RDWR);
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log < 0 ? null : log, 2) < 0)
        _exit(127);
    if (listener == 3)
        fcntl(3, F_SETFD, 0);
    else if (dup2(listener, 3) < 0)
        _exit(127);
    char *args[] = {BP_PYTHON, "-P", "-m", "brandpy.zygote", (char *)sock_path, NULL};
    execv(BP_PYTHON, args);
    _exit(127);
}

static int unix_addr(struct sockaddr_un *addr, const char *path)
{
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path)
        return -1;
    strcpy(addr->sun_path, path);
    return 0;
}

/* DIR/KEY.EXT: the zygote's socket, lock and log */
static int zpath(char *buf, const char *dir, uint64_t key, const char *ext)
{
    int n = snprintf(buf, PATH_MAX, "%.4000s/%016llx.%.8s", dir, (unsigned long long)key, ext);
    return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* A connection to the zygote for this identity, starting one if none
 * listens; under the lock, so that one zygote starts and none retires
 * (brandpy/zygote/server.py) while a launcher connects. -1: none. */
static int connect_zygote(const char *dir, uint64_t key)
{
    char sock_path[PATH_MAX], lock_path[PATH_MAX], log_path[PATH_MAX];
    struct sockaddr_un addr;
    if (zpath(sock_path, dir, key, "sock") < 0 || zpath(lock_path, dir, key, "lock") < 0 ||
        zpath(log_path, dir, key, "log") < 0 || unix_addr(&addr, sock_path) < 0)
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock < 0) {
            char again[PATH_MAX];
            if (errno == ENOENT && private_dir(again, sizeof again) == 0)
                continue;   /* a retiring zygote removed the directory: make it again */
            return -1;
        }
        struct stat held, now;
        if (flock(lock, LOCK_EX) < 0 || fstat(lock, &held) < 0) {
            close(lock);
            return -1;
        }
        if (stat(lock_path, &now) < 0 || now.st_ino != held.st_ino || now.st_dev != held.st_dev) {
            close(lock);     /* removed by a zygote retiring meanwhile */
            continue;
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
            close(lock);
            return fd;
        }
        if (fd < 0 || (errno != ENOENT && errno != ECONNREFUSED)) {
            if (fd >= 0)
                close(fd);
            close(lock);
            return -1;
        }
        unlink(sock_path);   /* a zygote that died without retiring */
        int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        mode_t old = umask(0177);   /* a 0600 socket */
        int ok = listener >= 0 && bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                 listen(listener, 128) == 0;
        umask(old);
        if (ok) {
            start_zygote(listener, sock_path, log_path);
            ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        }
        if (listener >= 0)
            close(listener);
        close(lock);
        if (ok)
            return fd;
        close(fd);
        return -1;
    }
    return -1;
}

/* -- the request ------------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= w;
    }
    return 0;
}

static int send_request(int fd, int argc, char **argv)
{
    struct bp_zreq req = {.magic = MAGIC, .argc = argc - 1};
    size_t len = 0;
    for (int i = 1; i < argc; i++)
        len += strlen(argv[i]) + 1;
    for (char **e = environ; *e; e++, req.envc++)
        len += strlen(*e) + 1;
    if (len > UINT32_MAX)
        return -1;
    req.len = len;
    req.umask = umask(0);
    umask(req.umask);
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0)
        return -1;
    int fds[4] = {0, 1, 2, cwd};
    for (int i = 0; i < 3; i++)
        if (fcntl(i, F_GETFD) < 0) {   /* a closed stdio fd: Python copes with it */
            close(cwd);
            return -1;
        }
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {&req, sizeof req};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    ssize_t sent;
    do
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    close(cwd);
    if (sent != sizeof req)
        return -1;
    char *data = malloc(len ? len : 1), *p = data;
    if (!data)
        return -1;
    for (int i = 1; i < argc; i++)
        p = stpcpy(p, argv[i]) + 1;
    for (char **e = environ; *e; e++)
        p = stpcpy(p, *e) + 1;
    int rc = write_all(fd, data, len);
    free(data);
    return rc;
}

static int read_msg(int fd, struct bp_zmsg *m)
{
    size_t got = 0;
    while (got < sizeof *m) {
        ssize_t n = read(fd, (char *)m + got, sizeof *m - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += n;
    }
    return 0;
}

static void forward(int sig)
{
    struct bp_zmsg m = {MSG_SIGNAL, sig};
    int saved = errno;
    (void)!send(conn, &m, sizeof m, MSG_NOSIGNAL);
    errno = saved;
}

/* The container runs: forward signals, and end as it ended. */
static _Noreturn void relay(const char *dir, uint64_t key)
{
    struct sigaction sa = {.sa_handler = forward};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
        sigaction(forwarded[i], &sa, NULL);
    struct bp_zmsg m;
    while (read_msg(conn, &m) == 0) {
        if (m.type == MSG_EXIT)
            exit(m.value);
        if (m.type != MSG_DIED)
            continue;
        if (WIFSIGNALED(m.value)) {   /* as Python running in-process would have died */
            int sig = WTERMSIG(m.value);
            sigset_t all;
            signal(sig, SIG_DFL);
            sigfillset(&all);
            sigprocmask(SIG_UNBLOCK, &all, NULL);
            raise(sig);
            exit(128 + sig);
        }
        exit(WEXITSTATUS(m.value));
    }
    char log_path[PATH_MAX];
    zpath(log_path, dir, key, "log");
    fprintf(stderr, "brandpy: the supervisor went away without an exit status (see %s)\n",
            log_path);
    exit(125);
}

/* Only when nothing ran yet: otherwise it does not return. */
static void fast(int argc, char **argv)
{
    char dir[PATH_MAX];
    if (private_dir(dir, sizeof dir) < 0)
        return;
    uint64_t key = identity_key();
    for (int attempt = 0; attempt < 3; attempt++) {
        conn = connect_zygote(dir, key);
        if (conn < 0)
            return;
        struct bp_zmsg m;
        if (send_request(conn, argc, argv) < 0 || read_msg(conn, &m) < 0) {
            close(conn);
            return;
        }
        if (m.type == MSG_ACCEPT)
            relay(dir, key);
        close(conn);
        if (m.type != MSG_STALE)   /* REFUSED, or the request could not be read */
            return;
        /* STALE: brandpy's files changed since that zygote started; it retired */
    }
}

static int terminal_foreground(void)
{
    return isatty(0) && tcgetpgrp(0) == getpgrp();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "trace")) &&
        !terminal_foreground()) {
        signal(SIGPIPE, SIG_IGN);
        fast(argc, argv);
        signal(SIGPIPE, SIG_DFL);
    }
    slow(argc, argv);
}
