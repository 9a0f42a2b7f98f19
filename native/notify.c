/* The faster trap: seccomp user notifications answered in C.
 *
 * For the rows the syscall table marks `perform` the filter returns
 * SECCOMP_RET_USER_NOTIF. The supervisor then performs the call for the
 * tracee, as the Python handlers (syscalls/handlers/, the reference) do: it
 * reads each argument once, resolves the path on descriptors inside the
 * container (resolve.c) and acts on the directory descriptor and last name
 * with the *at calls, or on an O_PATH descriptor of the file found through
 * /proc/self/fd/N, never on a host path string; then it answers, writes
 * results with process_vm_writev, or installs an opened fd with
 * SECCOMP_IOCTL_NOTIF_ADDFD. A last name that turned into a symlink
 * meanwhile is resolved again (BP_AGAIN). No ptrace stop, and with
 * SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP both wake-ups stay on the current CPU.
 *
 * C acts with the supervisor's own credentials, so it takes only calls
 * where those give the kernel's answer: a container root with the
 * filesystem capabilities (BP_THREAD_ROOT), real or emulated, whom no
 * permission check refuses. Whatever this file does not handle (another
 * user's calls, whose permissions the kernel checks with real credentials
 * and brandpy/runtime/dac.py with emulated ones; /proc but its
 * filesystems file, chroots, image
 * files to copy up, fake ownership to record, fifos, xattrs...) goes to the
 * Python handler (bp_py_notify), which answers the same notification. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/utsname.h>
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

#define BP_AGAIN (BP_FALLBACK - 1)   /* the last name became a symlink: resolve again */
#define MAX_AGAIN 40
#define OBJ (O_PATH | O_NOFOLLOW | O_CLOEXEC)
#define HANDOFF 0x2179706472616E62ULL   /* runtime/call.py HANDOFF: Python's */
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef AT_EACCESS
#define AT_EACCESS 0x200
#endif

/* -- the container's view of a file (fake identity) ------------------------------------------ */

/* The override xattr of the file at `path` (a /proc/.../fd/N magic link to
 * exactly that file), "UID:GID:0MODE[:KIND]": 1 if it has one (kind "" when
 * the value names none), else 0. */
static int read_override(const char *path, unsigned int *uid, unsigned int *gid,
                         unsigned int *mode, char kind[40])
{
    char raw[128];
    ssize_t n = getxattr(path, OVERRIDE_XATTR, raw, sizeof raw - 1);
    if (n <= 0)
        return 0;
    raw[n] = 0;
    kind[0] = 0;
    return sscanf(raw, "%u:%u:%o:%39s", uid, gid, mode, kind) >= 3;
}

/* The ownership, mode and type the container sees: the file's override,
 * else the host user as root and other IDs as nobody. */
static void apply_view(const struct bp_state *s, const char *path, unsigned int *uid,
                       unsigned int *gid, unsigned int *mode, unsigned long long *rdev)
{
    unsigned int ou, og, om;
    char kind[40];
    if (!S_ISLNK(*mode) && read_override(path, &ou, &og, &om, kind)) {
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
    *uid = *uid == s->host_uid ? 0 : OVERFLOW_ID;
    *gid = *gid == s->host_gid ? 0 : OVERFLOW_ID;
}

static void view_stat(const struct bp_state *s, const char *path, struct stat *st)
{
    unsigned int uid = st->st_uid, gid = st->st_gid, mode = st->st_mode;
    unsigned long long rdev = st->st_rdev;
    apply_view(s, path, &uid, &gid, &mode, &rdev);
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_mode = mode;
    st->st_rdev = rdev;
}

static void view_statx(const struct bp_state *s, const char *path, struct statx *stx)
{
    unsigned int uid = stx->stx_uid, gid = stx->stx_gid, mode = stx->stx_mode;
    unsigned long long rdev = makedev(stx->stx_rdev_major, stx->stx_rdev_minor);
    apply_view(s, path, &uid, &gid, &mode, &rdev);
    stx->stx_uid = uid;
    stx->stx_gid = gid;
    stx->stx_mode = mode;
    stx->stx_rdev_major = major(rdev);
    stx->stx_rdev_minor = minor(rdev);
}

/* -- the handlers' context ---------------------------------------------------------------- */

struct ctx {
    struct bp_state *s;
    struct bp_thread *t;
    int lfd;
    struct seccomp_notif *req;
    char path[BP_PATH_MAX], path2[BP_PATH_MAX];
    struct bp_resolved r, r2;   /* closed by bp_notify_handle */
    int answered;               /* the answer went with an fd (install()) */
    int dumpable_set;           /* PR_SET_DUMPABLE's value, told to Python after the answer; -1 */
};

static unsigned long arg(const struct ctx *c, int i)
{
    return c->req->data.args[i];
}

static int iarg(const struct ctx *c, int i)
{
    return (int)c->req->data.args[i];
}

/* C performs with the supervisor's credentials: see the file's comment. */
static int as_self(const struct ctx *c)
{
    return c->t->flags & BP_THREAD_ROOT;
}

static int read_path(struct ctx *c, int path_i, char *buf)
{
    int rc = read_str(c->req->pid, arg(c, path_i), buf, BP_PATH_MAX);
    if (rc)
        return rc;
    return still_valid(c->lfd, c->req->id) ? 0 : -ESRCH;
}

/* Resolve the path read into c->path (again, after BP_AGAIN). */
static int resolve(struct ctx *c, int dirfd, int follow)
{
    bp_resolved_close(&c->r);
    int rc = bp_resolve(c->s, c->t, dirfd, c->path, follow, &c->r);
    if (rc == 0)
        bp_race_pause();
    return rc;
}

/* Read path argument path_i and resolve it: 0, -errno or BP_FALLBACK. */
static int path_arg(struct ctx *c, int path_i, int dirfd, int follow)
{
    int rc = read_path(c, path_i, c->path);
    return rc ? rc : resolve(c, dirfd, follow);
}

/* The *at form of what r names: (dirfd, name) or the mount root itself. */
static const char *at_name(const struct bp_resolved *r, int *flags)
{
    if (!r->name[0])
        *flags |= AT_EMPTY_PATH;
    return r->name;
}

/* lstat of what r names; BP_AGAIN when a followed name became a symlink. */
static int lstat_r(const struct bp_resolved *r, int follow, struct stat *st)
{
    int flags = AT_SYMLINK_NOFOLLOW;
    const char *name = at_name(r, &flags);
    if (r->have_stat)
        *st = r->st;
    else if (fstatat(r->dirfd, name, st, flags) < 0)
        return -errno;
    if (follow && S_ISLNK(st->st_mode))
        return BP_AGAIN;
    if (r->must_dir && !S_ISDIR(st->st_mode))
        return -ENOTDIR;
    return 0;
}

/* An O_PATH descriptor of exactly what r names, and its stat. */
static int object(const struct bp_resolved *r, int follow, struct stat *st)
{
    int fd = r->name[0] ? openat(r->dirfd, r->name, OBJ) : fcntl(r->dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0 || (follow && S_ISLNK(st->st_mode)) ||
        (r->must_dir && !S_ISDIR(st->st_mode))) {
        int rc = S_ISLNK(st->st_mode) && follow ? BP_AGAIN : r->must_dir ? -ENOTDIR : -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static void self_fd(char *buf, size_t len, int fd)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
}

/* An image file (a hard-link farm's, brandpy/images/rootfs.py) must be
 * copied up before it changes: Python does that. */
static int image_file(int objfd, const struct stat *st)
{
    char path[64], marker;
    if (!S_ISREG(st->st_mode))
        return 0;
    self_fd(path, sizeof path, objfd);
    return getxattr(path, IMAGE_MARKER, &marker, 1) >= 0 || errno == ERANGE;
}

/* Whether the directory dirfd is sticky as the container sees it: an
 * O_CREAT open of what exists there is checked by Python then
 * (fs.protected_regular and fs.protected_fifos, brandpy/runtime/dac.py). */
static int sticky_dir(const struct bp_state *s, int dirfd)
{
    struct stat st;
    char path[64];
    if (fstat(dirfd, &st) < 0)
        return 1;
    if (s->fake_ids) {
        self_fd(path, sizeof path, dirfd);
        view_stat(s, path, &st);
    }
    return (st.st_mode & S_ISVTX) != 0;
}

/* "/proc/TID/fd/N": the file an fd refers to, for fstat and AT_EMPTY_PATH. */
static void tracee_fd_path(struct ctx *c, int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/%d/fd/%d", c->t->tid, fd);
}

/* A closed fd has no /proc/TID/fd/N: the caller's error is EBADF (CPython
 * tolerates ENOENT from fstat, and would take a closed fd for a file). */
static long fd_errno(long rc)
{
    return rc == -ENOENT ? -EBADF : rc;
}

/* -- stat ------------------------------------------------------------------------------- */

static long stat_of_fd(struct ctx *c, int fd, unsigned long buf)
{
    char path[64];
    struct stat st;
    tracee_fd_path(c, fd, path, sizeof path);
    if (stat(path, &st) < 0)
        return fd_errno(-errno);
    if (c->s->fake_ids)
        view_stat(c->s, path, &st);
    return write_mem(c->req->pid, buf, &st, sizeof st);
}

static long stat_path(struct ctx *c, int path_i, int dirfd, int follow, unsigned long buf)
{
    struct stat st;
    int rc = path_arg(c, path_i, dirfd, follow);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        if (c->s->fake_ids) {
            char path[64];
            int fd = object(&c->r, follow, &st);
            if (fd == BP_AGAIN) {
                rc = resolve(c, dirfd, follow);
                continue;
            }
            if (fd < 0)
                return fd;
            self_fd(path, sizeof path, fd);
            view_stat(c->s, path, &st);
            close(fd);
        } else if ((rc = lstat_r(&c->r, follow, &st)) != 0) {
            if (rc != BP_AGAIN)
                return rc;
            rc = resolve(c, dirfd, follow);
            continue;
        }
        return write_mem(c->req->pid, buf, &st, sizeof st);
    }
    return rc ? rc : -ELOOP;
}

static long statx_path(struct ctx *c, int dirfd, int flags, unsigned int mask, unsigned long buf)
{
    int follow = !(flags & AT_SYMLINK_NOFOLLOW);
    int rc = path_arg(c, 1, dirfd, follow);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        struct stat st;
        struct statx stx;
        char path[64];
        int fd = object(&c->r, follow, &st);
        if (fd == BP_AGAIN) {
            rc = resolve(c, dirfd, follow);
            continue;
        }
        if (fd < 0)
            return fd;
        rc = statx(fd, "", AT_EMPTY_PATH | (flags & AT_STATX_SYNC_TYPE), mask, &stx) < 0
             ? -errno : 0;
        if (!rc && c->s->fake_ids) {
            self_fd(path, sizeof path, fd);
            view_statx(c->s, path, &stx);
        }
        close(fd);
        return rc ? rc : write_mem(c->req->pid, buf, &stx, sizeof stx);
    }
    return rc ? rc : -ELOOP;
}

/* AT_EMPTY_PATH with an empty (or NULL, for statx) path: the dirfd itself. */
static int empty_path(struct ctx *c, int path_i, int flags)
{
    char first = 1;
    if (!(flags & AT_EMPTY_PATH))
        return 0;
    return !arg(c, path_i) || (read_mem(c->req->pid, arg(c, path_i), &first, 1) == 0 && !first);
}

static long stat_family(struct ctx *c)
{
    int nr = c->req->data.nr;
    if (!as_self(c) && nr != SYS_fstat)
        return BP_FALLBACK;      /* the walk must search as the caller */
    switch (nr) {
    case SYS_stat:
    case SYS_lstat:
        return stat_path(c, 0, AT_FDCWD, nr == SYS_stat, arg(c, 1));
    case SYS_fstat:
        return stat_of_fd(c, iarg(c, 0), arg(c, 1));
    case SYS_newfstatat: {
        int flags = iarg(c, 3);
        if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT))
            return BP_FALLBACK;
        if (empty_path(c, 1, flags))     /* "" or, since 6.11, NULL */
            return iarg(c, 0) == AT_FDCWD ? BP_FALLBACK : stat_of_fd(c, iarg(c, 0), arg(c, 2));
        return stat_path(c, 1, iarg(c, 0), !(flags & AT_SYMLINK_NOFOLLOW), arg(c, 2));
    }
    case SYS_statx: {
        int flags = iarg(c, 2);
        unsigned int mask = (unsigned int)arg(c, 3);
        if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT |
                      AT_STATX_SYNC_TYPE))
            return BP_FALLBACK;
        if (empty_path(c, 1, flags)) {
            char path[64];
            struct statx stx;
            if (iarg(c, 0) == AT_FDCWD)
                return BP_FALLBACK;
            tracee_fd_path(c, iarg(c, 0), path, sizeof path);
            if (statx(AT_FDCWD, path, flags & AT_STATX_SYNC_TYPE, mask, &stx) < 0)
                return fd_errno(-errno);
            if (c->s->fake_ids)
                view_statx(c->s, path, &stx);
            return write_mem(c->req->pid, arg(c, 4), &stx, sizeof stx);
        }
        return statx_path(c, iarg(c, 0), flags, mask, arg(c, 4));
    }
    }
    return BP_FALLBACK;
}

/* -- statfs ------------------------------------------------------------------------------ */

/* The host file system of the file found, as syscalls/handlers/fs.py's
 * statfs reports it: ST_RDONLY on a read-only mount of the container's but
 * a given device node's (Mount.shown_readonly in brandpy/runtime/mounts.py
 * says why: a device mount that is no directory). */
static long statfs_(struct ctx *c)
{
    if (!as_self(c))
        return BP_FALLBACK;      /* the walk must search as the caller */
    int rc = path_arg(c, 0, AT_FDCWD, 1);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        struct stat st;
        struct statfs sfs;
        int fd = object(&c->r, 1, &st);
        if (fd == BP_AGAIN) {
            rc = resolve(c, AT_FDCWD, 1);
            continue;
        }
        if (fd < 0)
            return fd;
        rc = fstatfs(fd, &sfs) < 0 ? -errno : 0;
        close(fd);
        const struct bp_mount *m = c->r.mount;
        if (m->readonly && !(m->kind == BP_MOUNT_DEVICE && !m->root_is_dir))
            sfs.f_flags |= ST_RDONLY;
        return rc ? rc : write_mem(c->req->pid, arg(c, 1), &sfs, sizeof sfs);
    }
    return rc ? rc : -ELOOP;
}

/* -- access, readlink ------------------------------------------------------------------- */

static long access_family(struct ctx *c)
{
    int nr = c->req->data.nr, dirfd = AT_FDCWD, path_i = 0, mode, flags = 0;
    if (nr == SYS_access) {
        mode = iarg(c, 1);
    } else {
        dirfd = iarg(c, 0);
        path_i = 1;
        mode = iarg(c, 2);
        if (nr == SYS_faccessat2)
            flags = iarg(c, 3);
    }
    if (flags & ~AT_SYMLINK_NOFOLLOW || !(c->t->flags & BP_THREAD_ACCESS_ROOT))
        return BP_FALLBACK;      /* AT_EACCESS, or real IDs that are not root's */
    if (mode & ~7)
        return -EINVAL;
    int follow = !(flags & AT_SYMLINK_NOFOLLOW);
    int rc = path_arg(c, path_i, dirfd, follow);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        struct stat st;
        if ((rc = lstat_r(&c->r, follow, &st)) == BP_AGAIN) {
            rc = resolve(c, dirfd, follow);
            continue;
        }
        if (rc)
            return rc;
        if ((mode & W_OK) && c->r.mount->readonly &&
            (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
            return -EROFS;
        /* the container's root passes every check a real root passes */
        if ((mode & X_OK) && !S_ISDIR(st.st_mode)) {
            if (c->s->fake_ids) {
                char path[64];
                int fd = object(&c->r, follow, &st);
                if (fd < 0)
                    return fd == BP_AGAIN ? -ENOENT : fd;
                self_fd(path, sizeof path, fd);
                view_stat(c->s, path, &st);
                close(fd);
            }
            if (!(st.st_mode & 0111))
                return -EACCES;
        }
        return 0;
    }
    return rc ? rc : -ELOOP;
}

/* readlink("/proc/self/exe"), as busybox asks at every start: the guest
 * path of the caller's program (pathres.magic_target's answer), when the
 * container's /proc is there and the thread sees the container's root;
 * else, or unknown, Python answers. */
static long own_exe(struct ctx *c, int at, int size)
{
    size_t consumed = 0;
    const struct bp_mount *m = bp_mount_of_guest(c->s, c->path, strlen(c->path), &consumed);
    if (!c->t->exe || c->t->flags & BP_THREAD_CHROOT || !m || m->kind != BP_MOUNT_PROC ||
        consumed != strlen("/proc"))
        return BP_FALLBACK;
    size_t n = strlen(c->t->exe);
    if (n > (size_t)size)
        n = size;
    int rc = write_mem(c->req->pid, arg(c, at + 1), c->t->exe, n);
    return rc ? rc : (long)n;
}

static long readlink_family(struct ctx *c)
{
    int at = c->req->data.nr == SYS_readlinkat;
    int size = iarg(c, at ? 3 : 2), rc;
    char target[BP_PATH_MAX];
    if (size <= 0)
        return -EINVAL;
    if (!as_self(c))
        return BP_FALLBACK;      /* the walk must search as the caller */
    if ((rc = read_path(c, at, c->path)) != 0)
        return rc;
    if (!c->path[0])
        return BP_FALLBACK;      /* readlinkat(fd, ""): the O_PATH symlink fd itself */
    if (!strcmp(c->path, "/proc/self/exe"))
        return own_exe(c, at, size);
    if ((rc = resolve(c, at ? iarg(c, 0) : AT_FDCWD, 0)) != 0)
        return rc;
    if (c->r.must_dir)
        return BP_FALLBACK;
    if (!c->r.name[0] || !strcmp(c->r.name, "."))
        return -EINVAL;
    ssize_t n = readlinkat(c->r.dirfd, c->r.name, target, sizeof target);
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
    if (bp_removed_dir(link, host, n))
        return -ENOENT;     /* as Linux's getcwd */
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

/* The start of /proc/TID/status, NUL-terminated; -1 if it is gone. */
static int read_status(pid_t tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return 0;
}

/* The caller's umask, which the kernel keeps and /proc shows (umask(2) runs
 * natively: tracking it would cost a trap per call); -1 if it is gone. */
static int umask_of(pid_t tid)
{
    char buf[256];
    if (read_status(tid, buf, sizeof buf) < 0)
        return -1;
    char *line = strstr(buf, "\nUmask:");
    return line ? (int)strtoul(line + 7, NULL, 8) & 0777 : -1;
}

/* -- open ------------------------------------------------------------------------------- */

static long install(struct ctx *c, int fd, int cloexec)
{
    struct seccomp_notif_addfd add = {
        .id = c->req->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = fd,
        .newfd_flags = cloexec ? O_CLOEXEC : 0};
    int rc = addfd_on_one_cpu(c->lfd, c->req->pid, &add);
    int err = errno;
    close(fd);
    if (rc < 0 && err != ENOENT)    /* ENOENT: the tracee went away meanwhile */
        return -err;
    c->answered = 1;
    return 0;
}

/* Devices whose open checks no capability, which C may open acting as the
 * supervisor: null, zero, full, random, urandom, tty, ptmx, the ptys (of
 * the /dev/pts view: each opened through its devpts dentry). Any other
 * (kmsg: CAP_SYSLOG, mem: CAP_SYS_RAWIO...) is Python's, which opens it
 * with the caller's exact capabilities. */
static int plain_device(dev_t rdev)
{
    unsigned int maj = major(rdev), min = minor(rdev);
    if (maj == 1)
        return min == 3 || min == 5 || min == 7 || min == 8 || min == 9;
    return (maj == 5 && (min == 0 || min == 2)) || (maj >= 136 && maj < 144);
}

/* An empty file that fake identity's mknod recorded as a device
 * (syscalls/handlers/fakefs.py): Python opens it, if given, or refuses. */
static int device_record(const struct ctx *c, int obj, const struct stat *st)
{
    char path[64], raw[128];
    if (!c->s->fake_ids || !S_ISREG(st->st_mode) || st->st_size)
        return 0;
    self_fd(path, sizeof path, obj);
    ssize_t n = getxattr(path, OVERRIDE_XATTR, raw, sizeof raw - 1);
    if (n <= 0)
        return 0;
    raw[n] = 0;
    return strstr(raw, ":char-") || strstr(raw, ":block-");
}

/* One open of the object obj (an O_PATH descriptor of what c->r names, -1:
 * nothing there): an fd, -errno, BP_AGAIN or BP_FALLBACK. What opens is
 * that inode, through /proc/self/fd, after its checks: a name swapped
 * meanwhile changes nothing. Device nodes other than a given device's own
 * node are Python's, which checks their rdev (brandpy/runtime/devices.py). */
static int open_object(struct ctx *c, int obj, int flags, unsigned int mode, int follow)
{
    struct stat st;
    int exists = obj >= 0, real = (flags | O_CLOEXEC | O_NOCTTY) & ~O_ASYNC;
    if (exists && fstat(obj, &st) < 0)
        return -errno;
    if (exists && S_ISLNK(st.st_mode) && follow)
        return BP_AGAIN;
    if (c->r.must_dir) {
        if (flags & O_CREAT)
            return -EISDIR;
        real |= O_DIRECTORY;
    }
    if (exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
        (c->r.name[0] || !S_ISCHR(st.st_mode) || c->r.mount->kind != BP_MOUNT_DEVICE ||
         !strcmp(c->r.mount->host, "/dev/tty") || !plain_device(st.st_rdev)))
        return BP_FALLBACK;     /* fifos that block, terminals, sockets, other devices */
    if (exists && device_record(c, obj, &st))
        return BP_FALLBACK;
    int acc = flags & O_ACCMODE;
    /* glibc's O_TMPFILE includes O_DIRECTORY: only both bits make one */
    int tmpfile = (flags & O_TMPFILE) == O_TMPFILE;
    int writes = acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC) || tmpfile ||
                 ((flags & O_CREAT) && !exists);
    if (writes && c->r.mount->readonly)
        return -EROFS;
    if (writes && exists && image_file(obj, &st))
        return BP_FALLBACK;              /* copy-up first */
    int mask = 0;
    if (((flags & O_CREAT) || tmpfile) && (mask = umask_of(c->req->pid)) < 0)
        return BP_FALLBACK;
    int fd;
    if (!exists || ((flags & O_CREAT) && (flags & O_EXCL)) || tmpfile) {
        /* a new file: O_EXCL never opens what is there */
        if (!exists && !(flags & O_CREAT))
            return -ENOENT;
        if (!c->r.name[0])
            return -EEXIST;
        int excl = !exists ? O_EXCL : 0;
        mode_t old = umask(0);
        fd = openat(c->r.dirfd, c->r.name, real | O_NOFOLLOW | excl, mode & 07777 & ~mask);
        int err = errno;
        umask(old);
        if (fd < 0 && err == EEXIST && !(flags & O_EXCL))
            return BP_AGAIN;             /* made meanwhile: open what is there */
        errno = err;
    } else {
        char path[64];
        if (S_ISDIR(st.st_mode) && (flags & O_CREAT))
            return -EISDIR;
        if ((flags & O_CREAT) && sticky_dir(c->s, c->r.dirfd))
            return BP_FALLBACK;
        self_fd(path, sizeof path, obj);
        fd = open(path, real & ~(O_CREAT | O_NOFOLLOW));
    }
    if (fd < 0)
        return errno == ELOOP && follow ? BP_AGAIN : -errno;
    return fd;
}

static int open_resolved(struct ctx *c, int flags, unsigned int mode, int follow)
{
    int obj = c->r.name[0] ? openat(c->r.dirfd, c->r.name, OBJ)
                           : fcntl(c->r.dirfd, F_DUPFD_CLOEXEC, 0);
    if (obj < 0 && errno != ENOENT)
        return -errno;
    int rc = open_object(c, obj, flags, mode, follow);
    if (obj >= 0)
        close(obj);
    return rc;
}

/* /proc/filesystems, the kernel's list of file system types (libselinux
 * reads it at every start): the same in every namespace, and Python opens
 * it on the proc mount's host path unchanged (procfs.py has no view of
 * it). C opens it for a read of exactly that path in the container's own
 * mount table (the path argument c->path, read); any other /proc path,
 * "/proc/./filesystems" or a relative one, is Python's. */
#define FILESYSTEMS "/filesystems"
static int proc_filesystems(struct ctx *c, int flags)
{
    size_t len = strlen(c->path), consumed = 0, tail = sizeof FILESYSTEMS - 1;
    char host[BP_PATH_MAX];
    if ((flags & ~(O_CLOEXEC | O_LARGEFILE | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)) != O_RDONLY ||
        (c->t->flags & BP_THREAD_CHROOT) || c->path[0] != '/' || len <= tail ||
        strcmp(c->path + len - tail, FILESYSTEMS))
        return BP_FALLBACK;
    const struct bp_mount *m = bp_mount_of_guest(c->s, c->path, len, &consumed);
    if (!m || m->kind != BP_MOUNT_PROC || consumed != len - tail)
        return BP_FALLBACK;
    snprintf(host, sizeof host, "%s" FILESYSTEMS, m->host);
    int fd = open(host, (flags | O_CLOEXEC | O_NOCTTY) & ~O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

/* open(2) family: the supervisor opens the file and installs the fd in the
 * tracee. Regular files, directories, device mounts and /proc/filesystems;
 * fifos, terminals, image files to copy up, the rest of /proc and other
 * device nodes are Python's. */
static long open_family(struct ctx *c)
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
        if (arg(c, 4) == HANDOFF)
            return BP_FALLBACK;          /* a ptrace stop's fd: Python installs it */
        dirfd = iarg(c, 0);
        path_i = 1;
        flags = iarg(c, 2);
        mode = arg(c, 3);
    }
    int follow = !(flags & O_NOFOLLOW) && !((flags & O_CREAT) && (flags & O_EXCL));
    if (!as_self(c) || (flags & O_PATH))
        return BP_FALLBACK;
    if ((rc = read_path(c, path_i, c->path)) != 0)
        return rc;
    int fd = proc_filesystems(c, flags);
    if (fd != BP_FALLBACK)
        return fd < 0 ? fd : install(c, fd, flags & O_CLOEXEC);
    rc = resolve(c, dirfd, follow);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        int fd = open_resolved(c, flags, mode, follow);
        if (fd == BP_AGAIN) {
            rc = resolve(c, dirfd, follow);
            continue;
        }
        return fd < 0 ? fd : install(c, fd, flags & O_CLOEXEC);
    }
    return rc ? rc : -ELOOP;
}

/* -- names ------------------------------------------------------------------------------ */

/* The directory where a call makes or removes a name: the last component
 * is not followed. 1: go on; 0 or -errno: the answer. */
static int parent_arg(struct ctx *c, int path_i, int dirfd, char *buf, struct bp_resolved *r)
{
    int rc = read_path(c, path_i, buf);
    if (rc)
        return rc;
    bp_resolved_close(r);
    rc = bp_resolve(c->s, c->t, dirfd, buf, 0, r);
    if (rc)
        return rc;
    bp_race_pause();
    return r->mount->readonly ? -EROFS : 1;
}

static long mkdir_family(struct ctx *c)
{
    int at = c->req->data.nr == SYS_mkdirat, mask;
    unsigned int mode = arg(c, at ? 2 : 1);
    if (!as_self(c))
        return BP_FALLBACK;
    int rc = parent_arg(c, at, at ? iarg(c, 0) : AT_FDCWD, c->path, &c->r);
    if (rc <= 0)
        return rc;
    if (!c->r.name[0])
        return -EEXIST;
    if ((mask = umask_of(c->req->pid)) < 0)
        return BP_FALLBACK;
    mode_t old = umask(0);
    rc = mkdirat(c->r.dirfd, c->r.name, mode & 07777 & ~mask);
    umask(old);
    return rc < 0 ? -errno : 0;
}

/* A path with a trailing slash (its last name must be a directory). */
static int slashed(const char *path)
{
    size_t n = strlen(path);
    return n > 1 && path[n - 1] == '/';
}

static long unlink_family(struct ctx *c)
{
    int nr = c->req->data.nr, at = nr == SYS_unlinkat;
    int flags = nr == SYS_rmdir ? AT_REMOVEDIR : at ? iarg(c, 2) : 0;
    if (!as_self(c))
        return BP_FALLBACK;
    if (flags & ~AT_REMOVEDIR)
        return -EINVAL;
    int rc = parent_arg(c, at, at ? iarg(c, 0) : AT_FDCWD, c->path, &c->r);
    if (rc <= 0)
        return rc;
    if (!c->r.name[0] || c->r.must_dir || slashed(c->path) || !strcmp(c->r.name, "."))
        return BP_FALLBACK;          /* a mount point, "x/", "x/..": Python's errors */
    /* EBUSY: a mount point in the container's mount namespace, where this
     * thread acts; Python tries again in ours (acting.beside_mounts) */
    return unlinkat(c->r.dirfd, c->r.name, flags) < 0 ? errno == EBUSY ? BP_FALLBACK : -errno
                                                      : 0;
}

static long rename_family(struct ctx *c)
{
    int nr = c->req->data.nr, at = nr != SYS_rename;
    unsigned int flags = nr == SYS_renameat2 ? (unsigned int)arg(c, 4) : 0;
    if (!as_self(c))
        return BP_FALLBACK;
    if (flags & ~7u)
        return -EINVAL;
    int rc = parent_arg(c, at ? 1 : 0, at ? iarg(c, 0) : AT_FDCWD, c->path, &c->r);
    if (rc <= 0)
        return rc;
    rc = parent_arg(c, at ? 3 : 1, at ? iarg(c, 2) : AT_FDCWD, c->path2, &c->r2);
    if (rc <= 0)
        return rc;
    if (!c->r.name[0] || !c->r2.name[0])
        return -EBUSY;
    if (c->r.mount != c->r2.mount)
        return -EXDEV;
    if (c->r.must_dir || c->r2.must_dir || slashed(c->path) || slashed(c->path2))
        return BP_FALLBACK;          /* "x/" is never followed: Python's rules */
    if (syscall(SYS_renameat2, c->r.dirfd, c->r.name, c->r2.dirfd, c->r2.name, flags) < 0)
        return errno == EBUSY ? BP_FALLBACK : -errno;   /* as unlink_family's */
    return 0;
}

static long symlink_family(struct ctx *c)
{
    int at = c->req->data.nr == SYS_symlinkat;
    if (!as_self(c))
        return BP_FALLBACK;
    int rc = read_path(c, 0, c->path2);
    if (rc)
        return rc;
    if (!c->path2[0])
        return -ENOENT;
    rc = parent_arg(c, at ? 2 : 1, at ? iarg(c, 1) : AT_FDCWD, c->path, &c->r);
    if (rc <= 0)
        return rc;
    if (!c->r.name[0])
        return -EEXIST;
    if (c->r.must_dir)
        return BP_FALLBACK;
    return symlinkat(c->path2, c->r.dirfd, c->r.name) < 0 ? -errno : 0;
}

/* -- metadata --------------------------------------------------------------------------- */

/* The file a metadata call changes (an O_PATH descriptor), read-only mounts
 * and image files (Python copies them up) checked. */
static int changing(struct ctx *c, int path_i, int dirfd, int follow, struct stat *st)
{
    int rc = path_arg(c, path_i, dirfd, follow);
    for (int tries = 0; !rc && tries < MAX_AGAIN; tries++) {
        int fd = object(&c->r, follow, st);
        if (fd == BP_AGAIN) {
            rc = resolve(c, dirfd, follow);
            continue;
        }
        if (fd < 0)
            return fd;
        if (c->r.mount->readonly) {
            close(fd);
            return -EROFS;
        }
        if (image_file(fd, st)) {
            close(fd);
            return BP_FALLBACK;
        }
        return fd;
    }
    return rc ? rc : -ELOOP;
}

/* Fake ownership (unprivileged: syscalls/handlers/fakefs.py, whose rules
 * these are, for a caller holding the filesystem capabilities, the only
 * one C answers for): ownership and the bits the host user cannot keep
 * live in the override xattr, "UID:GID:0MODE:KIND". */
struct fake_view {
    unsigned int uid, gid, mode;   /* mode: the 12 permission bits */
    char kind[40];                 /* file, dir, ..., char-MAJ-MIN */
};

/* What the container would see of st without an override. */
static void default_view(const struct bp_state *s, const struct stat *st, struct fake_view *v)
{
    unsigned int type = st->st_mode & S_IFMT;
    const char *kind = S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "symlink" :
                       S_ISFIFO(st->st_mode) ? "pipe" : S_ISSOCK(st->st_mode) ? "socket" :
                       type == S_IFCHR ? "char" : type == S_IFBLK ? "block" : "file";
    v->uid = st->st_uid == s->host_uid ? 0 : OVERFLOW_ID;
    v->gid = st->st_gid == s->host_gid ? 0 : OVERFLOW_ID;
    v->mode = st->st_mode & 07777;
    if (type == S_IFCHR || type == S_IFBLK)
        snprintf(v->kind, sizeof v->kind, "%s-%u-%u", kind, major(st->st_rdev),
                 minor(st->st_rdev));
    else
        snprintf(v->kind, sizeof v->kind, "%s", kind);
}

/* The container's view of the file at path (a /proc/self/fd magic link). */
static void fake_view(const struct bp_state *s, const char *path, const struct stat *st,
                      struct fake_view *v)
{
    unsigned int uid, gid, mode;
    char kind[40];
    default_view(s, st, v);
    if (S_ISLNK(st->st_mode) || !read_override(path, &uid, &gid, &mode, kind))
        return;
    v->uid = uid;
    v->gid = gid;
    v->mode = mode & 07777;
    if (kind[0])
        memcpy(v->kind, kind, sizeof kind);
}

/* Store v for the file at path (lstat st), or drop the override where the
 * default view says the same. A file without owner-write (dpkg makes some
 * with mode 0) is lent it for the moment: user.* xattrs need it. 0, or
 * BP_FALLBACK for Python's error (a filesystem without user xattrs...). */
static int fake_record(const struct bp_state *s, const char *path, const struct stat *st,
                       const struct fake_view *v)
{
    struct fake_view d;
    char raw[128];
    default_view(s, st, &d);
    int lend = !(st->st_mode & 0200), rc;
    if (lend && chmod(path, (st->st_mode & 07777) | 0200) < 0)
        return BP_FALLBACK;
    if (v->uid == d.uid && v->gid == d.gid && v->mode == d.mode && !strcmp(v->kind, d.kind))
        rc = removexattr(path, OVERRIDE_XATTR) < 0 && errno != ENODATA ? BP_FALLBACK : 0;
    else {
        snprintf(raw, sizeof raw, "%u:%u:0%o:%s", v->uid, v->gid, v->mode, v->kind);
        rc = setxattr(path, OVERRIDE_XATTR, raw, strlen(raw), 0) < 0 ? BP_FALLBACK : 0;
    }
    if (lend)
        chmod(path, st->st_mode & 07777);
    return rc;
}

/* chmod under fake ownership: the host file keeps its owner's rw (rwx for
 * a directory) and the sticky bit, the override every bit asked for. */
static int fake_chmod(struct ctx *c, const char *path, struct stat *st, unsigned int mode)
{
    struct fake_view v;
    if (S_ISLNK(st->st_mode))
        return -EOPNOTSUPP;
    fake_view(c->s, path, st, &v);
    unsigned int keep = S_ISDIR(st->st_mode) ? 0700 : 0600;
    if (chmod(path, ((mode | keep) & 0777) | (mode & 01000)) < 0)
        return -errno;
    if (stat(path, st) < 0)
        return -errno;
    v.mode = mode & 07777;
    return fake_record(c->s, path, st, &v);
}

/* chown under fake ownership: recorded only (a symlink cannot carry it). */
static int fake_chown(struct ctx *c, const char *path, const struct stat *st,
                      unsigned int uid, unsigned int gid)
{
    struct fake_view v;
    if (S_ISLNK(st->st_mode))
        return 0;
    fake_view(c->s, path, st, &v);
    if (uid != (unsigned int)-1)
        v.uid = uid;
    if (gid != (unsigned int)-1)
        v.gid = gid;
    if (!S_ISDIR(st->st_mode) && (uid != (unsigned int)-1 || gid != (unsigned int)-1)) {
        v.mode &= ~04000u;                  /* chown clears set-user-ID */
        if (v.mode & 010)
            v.mode &= ~02000u;              /* and set-group-ID if group-executable */
    }
    return fake_record(c->s, path, st, &v);
}

static long chmod_family(struct ctx *c)
{
    int nr = c->req->data.nr, at = nr != SYS_chmod;
    int flags = nr == SYS_fchmodat2 ? iarg(c, 3) : 0;
    unsigned int mode = arg(c, at ? 2 : 1);
    struct stat st;
    char path[64];
    if (!as_self(c) || (flags & ~AT_SYMLINK_NOFOLLOW))
        return BP_FALLBACK;
    int fd = changing(c, at, at ? iarg(c, 0) : AT_FDCWD, !(flags & AT_SYMLINK_NOFOLLOW), &st);
    if (fd < 0)
        return fd;
    self_fd(path, sizeof path, fd);
    int rc = c->s->fake_ids ? fake_chmod(c, path, &st, mode & 07777) :
             S_ISLNK(st.st_mode) ? -EOPNOTSUPP : chmod(path, mode & 07777) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static long chown_family(struct ctx *c)
{
    int nr = c->req->data.nr, at = nr == SYS_fchownat;
    int flags = at ? iarg(c, 4) : nr == SYS_lchown ? AT_SYMLINK_NOFOLLOW : 0;
    unsigned int uid = (unsigned int)arg(c, at + 1), gid = (unsigned int)arg(c, at + 2);
    struct stat st;
    char path[64];
    if (!as_self(c) || (flags & ~AT_SYMLINK_NOFOLLOW))
        return BP_FALLBACK;
    int fd = changing(c, at, at ? iarg(c, 0) : AT_FDCWD, !(flags & AT_SYMLINK_NOFOLLOW), &st);
    if (fd < 0)
        return fd;
    self_fd(path, sizeof path, fd);
    int rc = c->s->fake_ids ? fake_chown(c, path, &st, uid, gid) :
             fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static long utimens_family(struct ctx *c)
{
    int nr = c->req->data.nr, dirfd = AT_FDCWD, path_i = 0, flags = 0;
    struct timespec ts[2], *times = ts;
    struct stat st;
    unsigned long tp;
    if (!as_self(c))
        return BP_FALLBACK;
    if (nr == SYS_utimensat) {
        dirfd = iarg(c, 0);
        path_i = 1;
        flags = iarg(c, 3);
        tp = arg(c, 2);
        if (!arg(c, 1) || (flags & ~AT_SYMLINK_NOFOLLOW))
            return BP_FALLBACK;          /* futimens, AT_EMPTY_PATH: Python's */
        if (tp && read_mem(c->req->pid, tp, ts, sizeof ts) < 0)
            return -EFAULT;
        if (tp && ts[0].tv_nsec == UTIME_OMIT && ts[1].tv_nsec == UTIME_OMIT)
            return 0;
    } else if (nr == SYS_utimes) {
        struct timeval tv[2];
        tp = arg(c, 1);
        if (tp) {
            if (read_mem(c->req->pid, tp, tv, sizeof tv) < 0)
                return -EFAULT;
            for (int i = 0; i < 2; i++) {
                if (tv[i].tv_usec < 0 || tv[i].tv_usec >= 1000000)
                    return -EINVAL;
                ts[i].tv_sec = tv[i].tv_sec;
                ts[i].tv_nsec = tv[i].tv_usec * 1000;
            }
        }
    } else {
        return BP_FALLBACK;
    }
    if (!tp)
        times = NULL;
    int fd = changing(c, path_i, dirfd, !(flags & AT_SYMLINK_NOFOLLOW), &st);
    if (fd < 0)
        return fd;
    int rc = utimensat(fd, "", times, AT_EMPTY_PATH) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* -- sendmsg and sendmmsg without a destination ------------------------------------------- */

/* Every sendmsg is trapped (BPF cannot see msg_name, and a "continue" would
 * let the kernel read a header a sibling can change): the common case, no
 * destination and no control data, is sent here on a duplicate of the
 * caller's socket, from one copy of each header and its data. A destination,
 * control data (SCM_RIGHTS), more data or messages than fit, and a send
 * that would block a blocking socket before anything was sent go to Python
 * (syscalls/handlers/sendmsg.py, the reference). */
#define SEND_MSGS 8
#define SEND_IOVS 16
#define SEND_BYTES 65536

/* The real IDs of a thread (what the kernel's own SCM_CREDENTIALS carry). */
static int real_ids(pid_t tid, struct ucred *uc)
{
    char buf[1024];
    if (read_status(tid, buf, sizeof buf) < 0)
        return -1;
    char *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:");
    if (!u || !g)
        return -1;
    uc->uid = (uid_t)strtoul(u + 5, NULL, 10);
    uc->gid = (gid_t)strtoul(g + 5, NULL, 10);
    return 0;
}

/* As root, a message on an AF_UNIX socket carries the caller's credentials
 * explicitly, else a receiver with SO_PASSCRED would see the supervisor's
 * (syscalls/handlers/sendmsg.py _vouching): 1 with *uc set, 0 for other
 * sockets and unprivileged, -1 when they cannot be told. */
static int vouch(struct ctx *c, int sock, struct ucred *uc)
{
    int family = -1;
    socklen_t len = sizeof family;
    if (c->s->fake_ids || geteuid() != 0 ||
        getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0 || family != AF_UNIX)
        return 0;
    uc->pid = c->t->tgid;
    return real_ids(c->req->pid, uc) < 0 ? -1 : 1;
}

static long send_family(struct ctx *c)
{
    static char data[SEND_BYTES];
    int mm = c->req->data.nr == SYS_sendmmsg;
    unsigned int count = mm ? (unsigned int)arg(c, 2) : 1;
    int flags = iarg(c, mm ? 3 : 2);
    unsigned long at = arg(c, 1);
    struct mmsghdr h[SEND_MSGS];
    if (!count || count > SEND_MSGS)
        return BP_FALLBACK;
    if (read_mem(c->req->pid, at, h, count * (mm ? sizeof h[0] : sizeof h[0].msg_hdr)) < 0)
        return BP_FALLBACK;          /* Python finds which header is bad */
    for (unsigned int i = 0; i < count; i++) {
        const struct msghdr *m = &h[i].msg_hdr;
        if ((m->msg_name && m->msg_namelen) || m->msg_controllen || m->msg_iovlen > SEND_IOVS)
            return BP_FALLBACK;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, c->t->tgid, 0);
    if (pidfd < 0)
        return BP_FALLBACK;
    long rc;
    int sock = -1;
    if (!still_valid(c->lfd, c->req->id)) {
        rc = -ESRCH;
        goto out;
    }
    sock = (int)syscall(SYS_pidfd_getfd, pidfd, iarg(c, 0), 0);
    if (sock < 0) {
        rc = -errno;
        goto out;
    }
    int waits = !(flags & MSG_DONTWAIT) && !(fcntl(sock, F_GETFL) & O_NONBLOCK);
    struct ucred uc;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(struct ucred))];
    } creds;
    int vouched = vouch(c, sock, &uc);
    if (vouched < 0) {
        rc = BP_FALLBACK;
        goto out;
    }
    unsigned int sent;
    rc = 0;
    for (sent = 0; sent < count; sent++) {
        struct msghdr *m = &h[sent].msg_hdr;
        struct iovec vec[SEND_IOVS], local = {data, 0};
        size_t total = 0;
        if (m->msg_iovlen && read_mem(c->req->pid, (unsigned long)m->msg_iov, vec,
                                      m->msg_iovlen * sizeof vec[0]) < 0) {
            rc = -EFAULT;
            break;
        }
        for (size_t k = 0; k < m->msg_iovlen; k++)
            total += vec[k].iov_len < SEND_BYTES ? vec[k].iov_len : SEND_BYTES + 1;
        if (total > SEND_BYTES) {
            rc = sent ? 0 : BP_FALLBACK;
            break;
        }
        local.iov_len = total;
        if (total && process_vm_readv(c->req->pid, &local, 1, vec, m->msg_iovlen, 0) !=
                     (ssize_t)total) {
            rc = -EFAULT;
            break;
        }
        struct msghdr out = {.msg_iov = &local, .msg_iovlen = 1};
        if (vouched) {
            out.msg_control = creds.buf;
            out.msg_controllen = sizeof creds.buf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&out);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_CREDENTIALS;
            cm->cmsg_len = CMSG_LEN(sizeof uc);
            memcpy(CMSG_DATA(cm), &uc, sizeof uc);
        }
        ssize_t n = sendmsg(sock, &out, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            rc = -errno;
            if (rc == -EPIPE && !(flags & MSG_NOSIGNAL))
                syscall(SYS_tgkill, c->t->tgid, c->req->pid, SIGPIPE);
            if (rc == -EAGAIN && waits && !sent)
                rc = BP_FALLBACK;    /* it blocks: on a thread, in Python */
            break;
        }
        rc = n;
        if (mm) {
            unsigned int len = (unsigned int)n;
            write_mem(c->req->pid, at + sent * sizeof h[0] + offsetof(struct mmsghdr, msg_len),
                      &len, sizeof len);
        }
    }
    if (mm && sent)
        rc = sent;                   /* sendmmsg: the messages sent, an error only for none */
out:
    if (sock >= 0)
        close(sock);
    close(pidfd);
    return rc;
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

static long getpid_(struct ctx *c)
{
    return c->t->guest_tgid;
}

static long gettid_(struct ctx *c)
{
    return c->t->guest_tid;
}

/* -- prctl --------------------------------------------------------------------------------- */

/* The name PR_GET_NAME gives, as syscalls/handlers/process.py's _name: the
 * container's for the thread's program while the kernel's is still the one
 * exec gave it (not renamed by PR_SET_NAME or /proc/self/comm), else the
 * kernel's; 16 bytes, NUL-padded, as Linux writes it. */
static long get_name(struct ctx *c)
{
    char path[64], real[80], out[BP_COMM_LEN + 1] = {0};
    snprintf(path, sizeof path, "/proc/%d/comm", c->t->tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : BP_FALLBACK;   /* ESRCH: gone, no one to answer */
    ssize_t n = read(fd, real, sizeof real - 1);
    close(fd);
    if (n <= 0)
        return BP_FALLBACK;
    if (real[n - 1] == '\n')
        n--;                        /* one: a name may end in a newline itself */
    real[n] = 0;
    const char *name = c->t->comm[0] && !strcmp(real, c->t->kernel_comm) ? c->t->comm : real;
    size_t len = strlen(name);
    memcpy(out, name, len < BP_COMM_LEN ? len : BP_COMM_LEN);
    return write_mem(c->req->pid, arg(c, 1), out, sizeof out);
}

/* The options the table performs (process.py PERFORMED); PR_SET_DUMPABLE
 * is recorded, never applied. */
static long prctl_(struct ctx *c)
{
    switch (iarg(c, 0)) {
    case PR_GET_NAME:
        return get_name(c);
    case PR_GET_DUMPABLE:
        return !(c->t->flags & BP_THREAD_UNDUMPABLE);
    case PR_SET_DUMPABLE:
        if (arg(c, 1) > 1)
            return -EINVAL;
        bp_state_set_dumpable(c->s, c->t->tgid, (int)arg(c, 1));
        c->dumpable_set = (int)arg(c, 1);
        return 0;
    default:
        return BP_FALLBACK;
    }
}

/* -- uname ------------------------------------------------------------------------------- */

/* struct new_utsname as syscalls/handlers/uts.py writes it: the host's
 * system name, version and machine, the container's hostname, domain name
 * and release; each field NUL-padded. A process in a UTS namespace of its
 * own (unshare, setns) is Python's, which holds that namespace. */
static long uname_(struct ctx *c)
{
    struct utsname host;
    char out[6][BP_UTS_LEN + 1] = {{0}};
    if (c->t->flags & BP_THREAD_OWN_UTS)
        return BP_FALLBACK;
    if (uname(&host) < 0)
        return BP_FALLBACK;
    const char *fields[6] = {"Linux", c->s->hostname, c->s->release, host.version,
                             host.machine, c->s->domainname};
    for (int i = 0; i < 6; i++)
        strncpy(out[i], fields[i], BP_UTS_LEN);
    return write_mem(c->req->pid, arg(c, 0), out, sizeof out);
}

/* -- xattrs of an open file --------------------------------------------------------------- */

/* brandpy's own bookkeeping, never the container's (fs.py OWN_XATTRS). */
static int own_xattr(const char *name)
{
    return !strcmp(name, OVERRIDE_XATTR) || !strcmp(name, IMAGE_MARKER);
}

/* The names of fd's xattrs without brandpy's own, into out (*len bytes). */
static long listed(int fd, char *out, size_t *len)
{
    char all[XATTR_LIST_MAX];
    ssize_t n = flistxattr(fd, all, sizeof all);
    if (n < 0)
        return -errno;
    *len = 0;
    for (char *name = all; name < all + n; name += strlen(name) + 1) {
        if (!own_xattr(name)) {
            memcpy(out + *len, name, strlen(name) + 1);
            *len += strlen(name) + 1;
        }
    }
    return 0;
}

static long xattr_of_fd(struct ctx *c, int fd)
{
    char buf[XATTR_SIZE_MAX];
    size_t len = 0;
    long rc;
    if (c->req->data.nr == SYS_flistxattr) {
        rc = listed(fd, buf, &len);
        if (rc)
            return rc;
    } else {
        char name[XATTR_NAME_MAX + 1];
        rc = read_str(c->req->pid, arg(c, 1), name, sizeof name);
        if (rc)
            return rc == -ENAMETOOLONG ? -ERANGE : rc;
        if (!name[0])
            return -ERANGE;
        if (own_xattr(name))
            return -ENODATA;
        ssize_t n = fgetxattr(fd, name, buf, sizeof buf);
        if (n < 0)
            return -errno;
        len = (size_t)n;
    }
    int last = c->req->data.nr == SYS_flistxattr ? 2 : 3;
    if (!arg(c, last))
        return (long)len;                /* the size wanted */
    if (len > arg(c, last))
        return -ERANGE;
    rc = write_mem(c->req->pid, arg(c, last - 1), buf, len);
    return rc ? rc : (long)len;
}

/* fgetxattr and flistxattr, made on the caller's open file (pidfd_getfd:
 * pipes and sockets too) with brandpy's own xattrs hidden, for a root
 * holding the filesystem capabilities (others' user.* read check is
 * Python's, syscalls/handlers/fs.py). An O_PATH fd is EBADF, as fdget's. */
static long xattr_fd(struct ctx *c)
{
    if (!as_self(c))
        return BP_FALLBACK;
    int pidfd = (int)syscall(SYS_pidfd_open, c->t->tgid, 0);
    if (pidfd < 0)
        return BP_FALLBACK;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, iarg(c, 0), 0);
    long rc = fd < 0 ? -errno : fcntl(fd, F_GETFL) & O_PATH ? -EBADF : xattr_of_fd(c, fd);
    if (fd >= 0)
        close(fd);
    close(pidfd);
    return rc;
}

typedef long (*handler)(struct ctx *);

/* The calls C answers (else Python: NULL), by syscall number. */
static handler handler_of(int nr)
{
    switch (nr) {
    case SYS_getpid:
        return getpid_;
    case SYS_gettid:
        return gettid_;
    case SYS_getppid:
        return getppid_;
    case SYS_stat: case SYS_lstat: case SYS_fstat: case SYS_newfstatat: case SYS_statx:
        return stat_family;
    case SYS_access: case SYS_faccessat: case SYS_faccessat2:
        return access_family;
    case SYS_readlink: case SYS_readlinkat:
        return readlink_family;
    case SYS_getcwd:
        return getcwd_;
    case SYS_open: case SYS_openat: case SYS_creat:
        return open_family;
    case SYS_mkdir: case SYS_mkdirat:
        return mkdir_family;
    case SYS_unlink: case SYS_unlinkat: case SYS_rmdir:
        return unlink_family;
    case SYS_rename: case SYS_renameat: case SYS_renameat2:
        return rename_family;
    case SYS_symlink: case SYS_symlinkat:
        return symlink_family;
    case SYS_chmod: case SYS_fchmodat: case SYS_fchmodat2:
        return chmod_family;
    case SYS_chown: case SYS_lchown: case SYS_fchownat:
        return chown_family;
    case SYS_utimensat: case SYS_utimes:
        return utimens_family;
    case SYS_sendmsg: case SYS_sendmmsg:
        return send_family;
    case SYS_fgetxattr: case SYS_flistxattr:
        return xattr_fd;
    case SYS_prctl:
        return prctl_;
    case SYS_uname:
        return uname_;
    case SYS_statfs:
        return statfs_;
    default:
        return NULL;
    }
}

int bp_notify_answers(int nr)
{
    return handler_of(nr) != NULL;
}

int bp_notify_handle(struct bp_state *s, int lfd, struct seccomp_notif *req)
{
    struct ctx c = {.s = s, .lfd = lfd, .req = req, .r = {.dirfd = -1}, .r2 = {.dirfd = -1},
                    .dumpable_set = -1};
    int nr = req->data.nr;
    handler h = handler_of(nr);
    c.t = bp_state_thread(s, req->pid);
    if (!c.t || !h || (nr >= 0 && nr < 512 && s->python_only[nr]))
        return 0;
    long rc = h(&c);
    bp_resolved_close(&c.r);
    bp_resolved_close(&c.r2);
    if (rc == BP_FALLBACK)
        return 0;
    if (nr >= 0 && nr < 512)
        s->calls[nr]++;
    if (!c.answered && rc != -ESRCH)
        answer(lfd, req->id, rc < 0 ? 0 : rc, rc < 0 ? (int)rc : 0);
    if (c.dumpable_set >= 0)
        bp_py_dumpable(req->pid, c.dumpable_set);
    return 1;
}
