/* Guest path resolution in C: the same walk as brandpy/runtime/pathres.py
 * (the reference), component by component inside the container, for the
 * fast path. Anything involving /proc (magic links, PID translation), a
 * chroot inside the container or a directory outside every mount is left to
 * the Python resolver (BP_FALLBACK). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

#define MAXSYMLINKS 40

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

/* Host path of a canonical guest path ("" is the root). */
static int host_of(const struct bp_state *s, const char *guest, size_t len, char *host,
                   size_t hostlen, const struct bp_mount **mount)
{
    size_t consumed = 0;
    const struct bp_mount *m = bp_mount_of_guest(s, len ? guest : "/", len ? len : 1, &consumed);
    if (!m)
        return -ENOENT;
    if (m->kind == BP_MOUNT_PROC)
        return BP_FALLBACK;
    size_t hl = m->host_len;
    while (hl > 1 && m->host[hl - 1] == '/')
        hl--;
    const char *rest = guest + consumed;
    size_t rl = len - consumed;
    if (hl == 1 && rl)       /* a rootfs of "/" */
        hl = 0;
    if (hl + rl + 1 > hostlen)
        return -ENAMETOOLONG;
    memcpy(host, m->host, hl);
    memcpy(host + hl, rest, rl);
    host[hl + rl] = 0;
    if (!hl && !rl)
        strcpy(host, "/");
    *mount = m;
    return 0;
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

int bp_resolve(const struct bp_state *s, const struct bp_thread *t, int dirfd,
               const char *path, int follow, struct bp_resolved *out)
{
    char cur[BP_PATH_MAX], pend[2 * BP_PATH_MAX], target[BP_PATH_MAX];
    size_t curlen = 0, plen = strlen(path);
    int links = 0, rc, trailing_slash, last_is_dot;
    const char *p;

    if (!plen)
        return -ENOENT;
    if (plen >= BP_PATH_MAX)
        return -ENAMETOOLONG;
    if (t->flags & BP_THREAD_CHROOT)
        return BP_FALLBACK;
    if (path[0] != '/' && (rc = base_dir(s, t, dirfd, cur, &curlen)) != 0)
        return rc;
    cur[curlen] = 0;
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
    out->have_stat = 0;
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
            while (curlen && cur[curlen - 1] != '/')
                curlen--;
            if (curlen)
                curlen--;
            cur[curlen] = 0;
            continue;
        }
        if (curlen + 1 + n >= sizeof cur)
            return -ENAMETOOLONG;
        cur[curlen++] = '/';
        memcpy(cur + curlen, comp, n);
        curlen += n;
        cur[curlen] = 0;
        int last = !has_more(p);
        if (last && !follow && !trailing_slash)
            break;
        rc = host_of(s, cur, curlen, out->host, sizeof out->host, &out->mount);
        if (rc)
            return rc;
        struct stat st;
        if (lstat(out->host, &st) < 0) {
            if (errno == ENOENT && last)
                break;
            return -errno;
        }
        if (S_ISLNK(st.st_mode)) {
            if (++links > MAXSYMLINKS)
                return -ELOOP;
            ssize_t tl = readlink(out->host, target, sizeof target - 1);
            if (tl < 0)
                return -errno;
            target[tl] = 0;
            /* drop the link's own component */
            while (curlen && cur[curlen - 1] != '/')
                curlen--;
            if (curlen)
                curlen--;
            if (target[0] == '/')
                curlen = 0;
            cur[curlen] = 0;
            size_t rest = strlen(p);
            if ((size_t)tl + 1 + rest + 1 > sizeof pend)
                return -ENAMETOOLONG;
            /* pending becomes target "/" rest (rest may already live in pend) */
            memmove(pend + tl + 1, p, rest + 1);
            memcpy(pend, target, tl);
            pend[tl] = '/';
            p = pend;
            continue;
        }
        if (!last && !S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if (last) {                /* the final file: its stat serves stat(2) */
            out->st = st;
            out->have_stat = 1;
        }
    }
    rc = host_of(s, cur, curlen, out->host, sizeof out->host, &out->mount);
    if (rc)
        return rc;
    if (last_is_dot || (trailing_slash && curlen)) {
        out->have_stat = 0;
        size_t hl = strlen(out->host);
        const char *suffix = last_is_dot ? "/." : "/";
        if (hl + 3 > sizeof out->host)
            return -ENAMETOOLONG;
        strcpy(out->host + hl, suffix);
    }
    if (curlen)
        memcpy(out->guest, cur, curlen + 1);
    else
        strcpy(out->guest, "/");
    return 0;
}
