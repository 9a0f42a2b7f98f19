/* The faster trap: seccomp user notifications answered in C.
 *
 * For the hot rows of the syscall table the filter returns
 * SECCOMP_RET_USER_NOTIF instead of RET_TRACE. The supervisor then performs
 * the call for the tracee: it resolves the path inside the container,
 * stats, opens (and injects the fd with SECCOMP_IOCTL_NOTIF_ADDFD) or
 * answers directly, writing results with process_vm_writev, after checking
 * SECCOMP_IOCTL_NOTIF_ID_VALID (the tracee may have died or been signalled).
 * No ptrace stop, and with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP both wake-ups
 * stay on the current CPU. Whatever this file does not handle goes to the
 * Python handler (bp_py_notify), which answers the same notification. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

#define OVERRIDE_XATTR "user.containers.override_stat"
#define IMAGE_MARKER "user.brandpy.image"
#define OVERFLOW_ID 65534

/* -- tracee memory ------------------------------------------------------- */

static int read_mem(int pid, unsigned long addr, void *buf, size_t len)
{
    struct iovec local = {buf, len}, remote = {(void *)addr, len};
    return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

static int write_mem(int pid, unsigned long addr, const void *buf, size_t len)
{
    struct iovec local = {(void *)buf, len}, remote = {(void *)addr, len};
    if (!len)
        return 0;
    return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* A NUL-terminated string, page by page (the string may end just before an
 * unmapped page). */
static int read_str(int pid, unsigned long addr, char *buf, size_t size)
{
    size_t got = 0;
    if (!addr)
        return -EFAULT;
    while (got < size) {
        size_t chunk = 4096 - (addr + got) % 4096;
        if (chunk > size - got)
            chunk = size - got;
        if (read_mem(pid, addr + got, buf + got, chunk) < 0)
            return -EFAULT;
        char *nul = memchr(buf + got, 0, chunk);
        if (nul)
            return 0;
        got += chunk;
    }
    return -ENAMETOOLONG;
}

/* -- answering ----------------------------------------------------------------- */

static void answer(int lfd, unsigned long long id, long long val, int err)
{
    struct seccomp_notif_resp resp = {.id = id, .val = err ? 0 : val, .error = err};
    /* ENOENT: the tracee is gone or was interrupted; nothing to answer. */
    ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

static int still_valid(int lfd, unsigned long long id)
{
    return ioctl(lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* -- stat ------------------------------------------------------------------------------- */

/* The ownership, mode and type the container sees (fake identity): the
 * override xattr, else the host user as root and other IDs as nobody. */
static void apply_view(const struct bp_state *s, const char *host, int follow,
                       unsigned int *uid, unsigned int *gid, unsigned int *mode,
                       unsigned long long *rdev)
{
    char raw[128];
    ssize_t n = -1;
    if (!S_ISLNK(*mode))
        n = follow ? getxattr(host, OVERRIDE_XATTR, raw, sizeof raw - 1)
                   : lgetxattr(host, OVERRIDE_XATTR, raw, sizeof raw - 1);
    if (n > 0) {
        unsigned int ou, og, om;
        char kind[32] = "";
        raw[n] = 0;
        if (sscanf(raw, "%u:%u:%o:%31s", &ou, &og, &om, kind) >= 3) {
            unsigned int type = *mode & S_IFMT;
            unsigned int maj, min;
            if (!strncmp(kind, "char-", 5) && sscanf(kind + 5, "%u-%u", &maj, &min) == 2) {
                type = S_IFCHR;
                *rdev = makedev(maj, min);
            } else if (!strncmp(kind, "block-", 6) &&
                       sscanf(kind + 6, "%u-%u", &maj, &min) == 2) {
                type = S_IFBLK;
                *rdev = makedev(maj, min);
            } else if (!strcmp(kind, "pipe")) {
                type = S_IFIFO;
            } else if (!strcmp(kind, "socket")) {
                type = S_IFSOCK;
            }
            *uid = ou;
            *gid = og;
            *mode = type | (om & 07777);
            return;
        }
    }
    *uid = *uid == s->host_uid ? 0 : OVERFLOW_ID;
    *gid = *gid == s->host_gid ? 0 : OVERFLOW_ID;
}

static int do_stat(const struct bp_state *s, int pid, const char *host, int follow,
                   unsigned long buf, const struct stat *known)
{
    struct stat st;
    if (known)
        st = *known;
    else if (fstatat(AT_FDCWD, host, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (s->fake_ids) {
        unsigned int uid = st.st_uid, gid = st.st_gid, mode = st.st_mode;
        unsigned long long rdev = st.st_rdev;
        apply_view(s, host, follow, &uid, &gid, &mode, &rdev);
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mode = mode;
        st.st_rdev = rdev;
    }
    return write_mem(pid, buf, &st, sizeof st);
}

static int do_statx(const struct bp_state *s, int pid, const char *host, int flags,
                    unsigned int mask, unsigned long buf)
{
    struct statx stx;
    int follow = !(flags & AT_SYMLINK_NOFOLLOW);
    if (statx(AT_FDCWD, host, flags & ~AT_EMPTY_PATH, mask, &stx) < 0)
        return -errno;
    if (s->fake_ids) {
        unsigned int uid = stx.stx_uid, gid = stx.stx_gid, mode = stx.stx_mode;
        unsigned long long rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
        apply_view(s, host, follow, &uid, &gid, &mode, &rdev);
        stx.stx_uid = uid;
        stx.stx_gid = gid;
        stx.stx_mode = mode;
        stx.stx_rdev_major = major(rdev);
        stx.stx_rdev_minor = minor(rdev);
    }
    return write_mem(pid, buf, &stx, sizeof stx);
}

/* -- the handlers ---------------------------------------------------------------------- */

struct ctx {
    struct bp_state *s;
    struct bp_thread *t;
    int lfd;
    struct seccomp_notif *req;
    char path[BP_PATH_MAX];
    struct bp_resolved r;
};

static unsigned long arg(const struct ctx *c, int i)
{
    return c->req->data.args[i];
}

static int iarg(const struct ctx *c, int i)
{
    return (int)c->req->data.args[i];
}

/* Read the path argument and resolve it; BP_FALLBACK, -errno or 0. */
static int path_arg(struct ctx *c, int path_i, int dirfd, int follow)
{
    int rc = read_str(c->req->pid, arg(c, path_i), c->path, sizeof c->path);
    if (rc)
        return rc;
    if (!still_valid(c->lfd, c->req->id))
        return -ESRCH;
    rc = bp_resolve(c->s, c->t, dirfd, c->path, follow, &c->r);
    if (rc == 0)
        bp_race_pause();
    return rc;
}

/* "/proc/TID/fd/N": the file an fd refers to, for fstat and AT_EMPTY_PATH. */
static void fd_path(struct ctx *c, int fd)
{
    snprintf(c->r.host, sizeof c->r.host, "/proc/%d/fd/%d", c->t->tid, fd);
    c->r.have_stat = 0;
}

/* A closed fd has no /proc/TID/fd/N: the caller's error is EBADF (CPython
 * tolerates ENOENT from fstat, and would take a closed fd for a file). */
static long fd_errno(long rc)
{
    return rc == -ENOENT ? -EBADF : rc;
}

/* The resolver's own lstat of the final file, when it is what stat wants. */
static const struct stat *known_stat(const struct ctx *c, int follow)
{
    return follow && c->r.have_stat ? &c->r.st : NULL;
}

static long stat_family(struct ctx *c)
{
    int nr = c->req->data.nr, rc;
    switch (nr) {
    case SYS_stat:
    case SYS_lstat:
        rc = path_arg(c, 0, AT_FDCWD, nr == SYS_stat);
        return rc ? rc : do_stat(c->s, c->req->pid, c->r.host, nr == SYS_stat, arg(c, 1),
                                 known_stat(c, nr == SYS_stat));
    case SYS_fstat:
        fd_path(c, iarg(c, 0));
        return fd_errno(do_stat(c->s, c->req->pid, c->r.host, 1, arg(c, 1), NULL));
    case SYS_newfstatat: {
        int flags = iarg(c, 3), follow = !(flags & AT_SYMLINK_NOFOLLOW);
        if (flags & AT_EMPTY_PATH) {
            char first;
            if (read_mem(c->req->pid, arg(c, 1), &first, 1) == 0 && !first) {
                if (iarg(c, 0) == AT_FDCWD)
                    return BP_FALLBACK;
                fd_path(c, iarg(c, 0));
                return fd_errno(do_stat(c->s, c->req->pid, c->r.host, 1, arg(c, 2), NULL));
            }
        }
        rc = path_arg(c, 1, iarg(c, 0), follow);
        return rc ? rc : do_stat(c->s, c->req->pid, c->r.host, follow, arg(c, 2),
                                 known_stat(c, follow));
    }
    case SYS_statx: {
        int flags = iarg(c, 2), follow = !(flags & AT_SYMLINK_NOFOLLOW);
        unsigned int mask = (unsigned int)arg(c, 3);
        char first = 1;
        if (flags & AT_EMPTY_PATH && (!arg(c, 1) ||
                                      (read_mem(c->req->pid, arg(c, 1), &first, 1) == 0 &&
                                       !first))) {
            if (iarg(c, 0) == AT_FDCWD)
                return BP_FALLBACK;
            fd_path(c, iarg(c, 0));
            return fd_errno(do_statx(c->s, c->req->pid, c->r.host, flags & ~AT_SYMLINK_NOFOLLOW,
                                     mask, arg(c, 4)));
        }
        rc = path_arg(c, 1, iarg(c, 0), follow);
        return rc ? rc : do_statx(c->s, c->req->pid, c->r.host, flags, mask, arg(c, 4));
    }
    }
    return BP_FALLBACK;
}

static long access_family(struct ctx *c)
{
    int nr = c->req->data.nr, dirfd = AT_FDCWD, path_i = 0, mode, flags = 0, rc;
    if (nr == SYS_access) {
        mode = iarg(c, 1);
    } else {
        dirfd = iarg(c, 0);
        path_i = 1;
        mode = iarg(c, 2);
        if (nr == SYS_faccessat2)
            flags = iarg(c, 3);
    }
    if (flags & ~AT_SYMLINK_NOFOLLOW)
        return BP_FALLBACK;
    rc = path_arg(c, path_i, dirfd, !(flags & AT_SYMLINK_NOFOLLOW));
    if (rc)
        return rc;
    if (!(c->t->flags & BP_THREAD_ROOT))
        /* fake identity, non-root user: the host's rules with the same host uid */
        return c->s->fake_ids ? (faccessat(AT_FDCWD, c->r.host, mode,
                                           AT_EACCESS | flags) < 0 ? -errno : 0)
                              : BP_FALLBACK;
    /* the container's root passes every check a real root passes */
    struct stat st;
    if (fstatat(AT_FDCWD, c->r.host, &st, flags) < 0)
        return -errno;
    if ((mode & W_OK) && c->r.mount->readonly)
        return -EROFS;
    if ((mode & X_OK) && !S_ISDIR(st.st_mode)) {
        unsigned int uid = st.st_uid, gid = st.st_gid, m = st.st_mode;
        unsigned long long rdev = st.st_rdev;
        if (c->s->fake_ids)
            apply_view(c->s, c->r.host, !flags, &uid, &gid, &m, &rdev);
        if (!(m & 0111))
            return -EACCES;
    }
    return 0;
}

static long readlink_family(struct ctx *c)
{
    int at = c->req->data.nr == SYS_readlinkat;
    int size = iarg(c, at ? 3 : 2), rc;
    char target[BP_PATH_MAX];
    if (size <= 0)
        return -EINVAL;
    rc = path_arg(c, at, at ? iarg(c, 0) : AT_FDCWD, 0);
    if (rc)
        return rc;
    ssize_t n = readlink(c->r.host, target, sizeof target);
    if (n < 0)
        return -errno;
    if (n > size)
        n = size;
    rc = write_mem(c->req->pid, arg(c, at + 1), target, n);
    return rc ? rc : n;
}

static long getcwd_(struct ctx *c)
{
    char link[64], host[BP_PATH_MAX + 1024], guest[BP_PATH_MAX];
    if (c->t->flags & BP_THREAD_CHROOT)
        return BP_FALLBACK;
    snprintf(link, sizeof link, "/proc/%d/cwd", c->t->tid);
    ssize_t n = readlink(link, host, sizeof host - 1);
    if (n < 0)
        return -errno;
    host[n] = 0;
    if (host[0] != '/' || bp_guest_of_host(c->s, host, guest, sizeof guest) < 0)
        return BP_FALLBACK;
    size_t len = strlen(guest) + 1;
    if (arg(c, 1) < len)
        return -ERANGE;
    int rc = write_mem(c->req->pid, arg(c, 0), guest, len);
    return rc ? rc : (long)len;
}

/* SECCOMP_IOCTL_NOTIF_ADDFD is a round trip with plain (not synchronous)
 * wake-ups: the tracee wakes to install the fd, then wakes the supervisor,
 * each onto an idle CPU if there is one. In a VM a cross-CPU wake-up costs
 * as much as a ptrace stop, so both are held on the supervisor's CPU (where
 * the synchronous notification already brought it) for the ioctl: 11 us
 * instead of 74 for open+close. Only where the tracee may run on that CPU
 * (--cpuset-cpus); its own mask is put back after. */
static int addfd_on_one_cpu(int lfd, pid_t tid, struct seccomp_notif_addfd *add)
{
    cpu_set_t one, own, theirs;
    int cpu = sched_getcpu();
    int held = cpu >= 0 && sched_getaffinity(0, sizeof own, &own) == 0
               && sched_getaffinity(tid, sizeof theirs, &theirs) == 0
               && CPU_ISSET(cpu, &theirs);
    if (held) {
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        held = sched_setaffinity(tid, sizeof one, &one) == 0;
        if (held)
            sched_setaffinity(0, sizeof one, &one);
    }
    int rc = ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, add);
    int err = errno;
    if (held) {
        sched_setaffinity(0, sizeof own, &own);
        sched_setaffinity(tid, sizeof theirs, &theirs);
    }
    errno = err;
    return rc;
}

/* The caller's umask, which the kernel keeps and /proc shows (umask(2) runs
 * natively: tracking it would cost a trap per call); -1 if it is gone. */
static int umask_of(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *line = strstr(buf, "\nUmask:");
    return line ? (int)strtoul(line + 7, NULL, 8) & 0777 : -1;
}

/* open(2) family: the supervisor opens the file and installs the fd in the
 * tracee. Only regular files and directories; anything else (fifos that
 * block, terminals, devices), image files to copy up and /proc views are
 * Python's. */
static long open_family(struct ctx *c, int *answered)
{
    int nr = c->req->data.nr, dirfd = AT_FDCWD, path_i = 0, flags, rc;
    unsigned int mode;
    if (nr == SYS_open) {
        flags = iarg(c, 1);
        mode = arg(c, 2);
    } else if (nr == SYS_creat) {
        flags = O_CREAT | O_WRONLY | O_TRUNC;
        mode = arg(c, 1);
    } else {
        dirfd = iarg(c, 0);
        path_i = 1;
        flags = iarg(c, 2);
        mode = arg(c, 3);
    }
    int follow = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
    if (!(c->t->flags & BP_THREAD_ROOT) && !c->s->fake_ids)
        return BP_FALLBACK;     /* real credentials other than root: Python switches them */
    rc = path_arg(c, path_i, dirfd, follow);
    if (rc)
        return rc;
    struct stat st;
    int exists = stat(c->r.host, &st) == 0;
    if (exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return BP_FALLBACK;
    int acc = flags & O_ACCMODE;
    int writes = acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC) ||
                 (flags & __O_TMPFILE) || ((flags & O_CREAT) && !exists);
    if (writes) {
        char marker;
        if (c->r.mount->readonly)
            return -EROFS;
        if (exists && S_ISREG(st.st_mode) && getxattr(c->r.host, IMAGE_MARKER, &marker, 1) >= 0)
            return BP_FALLBACK;          /* copy-up first */
    }
    int mask = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        if (c->t->fsgid != 0 || c->t->fsuid != 0)
            return BP_FALLBACK;     /* a new file gets the caller's IDs: Python's */
        if ((mask = umask_of(c->req->pid)) < 0)
            return BP_FALLBACK;
    }
    mode_t old = umask(0);
    int fd = openat(AT_FDCWD, c->r.host, (flags | O_CLOEXEC | O_NOCTTY) & ~O_ASYNC,
                    mode & 07777 & ~mask);
    umask(old);
    if (fd < 0)
        return -errno;
    struct seccomp_notif_addfd add = {
        .id = c->req->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = fd,
        .newfd_flags = flags & O_CLOEXEC};
    rc = addfd_on_one_cpu(c->lfd, c->req->pid, &add);
    int err = errno;
    close(fd);
    if (rc < 0 && err != ENOENT)    /* ENOENT: the tracee went away meanwhile */
        return -err;
    *answered = 1;
    return 0;
}

/* The parent's container PID; 0 for a process whose parent is outside the
 * container (the entrypoint, exec'd processes), 1 for an orphan. */
static long getppid_(struct ctx *c)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", c->t->tgid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return BP_FALLBACK;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return BP_FALLBACK;
    buf[n] = 0;
    char *end = strrchr(buf, ')');
    int ppid;
    char state;
    if (!end || sscanf(end + 1, " %c %d", &state, &ppid) != 2)
        return BP_FALLBACK;
    const struct bp_thread *parent = bp_state_thread(c->s, ppid);
    if (parent)
        return parent->guest_tgid;
    return c->t->flags & BP_THREAD_TOPLEVEL ? 0 : 1;
}

int bp_notify_handle(struct bp_state *s, int lfd, struct seccomp_notif *req)
{
    struct ctx c = {.s = s, .lfd = lfd, .req = req};
    long rc;
    int nr = req->data.nr, answered = 0;
    c.t = bp_state_thread(s, req->pid);
    if (!c.t)
        return 0;
    switch (nr) {
    case SYS_getpid:
        rc = c.t->guest_tgid;
        break;
    case SYS_gettid:
        rc = c.t->guest_tid;
        break;
    case SYS_getppid:
        rc = getppid_(&c);
        break;
    case SYS_stat: case SYS_lstat: case SYS_fstat: case SYS_newfstatat: case SYS_statx:
        rc = stat_family(&c);
        break;
    case SYS_access: case SYS_faccessat: case SYS_faccessat2:
        rc = access_family(&c);
        break;
    case SYS_readlink: case SYS_readlinkat:
        rc = readlink_family(&c);
        break;
    case SYS_getcwd:
        rc = getcwd_(&c);
        break;
    case SYS_open: case SYS_openat: case SYS_creat:
        rc = open_family(&c, &answered);
        break;
    default:
        rc = BP_FALLBACK;
    }
    if (rc == BP_FALLBACK)
        return 0;
    if (nr >= 0 && nr < 512)
        s->calls[nr]++;
    if (!answered && rc != -ESRCH)
        answer(lfd, req->id, rc < 0 ? 0 : rc, rc < 0 ? (int)rc : 0);
    return 1;
}
