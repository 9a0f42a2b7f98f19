/* The container's spawner: one process per container, forked by the
 * supervisor before the entrypoint and restricted with the container's
 * Landlock ruleset, that forks every process the supervisor starts in the
 * container (the entrypoint, docker exec). They then share one Landlock
 * domain: Landlock scopes signals, abstract unix sockets and ptrace-style
 * access to a domain, and a process restricted on its own (each exec'd one
 * by its own landlock_restrict_self) could not signal the entrypoint.
 *
 * The spawner is a fork of a threaded process: it uses only
 * async-signal-safe calls (no malloc: mmap), as bp_spawn's child does. It
 * is not traced and has no seccomp filter, so it is made non-dumpable:
 * only CAP_SYS_PTRACE could reach into it, which containers lack unless
 * given it. It exits when the supervisor closes its control socket. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x1
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x4
#endif
#define AT_RECURSIVE_ 0x8000
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#define OPEN_TREE_CLONE_ 1
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOVE_MOUNT_T_EMPTY_PATH_ 0x40

#define NAME_MAX_ 255
#define MAX_REQ_FDS (BP_SPAWN_MAX_FDS + 3)

/* What the supervisor sends: the scalars of the arguments (their pointers
 * mean nothing in the spawner) and the sizes of what follows. */
struct request {
    struct bp_spawn_args a;
    uint32_t payload;           /* bytes of data after this header */
    int32_t argc, envc, has_cwd, has_hold, has_listener;
};

/* All of len bytes, or -1. */
static int io_all(int fd, void *buf, size_t len, int writing)
{
    char *p = buf;
    while (len) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    return io_all(fd, (void *)buf, len, 1);
}

static int read_all(int fd, void *buf, size_t len)
{
    return io_all(fd, buf, len, 0);
}

static size_t vec_size(char *const *v, int *count)
{
    size_t size = 0;
    int n = 0;
    for (; v && v[n]; n++)
        size += strlen(v[n]) + 1;
    *count = n;
    return size;
}

static char *put(char *p, const void *src, size_t len)
{
    memcpy(p, src, len);
    return p + len;
}

static char *put_vec(char *p, char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        p = put(p, v[i], strlen(v[i]) + 1);
    return p;
}

/* -- the supervisor's side ------------------------------------------------------------- */

int bp_spawn_remote(const struct bp_spawn_args *a, int sync_fd, int listener_sock)
{
    struct request req = {.a = *a, .has_cwd = a->cwd != NULL, .has_hold = a->hold_fd >= 0,
                          .has_listener = listener_sock >= 0};
    size_t filter = (size_t)a->filter_len * 8;
    size_t limits = (size_t)a->nrlimits * sizeof(struct bp_rlimit);
    size_t groups = a->set_ids ? (size_t)a->ngroups * sizeof(unsigned int) : 0;
    size_t size = filter + limits + groups + strlen(a->path) + 1 +
                  (a->cwd ? strlen(a->cwd) + 1 : 0) + vec_size(a->argv, &req.argc) +
                  vec_size(a->envp, &req.envc);
    if (a->nfds > BP_SPAWN_MAX_FDS)
        return -EMFILE;
    char *buf = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return -errno;
    char *p = put(buf, a->filter, filter);
    p = put(p, a->rlimits, limits);
    p = put(p, a->groups, groups);
    p = put(p, a->path, strlen(a->path) + 1);
    if (a->cwd)
        p = put(p, a->cwd, strlen(a->cwd) + 1);
    p = put_vec(p, a->argv, req.argc);
    put_vec(p, a->envp, req.envc);
    req.payload = (uint32_t)size;

    int fds[MAX_REQ_FDS], n = 0;
    fds[n++] = sync_fd;
    for (int i = 0; i < a->nfds; i++)
        fds[n++] = a->fds[i];
    if (req.has_hold)
        fds[n++] = a->hold_fd;
    if (req.has_listener)
        fds[n++] = listener_sock;
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {&req, sizeof req};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = CMSG_SPACE(n * sizeof(int))};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(n * sizeof(int));
    memcpy(CMSG_DATA(cmsg), fds, n * sizeof(int));
    int32_t reply = -EPIPE;
    ssize_t sent;
    do
        sent = sendmsg(a->spawner, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    int ok = sent == (ssize_t)sizeof req && write_all(a->spawner, buf, size) == 0 &&
             read_all(a->spawner, &reply, sizeof reply) == 0;
    munmap(buf, size ? size : 1);
    return ok ? reply : -EPIPE;
}

/* -- the spawner --------------------------------------------------------------------- */

/* The watchdog of the helper connecting our network (own_network), as a
 * pidfd, and the pipe whose end we hold: the watchdog kills the helper when
 * we end. (The helper loses PR_SET_PDEATHSIG when it joins our user
 * namespace, and our Landlock domain may not signal it.) */
static int watchdog_fd = -1, life_fd = -1;

static void __attribute__((noreturn)) leave(int status)
{
    if (watchdog_fd >= 0) {
        /* wait for it, so it is reaped by us (SA_NOCLDWAIT), not adopted */
        struct pollfd gone = {watchdog_fd, POLLIN, 0};
        close(life_fd);
        poll(&gone, 1, 2000);
    }
    _exit(status);
}

/* Our children are in a PID namespace of the container's (own_pids):
 * their getpid() is its number, the supervisor needs the host's. */
static int own_pids;

/* The pid of the calling child of ours in the supervisor's PID namespace
 * (ours: the host's /proc is our mount namespace's), or -1. */
static int32_t host_pid(void)
{
    char buf[24];
    if (!own_pids)
        return (int32_t)getpid();
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    int32_t pid = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        pid = pid * 10 + (buf[i] - '0');
    }
    return pid;
}

static int32_t serve(int ctl)
{
    struct request req;
    int fds[MAX_REQ_FDS];
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {&req, sizeof req};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof u.buf};
    ssize_t got;
    do
        got = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        leave(0);      /* the supervisor is done with the container */
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    int n = cmsg && cmsg->cmsg_type == SCM_RIGHTS ?
            (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
    if (n)
        memcpy(fds, CMSG_DATA(cmsg), n * sizeof(int));
    if (got < (ssize_t)sizeof req && read_all(ctl, (char *)&req + got, sizeof req - got) < 0)
        leave(0);
    int32_t result = -EPROTO;
    char *buf = mmap(NULL, req.payload + 1, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t vecs = ((size_t)req.argc + req.envc + 2) * sizeof(char *);
    char **vec = mmap(NULL, vecs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED || vec == MAP_FAILED)
        leave(0);
    if (read_all(ctl, buf, req.payload) < 0)
        leave(0);
    struct bp_spawn_args a = req.a;
    int want = 1 + a.nfds + req.has_hold + req.has_listener;
    if (n == want && a.nfds <= BP_SPAWN_MAX_FDS) {
        char *p = buf;
        a.filter = p;
        p += (size_t)a.filter_len * 8;
        a.rlimits = (const struct bp_rlimit *)p;
        p += (size_t)a.nrlimits * sizeof(struct bp_rlimit);
        a.groups = (const unsigned int *)p;
        p += a.set_ids ? (size_t)a.ngroups * sizeof(unsigned int) : 0;
        a.path = p;
        p += strlen(p) + 1;
        a.cwd = NULL;
        if (req.has_cwd) {
            a.cwd = p;
            p += strlen(p) + 1;
        }
        char **argv = vec, **envp = vec + req.argc + 1;
        for (int i = 0; i < req.argc; i++, p += strlen(p) + 1)
            argv[i] = p;
        argv[req.argc] = NULL;
        for (int i = 0; i < req.envc; i++, p += strlen(p) + 1)
            envp[i] = p;
        envp[req.envc] = NULL;
        a.argv = argv;
        a.envp = envp;
        a.fds = fds + 1;
        a.hold_fd = req.has_hold ? fds[1 + a.nfds] : -1;
        a.spawner = -1;
        int listener_sock = req.has_listener ? fds[want - 1] : -1;
        pid_t pid = fork();
        if (pid == 0) {
            /* traceable again (we are not), then say who we are */
            int32_t me = host_pid();
            prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
            if (me <= 0 || write_all(ctl, &me, sizeof me) < 0)
                _exit(125);
            bp_spawn_child(&a, fds[0], listener_sock, me);
        }
        result = pid < 0 ? -errno : 0;
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    munmap(buf, req.payload + 1);
    munmap(vec, vecs);
    return result;
}

struct mount_attr_ {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* Read-only and/or nodev on the tree at path (relative to dirfd; "" with
 * AT_EMPTY_PATH: dirfd itself), never clearing a flag: a bind keeps the
 * host's read-only, as Docker's does (and in a user namespace the kernel
 * forbids clearing an inherited one). */
static int set_attrs(int dirfd, const char *path, int readonly, int nodev)
{
    struct mount_attr_ attr = {.attr_set = (readonly ? MOUNT_ATTR_RDONLY : 0) |
                                           (nodev ? MOUNT_ATTR_NODEV : 0)};
    return (int)syscall(SYS_mount_setattr, dirfd, path,
                        AT_RECURSIVE_ | (*path ? 0 : AT_EMPTY_PATH), &attr, sizeof attr);
}

/* An absolute path of plain components: no "//", "." or "..", no
 * trailing slash. The new root mirrors each path component by component. */
static int plain(const char *path)
{
    if (path[0] != '/' || !path[1])
        return 0;
    for (const char *c = path + 1;;) {
        const char *end = strchrnul(c, '/');
        size_t len = (size_t)(end - c);
        if (!len || len > NAME_MAX_ || (c[0] == '.' && (len == 1 || (len == 2 && c[1] == '.'))))
            return 0;
        if (!*end)
            return 1;
        c = end + 1;
    }
}

/* path is `above` itself or below it, by components */
static int beneath(const char *path, const char *above)
{
    size_t len = strlen(above);
    return !strncmp(path, above, len) && (path[len] == '/' || !path[len]);
}

/* The mount point for path in the new root (an O_PATH fd of its root): its
 * parents made as directories, then a directory, or an empty file to bind a
 * file on. Nothing else is in that tmpfs yet, so nothing there is a
 * symlink; O_NOFOLLOW says so all the same. An O_PATH fd, or -1. */
static int mountpoint(int root, const char *path, int dir)
{
    char name[NAME_MAX_ + 1];
    int at = fcntl(root, F_DUPFD_CLOEXEC, 0);
    for (const char *c = path + 1; at >= 0;) {
        const char *end = strchrnul(c, '/');
        memcpy(name, c, (size_t)(end - c));
        name[end - c] = 0;
        int last = !*end, rc;
        if (last && !dir)
            rc = mknodat(at, name, S_IFREG | 0444, 0);
        else
            rc = mkdirat(at, name, 0755);
        int next = rc < 0 && errno != EEXIST ? -1 :
                   openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (last && !dir ? 0 : O_DIRECTORY));
        close(at);
        at = next;
        if (last)
            break;
        c = end + 1;
    }
    return at;
}

/* Into a root holding nothing of the host's but the container's own
 * mounts (every entry of mounts but the masks, which their clones carry),
 * each at its host path: the paths the translation hands the kernel
 * resolve as before, and no other host path resolves at all, whatever call
 * reaches the kernel (stat, readlink, chmod, pathname unix sockets: the
 * calls Landlock does not control). Each is cloned (open_tree) before a
 * tmpfs on the first directory among them hides anything, bound into that
 * tmpfs, and the tmpfs becomes the root (pivot_root), read-only. A path
 * below another kept one comes with its clone; a container given "/"
 * keeps the host's root. 0 or -errno. */
static int pivot(const struct bp_ns_mount *mounts, int n)
{
    int trees[n > 0 ? n : 1], dirs[n > 0 ? n : 1], rc = 0;
    const char *at = NULL;
    for (int i = 0; i < n; i++)
        trees[i] = -1;
    for (int i = 0; i < n; i++) {
        const char *path = mounts[i].path;
        if (mounts[i].how == BP_NS_MASK)
            continue;
        if (!strcmp(path, "/"))
            goto out;       /* given the host's whole root (-v /:/host): nothing to leave out */
        if (!plain(path)) {
            rc = -EINVAL;
            goto out;
        }
        int inside = 0;
        for (int j = 0; j < n && !inside; j++)
            inside = j != i && mounts[j].how != BP_NS_MASK && beneath(path, mounts[j].path) &&
                     (strlen(mounts[j].path) < strlen(path) || j < i);
        struct stat st;
        if (inside || (stat(path, &st) < 0 && errno == ENOENT))
            continue;
        trees[i] = (int)syscall(SYS_open_tree, AT_FDCWD, path,
                                OPEN_TREE_CLONE_ | O_CLOEXEC | AT_RECURSIVE_);
        if (trees[i] < 0 || fstat(trees[i], &st) < 0) {
            rc = -errno;
            goto out;
        }
        dirs[i] = S_ISDIR(st.st_mode);
        /* kept as the host has it, but read-only (/sys, devices) */
        if (mounts[i].how == BP_NS_KEEP && set_attrs(trees[i], "", 1, 0) < 0) {
            rc = -errno;
            goto out;
        }
        if (!at && dirs[i])
            at = path;
    }
    if (!at) {
        rc = -ENOENT;
        goto out;
    }
    int root;
    if (mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") < 0 ||
        (root = open(at, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    for (int i = 0; i < n && !rc; i++) {
        if (trees[i] < 0)
            continue;
        int point = mountpoint(root, mounts[i].path, dirs[i]);
        if (point < 0 || syscall(SYS_move_mount, trees[i], "", point, "",
                                 MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_) < 0)
            rc = -errno;
        if (point >= 0)
            close(point);
    }
    close(root);
    if (!rc && (chdir(at) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
                umount2(".", MNT_DETACH) < 0 || chdir("/") < 0 ||
                mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
                      MS_NOEXEC, NULL) < 0))
        rc = -errno;
out:
    for (int i = 0; i < n; i++)
        if (trees[i] >= 0)
            close(trees[i]);
    return rc;
}

/* As root, or in a user namespace of our own (own_user): the container's
 * own mount, IPC and UTS namespaces, and with pids its own PID namespace,
 * whose PID 1 is the first process we fork (its death ends the
 * namespace's every process). The container's paths are bound there,
 * read-only where it may not write (the host's read-only mounts stay so),
 * /proc/sys and the like read-only and Docker's masked paths hidden, as
 * runc does; the container's own paths are nodev: a device node
 * there (made with mknod, carried by the image) opens only through the
 * supervisor, which gives the devices the container was given alone
 * (brandpy/runtime/devices.py). Then the root becomes one that holds only
 * those paths (pivot): the rest of the host is not there at all. Paths
 * stay the host's: the translation's model is unchanged. 0 or -errno. */
static int namespaces(const struct bp_ns_mount *mounts, int n, int pids)
{
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (pids ? CLONE_NEWPID : 0)) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        const char *path = mounts[i].path;
        struct stat st;
        if (mounts[i].how == BP_NS_KEEP)
            continue;
        if (stat(path, &st) < 0) {
            if (errno == ENOENT)
                continue;
            return -errno;
        }
        int rc;
        if (mounts[i].how == BP_NS_MASK)
            rc = S_ISDIR(st.st_mode) ?
                 mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "size=0,mode=0555") :
                 mount("/dev/null", path, NULL, MS_BIND, NULL);
        else
            rc = mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0 ? -1 :
                 set_attrs(AT_FDCWD, path, mounts[i].how == BP_NS_RO, 1);
        if (rc < 0)
            return -errno;
    }
    return pivot(mounts, n);
}

/* -- a network of its own (BP_SPAWNER_NETWORK) ------------------------------------------ */

static char *utoa(unsigned long v, char *end)
{
    *--end = 0;
    do
        *--end = (char)('0' + v % 10);
    while (v /= 10);
    return end;
}

/* "ID ID 1\n" into /proc/self/<file>: our own id, the only one an
 * unprivileged process may map. */
static int map_self(const char *file, unsigned long id)
{
    char line[64], num[24];
    char *p = line;
    const char *n = utoa(id, num + sizeof num);
    size_t len = strlen(n);
    memcpy(p, n, len), p += len, *p++ = ' ';
    memcpy(p, n, len), p += len;
    memcpy(p, " 1\n", 3), p += 3;
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, line, (size_t)(p - line));
    close(fd);
    return rc;
}

static int write_file(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, strlen(text));
    close(fd);
    return rc;
}

/* The helper's side: a watchdog outside our namespaces and domain, which
 * starts the helper once we are ready for it and kills it when we end (EOF
 * on life). */
static void __attribute__((noreturn)) watchdog(char *const *helper, pid_t spawner, int go,
                                               int ready, int life)
{
    char c, num[24], *argv[64];
    int n = 0;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    close(3);       /* the spawner's control socket and ruleset are not ours */
    close(4);
    /* EOF on go: the spawner is gone before it could let us in */
    if (read(go, &c, 1) != 1)
        _exit(125);
    /* the spawner ignores everything (and reaps at once): the helper gets
     * the defaults, and stays our zombie until we wait, so kill() is safe */
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    for (; helper[n] && n < 62; n++)
        argv[n] = helper[n];
    argv[n++] = utoa((unsigned long)spawner, num + sizeof num);
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(ready, 1) < 0)
            _exit(125);
        execv(argv[0], argv);
        _exit(127);
    }
    close(ready);
    while (pid > 0 && read(life, &c, 1) < 0 && errno == EINTR)
        ;
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    _exit(0);
}

/* Into the namespaces `kinds` of process pid, in order. 0 or -errno. */
static int join(pid_t pid, const char *const *kinds, const int *types, int n)
{
    char path[64], num[24];
    for (int i = 0; i < n; i++) {
        const char *p = utoa((unsigned long)pid, num + sizeof num);
        size_t len = strlen(p);
        memcpy(path, "/proc/", 6);
        memcpy(path + 6, p, len);
        memcpy(path + 6 + len, "/ns/", 4);
        memcpy(path + 10 + len, kinds[i], strlen(kinds[i]) + 1);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int rc = setns(fd, types[i]);
        int err = errno;
        close(fd);
        if (rc < 0)
            return -err;
    }
    return 0;
}

/* Into the user, then the network namespace of process pid (its owner
 * may: we are its user namespace's owner). 0 or -errno. */
static int join_network(pid_t pid)
{
    static const char *const kinds[] = {"user", "net"};
    static const int types[] = {CLONE_NEWUSER, CLONE_NEWNET};
    return join(pid, kinds, types, 2);
}

/* (root) Our children into the PID namespace of process pid
 * (pid_for_children: pid's own PID namespace). 0 or -errno. */
static int join_pids(pid_t pid)
{
    static const char *const kinds[] = {"pid"};
    static const int types[] = {CLONE_NEWPID};
    return join(pid, kinds, types, 1);
}

/* Unprivileged, the user namespace that owns the container's other
 * namespaces, so that we may make them: a new one mapping only our own
 * uid and gid (all an unprivileged process may map), or with of > 0 that
 * of process `of` (--pid container:NAME: its PID namespace's owner, which
 * we must be in to join it). The container's processes run as our uid
 * there, not its root: they have no capability left once they exec.
 * 0 or -errno. */
static int own_user(pid_t of)
{
    static const char *const kinds[] = {"user"};
    static const int types[] = {CLONE_NEWUSER};
    if (of > 0)
        return join(of, kinds, types, 1);
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER) < 0 || write_file("/proc/self/setgroups", "deny") < 0 ||
        map_self("/proc/self/uid_map", uid) < 0 || map_self("/proc/self/gid_map", gid) < 0)
        return -errno;
    return 0;
}

int bp_read_in_ipc_ns(int pid, const char *path, char *buf, int size)
{
    static const char *const kinds[] = {"user", "ipc"};
    static const int types[] = {CLONE_NEWUSER, CLONE_NEWIPC};
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    pid_t child = fork();
    if (child == 0) {
        /* a process of one thread: setns into a user namespace wants that */
        int fd = -1, rc = join(pid, kinds, types, 2);
        if (!rc && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            rc = -errno;
        ssize_t n = 0;
        char chunk[4096];
        while (!rc && (n = read(fd, chunk, sizeof chunk)) > 0)
            if (write_all(out[1], chunk, (size_t)n) < 0)
                _exit(EPIPE);
        _exit(rc ? -rc : n < 0 ? errno : 0);
    }
    int err = errno;
    close(out[1]);
    if (child < 0) {
        close(out[0]);
        return -err;
    }
    /* to EOF, so that the child never writes into a closed pipe: more than
     * size bytes is EFBIG, not a file cut short */
    int got = 0, over = 0;
    ssize_t n;
    char spill[4096];
    while ((n = got < size ? read(out[0], buf + got, (size_t)(size - got)) :
                             read(out[0], spill, sizeof spill)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && got < size)
            got += (int)n;
        else if (n > 0)
            over = 1;
    close(out[0]);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return WIFEXITED(status) ? -WEXITSTATUS(status) : -ECHILD;
    return over ? -EFBIG : got;
}

int bp_userns_probe(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        int rc = own_user(0);
        /* what every container's namespaces() does first */
        if (!rc && (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("/proc", "/proc", NULL, MS_BIND | MS_REC, NULL) < 0 ||
                    set_attrs(AT_FDCWD, "/proc", 0, 1) < 0))
            rc = -errno;
        _exit(rc < 0 ? -rc : 0);
    }
    int status;
    if (pid < 0)
        return -errno;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? -WEXITSTATUS(status) : -ECHILD;
}

/* A network namespace (in our user namespace: own_user), lo up and
 * dockerd's sysctls, then the helper connects it. 0 or -errno. */
static int own_network(char *const *helper, pid_t userns_of)
{
    pid_t me = getpid();
    gid_t gid = getgid();
    int go[2] = {-1, -1}, ready[2] = {-1, -1}, life[2] = {-1, -1};
    if (helper && (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0 ||
                   pipe2(life, O_CLOEXEC) < 0))
        return -errno;
    if (helper) {
        pid_t pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0) {
            close(life[1]);
            watchdog(helper, me, go[0], ready[1], life[0]);
        }
        /* alive until we write on go, so the pid is still its own */
        watchdog_fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (watchdog_fd < 0)
            return -errno;     /* it sees EOF on go and exits */
        life_fd = life[1];
        close(life[0]);
        close(go[0]);
        close(ready[1]);
    }
    int rc = own_user(userns_of);
    if (rc < 0)
        return rc;
    if (unshare(CLONE_NEWNET) < 0 ||
        write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0") < 0)
        return -errno;
    /* ping sockets for our group, the only one mapped (dockerd allows all) */
    char range[64], num[24];
    const char *g = utoa(gid, num + sizeof num);
    size_t len = strlen(g);
    memcpy(range, g, len);
    range[len] = ' ';
    memcpy(range + len + 1, g, len + 1);
    if (write_file("/proc/sys/net/ipv4/ping_group_range", range) < 0)
        return -errno;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return -errno;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        return -errno;
    close(s);
    if (!helper)
        return 0;
    /* It joins us through /proc/PID/ns while we are still dumpable, and
     * says it is done with a line (its PID); EOF: it failed. */
    char c = 'g';
    if (write_all(go[1], &c, 1) < 0)
        return -ENONET;
    close(go[1]);
    while (read_all(ready[0], &c, 1) == 0)
        if (c == '\n')
            return 0;       /* ready[0] stays open: the helper's stdout never breaks */
    return -ENONET;
}

void bp_spawner_run(int ctl, int ruleset, const struct bp_ns_mount *mounts, int n, int flags,
                    char *const *helper, pid_t join_pid, pid_t pids_of)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, nowait = {.sa_handler = SIG_IGN,
                                                             .sa_flags = SA_NOCLDWAIT};
    sigset_t none;
    /* In the supervisor's session (a foreground container's process group
     * must be in the terminal's), deaf to its terminal's signals. */
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD)
            sigaction(s, &ign, NULL);
    /* our children are reaped by the kernel once their tracer has seen them */
    sigaction(SIGCHLD, &nowait, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* fds 0-2 on /dev/null (not the supervisor's stdio), ours at 3 and 4 */
    ctl = fcntl(ctl, F_DUPFD_CLOEXEC, 10);
    int walled = ruleset >= 0;     /* -1: no Landlock here, only the network */
    /* (above 4 either way: dup3 to 4 of fd 4 itself is EINVAL) */
    ruleset = fcntl(walled ? ruleset : open("/dev/null", O_RDONLY | O_CLOEXEC), F_DUPFD_CLOEXEC, 10);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (ctl < 0 || ruleset < 0 || null < 0)
        _exit(125);
    for (int fd = 0; fd < 3; fd++)
        if (dup2(null, fd) < 0)
            _exit(125);
    if (dup3(ctl, 3, O_CLOEXEC) < 0 || dup3(ruleset, 4, O_CLOEXEC) < 0 ||
        syscall(SYS_close_range, 5, ~0U, 0) < 0)
        _exit(125);
    ctl = 3;
    /* namespaces and mounts first: a Landlock domain may not change them.
     * Unprivileged, one user namespace owns them all (own_user), the
     * network's too: the container's root owns none of them. */
    int32_t ready = 0;
    if (flags & BP_SPAWNER_NETWORK)
        ready = flags & BP_SPAWNER_JOIN ? join_network(join_pid) : own_network(helper, pids_of);
    else if (flags & BP_SPAWNER_USERNS)
        ready = own_user(pids_of);
    if (!ready && flags & BP_SPAWNER_NAMESPACES)
        ready = namespaces(mounts, n, pids_of == 0 && flags & BP_SPAWNER_PIDNS);
    if (!ready && flags & BP_SPAWNER_NAMESPACES && pids_of > 0)
        ready = join_pids(pids_of);
    own_pids = !ready && flags & BP_SPAWNER_NAMESPACES && (pids_of > 0 || flags & BP_SPAWNER_PIDNS);
    if (!ready && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                   (walled && syscall(SYS_landlock_restrict_self, 4, 0) < 0) ||
                   prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0))
        ready = -errno;
    if (write_all(ctl, &ready, sizeof ready) < 0 || ready < 0)
        leave(125);
    close(4);
    for (;;) {
        int32_t result = serve(ctl);
        if (result < 0 && write_all(ctl, &result, sizeof result) < 0)
            leave(0);
    }
}

/* In the forked child: exec brandpy/_spawner (spawner_main.c), found
 * beside this library, with the control socket at fd 3 and the ruleset at
 * fd 4; returns only if that failed. */
static void exec_spawner(int ctl, int ruleset, const struct bp_ns_mount *mounts, int n,
                         int flags, char *const *helper, pid_t join_pid, pid_t pids_of)
{
    Dl_info self;
    char path[4096], nums[4][16], hows[n > 0 ? n : 1][12];
    const char *slash;
    if (!dladdr((void *)bp_spawner_start, &self) || !self.dli_fname ||
        !(slash = strrchr(self.dli_fname, '/')))
        return;
    snprintf(path, sizeof path, "%.*s/_spawner", (int)(slash - self.dli_fname), self.dli_fname);
    int helpers = 0;
    while (helper && helper[helpers])
        helpers++;
    char *argv[7 + 2 * n + helpers];
    int k = 0;
    argv[k++] = path;
    snprintf(nums[0], sizeof nums[0], "%d", ruleset >= 0);
    snprintf(nums[1], sizeof nums[1], "%d", flags);
    snprintf(nums[2], sizeof nums[2], "%d", (int)join_pid);
    snprintf(nums[3], sizeof nums[3], "%d", (int)pids_of);
    for (int i = 0; i < 4; i++)
        argv[k++] = nums[i];
    for (int i = 0; i < n; i++) {
        snprintf(hows[i], sizeof hows[i], "%d", mounts[i].how);
        argv[k++] = hows[i];
        argv[k++] = (char *)mounts[i].path;
    }
    argv[k++] = "--";
    for (int i = 0; i < helpers; i++)
        argv[k++] = helper[i];
    argv[k] = NULL;
    /* fds 3 and 4 as spawner_main.c wants them, open across the exec */
    int c = fcntl(ctl, F_DUPFD, 10), r = ruleset >= 0 ? fcntl(ruleset, F_DUPFD, 10) : -1;
    if (c < 0 || (ruleset >= 0 && r < 0) || dup2(c, 3) < 0 || (r >= 0 && dup2(r, 4) < 0))
        return;
    close(c);
    if (r >= 0)
        close(r);
    execv(path, argv);      /* our environment, as the forked spawner had it */
    /* back to where we were: fd 3 and 4 are copies, ctl and ruleset still ours */
}

int bp_spawner_start(int ruleset, const struct bp_ns_mount *mounts, int n, int flags,
                     char *const *helper, int join_pid, int pids_of, int *ctl)
{
    int sock[2];
    int32_t ready = -EPIPE;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(sock[0]);
        exec_spawner(sock[1], ruleset, mounts, n, flags, helper, join_pid, pids_of);
        /* no brandpy/_spawner next to us (a tree built without it) */
        bp_spawner_run(sock[1], ruleset, mounts, n, flags, helper, join_pid, pids_of);
    }
    int err = errno;
    close(sock[1]);
    if (pid < 0) {
        close(sock[0]);
        return -err;
    }
    if (read_all(sock[0], &ready, sizeof ready) < 0 || ready < 0) {
        close(sock[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return ready < 0 ? ready : -EPIPE;
    }
    *ctl = sock[0];
    return pid;
}
