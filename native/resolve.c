/* Guest path resolution in C, on file descriptors: the same walk as
 * brandpy/runtime/pathres.py (the reference), component by component inside
 * the container, for the fast path. Every step is taken on an O_PATH
 * descriptor (openat O_PATH|O_NOFOLLOW, readlinkat, fstatat NOFOLLOW, or
 * openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS over a prefix already walked),
 * starting from a mount's root descriptor at brandpy's mount points; `..`
 * is taken lexically on the canonical guest path. The result is a
 * directory descriptor and the last name, which the handlers act on with
 * the *at calls without following it.
 *
 * /dev/pts is a view: a name below it that is one of the container's live
 * ptys is that pty's device mount (its root the pty's devpts dentry, as
 * brandpy/runtime/ptys.py holds it); the directory itself and any other
 * name are Python's. Anything involving /proc (magic links, PID
 * translation), a chroot inside the container or a directory outside every
 * mount is left to the Python resolver too (BP_FALLBACK). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

#define MAXSYMLINKS 40
#define STEP (O_PATH | O_NOFOLLOW | O_CLOEXEC)

static int is_dot(const char *c, size_t n)
{
    return n == 1 && c[0] == '.';
}

static int is_dotdot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

/* Whether anything but "" and "." components remains in p. */
static int has_more(const char *p)
{
    while (*p) {
        while (*p == '/')
            p++;
        const char *q = p;
        while (*q && *q != '/')
            q++;
        if (q > p && !is_dot(p, q - p))
            return 1;
        p = q;
    }
    return 0;
}

/* The walk's position: the canonical guest path and, made on demand, an
 * O_PATH descriptor of the directory it names. */
struct walk {
    const struct bp_state *s;
    char cur[BP_PATH_MAX];
    size_t len;
    int fd, owned;
};

static void drop(struct walk *w)
{
    if (w->owned)
        close(w->fd);
    w->fd = -1;
    w->owned = 0;
}

static void set_fd(struct walk *w, int fd, int owned)
{
    drop(w);
    w->fd = fd;
    w->owned = owned;
}

static const struct bp_mount *mount_of(const struct bp_state *s, const char *guest, size_t len,
                                       size_t *consumed)
{
    const struct bp_mount *m = bp_mount_of_guest(s, len ? guest : "/", len ? len : 1, consumed);
    if (m && m->kind == BP_MOUNT_PTS && *consumed < len) {
        const char *name = guest + *consumed + 1;
        size_t n = 0;
        while (*consumed + 1 + n < len && name[n] != '/')
            n++;
        const struct bp_mount *pty = bp_pty_mount(s, name, n);
        if (pty) {
            *consumed += 1 + n;
            return pty;
        }
    }
    return m;
}

/* Mounts only the Python resolver walks. */
static int python_walks(const struct bp_mount *m)
{
    return !m || m->kind == BP_MOUNT_PROC || m->kind == BP_MOUNT_PTS || m->root_fd < 0;
}

/* The descriptor of w->cur: from its mount's root, one openat2 over the
 * rest, which is canonical: a symlink there now means it changed meanwhile,
 * and the walk fails rather than follow it in the kernel. */
static int walk_fd(struct walk *w)
{
    size_t consumed = 0;
    if (w->fd >= 0)
        return w->fd;
    const struct bp_mount *m = mount_of(w->s, w->cur, w->len, &consumed);
    if (python_walks(m))
        return BP_FALLBACK;
    const char *rest = w->cur + consumed;
    while (*rest == '/')
        rest++;
    if (!*rest) {
        if (!m->root_is_dir)
            return -ENOTDIR;
        set_fd(w, m->root_fd, 0);
        return w->fd;
    }
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                      RESOLVE_NO_MAGICLINKS};
    int fd = syscall(SYS_openat2, m->root_fd, rest, &how, sizeof how);
    if (fd < 0)
        return errno == ELOOP || errno == EXDEV || errno == EAGAIN ? -ENOENT : -errno;
    set_fd(w, fd, 1);
    return fd;
}

/* (internal.h) A directory removed since: its /proc link reads
 * "PATH (deleted)" and no name is left. */
int bp_removed_dir(const char *link, const char *host, ssize_t n)
{
    static const char deleted[] = " (deleted)";
    struct stat st;
    return n >= (ssize_t)sizeof deleted - 1 && !strcmp(host + n - (sizeof deleted - 1), deleted) &&
           stat(link, &st) == 0 && st.st_nlink == 0;
}

/* Guest path of a directory the thread holds (cwd or an fd). */
static int base_dir(const struct bp_state *s, const struct bp_thread *t, int dirfd, char *cur,
                    size_t *curlen)
{
    char link[64], host[BP_PATH_MAX + 1024], guest[BP_PATH_MAX];
    ssize_t n;
    if (dirfd == AT_FDCWD)
        snprintf(link, sizeof link, "/proc/%d/cwd", t->tid);
    else if (dirfd < 0)
        return -EBADF;
    else
        snprintf(link, sizeof link, "/proc/%d/fd/%d", t->tid, dirfd);
    n = readlink(link, host, sizeof host - 1);
    if (n < 0)
        return dirfd == AT_FDCWD ? BP_FALLBACK : -EBADF;
    host[n] = 0;
    if (bp_removed_dir(link, host, n))
        return BP_FALLBACK;
    if (dirfd != AT_FDCWD) {
        struct stat st;
        if (stat(link, &st) < 0)
            return -EBADF;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
    }
    if (host[0] != '/' || bp_guest_of_host(s, host, guest, sizeof guest) < 0)
        return BP_FALLBACK;
    *curlen = strcmp(guest, "/") ? strlen(guest) : 0;
    memcpy(cur, guest, *curlen);
    cur[*curlen] = 0;
    return 0;
}

/* The result: `name` in the walk's directory (w->fd handed over). */
static int result(struct walk *w, const char *name, size_t n, int must_dir,
                  struct bp_resolved *out)
{
    size_t consumed;
    int fd = walk_fd(w);
    if (fd < 0)
        return fd;
    if (n >= sizeof out->name || w->len + 1 + n >= sizeof out->guest)
        return -ENAMETOOLONG;
    out->mount = mount_of(w->s, w->cur, w->len, &consumed);
    out->dirfd = fd;
    out->owned = w->owned;
    w->fd = -1;
    w->owned = 0;
    memcpy(out->name, name, n);
    out->name[n] = 0;
    out->must_dir = must_dir;
    memcpy(out->guest, w->cur, w->len);
    out->guest[w->len] = '/';
    memcpy(out->guest + w->len + 1, name, n);
    out->guest[w->len + 1 + n] = 0;
    return 0;
}

/* The path names the walk's own position: a mount root (its descriptor,
 * name ""), a directory reached through "." or ".." (itself, name "."), or
 * else the last name in its directory. */
static int at_cur(struct walk *w, int last_is_dot, int must_dir, struct bp_resolved *out)
{
    size_t consumed = 0;
    const struct bp_mount *m = mount_of(w->s, w->cur, w->len, &consumed);
    if (python_walks(m))
        return BP_FALLBACK;
    if (last_is_dot) {
        int fd = walk_fd(w);
        if (fd < 0)
            return fd;
        out->mount = m;
        out->dirfd = fd;
        out->owned = w->owned;
        w->fd = -1;
        w->owned = 0;
        strcpy(out->name, ".");
        out->must_dir = 0;
        memcpy(out->guest, w->len ? w->cur : "/", w->len ? w->len : 1);
        out->guest[w->len ? w->len : 1] = 0;
        return 0;
    }
    if (consumed == w->len) {
        out->mount = m;
        out->dirfd = m->root_fd;
        out->owned = 0;
        out->name[0] = 0;
        out->must_dir = must_dir;
        memcpy(out->guest, w->len ? w->cur : "/", w->len ? w->len : 1);
        out->guest[w->len ? w->len : 1] = 0;
        return 0;
    }
    char name[256];
    size_t e = w->len;
    while (e && w->cur[e - 1] != '/')
        e--;
    size_t n = w->len - e;
    if (n >= sizeof name)
        return -ENAMETOOLONG;
    memcpy(name, w->cur + e, n);
    w->len = e ? e - 1 : 0;
    w->cur[w->len] = 0;
    drop(w);
    return result(w, name, n, must_dir, out);
}

void bp_resolved_close(struct bp_resolved *r)
{
    if (r->owned && r->dirfd >= 0)
        close(r->dirfd);
    r->dirfd = -1;
    r->owned = 0;
}

/* A sticky world-writable directory, where fs.protected_symlinks decides
 * who may follow a symlink by its owner: with real credentials Python
 * checks that (with emulated ones each caller is taken for a symlink's
 * owner, whom it never refuses). */
static int sticky_public(int dirfd)
{
    struct stat st;
    return fstat(dirfd, &st) < 0 || (st.st_mode & (S_ISVTX | S_IWOTH)) == (S_ISVTX | S_IWOTH);
}

int bp_resolve(const struct bp_state *s, const struct bp_thread *t, int dirfd,
               const char *path, int follow, struct bp_resolved *out)
{
    char pend[2 * BP_PATH_MAX], target[BP_PATH_MAX];
    size_t plen = strlen(path);
    int links = 0, rc, trailing_slash, last_is_dot;
    struct walk w = {.s = s, .len = 0, .fd = -1, .owned = 0};
    const char *p;

    out->dirfd = -1;
    out->owned = 0;
    out->have_stat = 0;
    if (!plen)
        return -ENOENT;
    if (plen >= BP_PATH_MAX)
        return -ENAMETOOLONG;
    if (t->flags & BP_THREAD_CHROOT)
        return BP_FALLBACK;
    if (path[0] != '/' && (rc = base_dir(s, t, dirfd, w.cur, &w.len)) != 0)
        return rc;
    w.cur[w.len] = 0;
    trailing_slash = path[plen - 1] == '/';
    {
        size_t e = plen;
        while (e > 1 && path[e - 1] == '/')
            e--;
        last_is_dot = (e == 1 && path[0] == '.') || (e == 2 && !memcmp(path, "..", 2)) ||
                      (e >= 2 && !memcmp(path + e - 2, "/.", 2)) ||
                      (e >= 3 && !memcmp(path + e - 3, "/..", 3));
    }
    memcpy(pend, path, plen + 1);
    p = pend;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *q = p;
        while (*q && *q != '/')
            q++;
        size_t n = q - p;
        const char *comp = p;
        p = q;
        if (is_dot(comp, n))
            continue;
        if (is_dotdot(comp, n)) {
            while (w.len && w.cur[w.len - 1] != '/')
                w.len--;
            if (w.len)
                w.len--;
            w.cur[w.len] = 0;
            drop(&w);
            continue;
        }
        int last = !has_more(p) && !last_is_dot;
        int examine = !last || follow || trailing_slash;
        if (w.len + 1 + n >= sizeof w.cur) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        /* cur/comp: a mount point, /proc, or a name in cur's directory */
        size_t consumed = 0, oldlen = w.len;
        w.cur[w.len] = '/';
        memcpy(w.cur + w.len + 1, comp, n);
        w.cur[w.len + 1 + n] = 0;
        const struct bp_mount *m = mount_of(s, w.cur, w.len + 1 + n, &consumed);
        /* through /dev/pts to a name in it: one of its ptys, or else Python's */
        int into_view = m && m->kind == BP_MOUNT_PTS && consumed == w.len + 1 + n && !last &&
                        m->root_fd >= 0;
        if (python_walks(m) && !into_view) {
            rc = BP_FALLBACK;
            goto fail;
        }
        if (consumed == w.len + 1 + n) {          /* a mount point: its own root */
            if (!last && !m->root_is_dir) {
                rc = -ENOTDIR;
                goto fail;
            }
            w.len += 1 + n;
            set_fd(&w, m->root_fd, 0);
            continue;
        }
        w.cur[oldlen] = 0;
        if (!examine) {
            rc = result(&w, comp, n, 0, out);
            if (rc)
                goto fail;
            return 0;
        }
        int parent = walk_fd(&w);
        if (parent < 0) {
            rc = parent;
            goto fail;
        }
        char name[256];
        if (n >= sizeof name) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        memcpy(name, comp, n);
        name[n] = 0;
        ssize_t tl;
        if (!last) {
            int fd = openat(parent, name, STEP | O_DIRECTORY);
            if (fd >= 0) {
                w.cur[w.len] = '/';
                w.len += 1 + n;
                w.cur[w.len] = 0;
                set_fd(&w, fd, 1);
                continue;
            }
            if (errno != ENOTDIR) {
                rc = -errno;
                goto fail;
            }
            tl = readlinkat(parent, name, target, sizeof target - 1);
            if (tl < 0) {
                rc = errno == EINVAL ? -ENOTDIR : -errno;
                goto fail;
            }
        } else {
            /* the last name: its stat serves stat(2) unless it is a symlink */
            struct stat st;
            if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT) {
                    rc = -errno;
                    goto fail;
                }
            } else if (S_ISLNK(st.st_mode)) {
                tl = readlinkat(parent, name, target, sizeof target - 1);
                if (tl < 0) {
                    rc = -errno;
                    goto fail;
                }
                goto symlink;
            } else {
                out->st = st;
                out->have_stat = 1;
            }
            rc = result(&w, comp, n, trailing_slash, out);
            if (rc)
                goto fail;
            return 0;
        }
symlink:
        if (++links > MAXSYMLINKS) {
            rc = -ELOOP;
            goto fail;
        }
        if (!s->fake_ids && sticky_public(parent)) {
            rc = BP_FALLBACK;    /* fs.protected_symlinks: Python's (brandpy/runtime/dac.py) */
            goto fail;
        }
        target[tl] = 0;
        if (target[0] == '/') {
            w.len = 0;
            w.cur[0] = 0;
            drop(&w);
        }
        size_t rest = strlen(p);
        if ((size_t)tl + 1 + rest + 1 > sizeof pend) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        /* pending becomes target "/" rest (rest may already live in pend) */
        memmove(pend + tl + 1, p, rest + 1);
        memcpy(pend, target, tl);
        pend[tl] = '/';
        p = pend;
    }
    rc = at_cur(&w, last_is_dot, trailing_slash, out);
    if (rc)
        goto fail;
    drop(&w);
    return 0;
fail:
    out->have_stat = 0;
    drop(&w);
    return rc;
}
