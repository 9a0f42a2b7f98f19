/* The sandbox state the C fast path reads: the mount table, the names of
 * the container's /dev/pts view and the container's threads (host TID -> container TID, chroot, credentials).
 * Python owns the truth (brandpy/runtime/sandbox.py) and mirrors
 * every change here through the bp_state_* calls; the C handlers fall back
 * to Python for whatever this table cannot answer. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "brandpy.h"
#include "internal.h"

struct bp_state *bp_state_new(void)
{
    struct bp_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cap = 1024;
    s->threads = calloc(s->cap, sizeof *s->threads);
    if (!s->threads) {
        free(s);
        return NULL;
    }
    return s;
}

void bp_state_free(struct bp_state *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nptys; i++)
        free(s->ptys[i]);
    free(s->ptys);
    for (size_t i = 0; i < s->cap; i++)
        if (s->threads[i].tid > 0)
            free(s->threads[i].exe);
    free(s->threads);
    free(s);
}

int bp_state_add_mount(struct bp_state *s, const char *guest, const char *host, int readonly,
                       int kind, int root_fd, int root_is_dir)
{
    struct bp_mount *m;
    if (s->nmounts >= BP_MAX_MOUNTS || strlen(guest) >= sizeof m->guest ||
        strlen(host) >= sizeof m->host)
        return -ENOSPC;
    m = &s->mounts[s->nmounts++];
    strcpy(m->guest, guest);
    strcpy(m->host, host);
    m->guest_len = strlen(guest);
    m->host_len = strlen(host);
    m->readonly = readonly;
    m->kind = kind;
    m->root_fd = root_fd;
    m->root_is_dir = root_is_dir;
    return 0;
}

void bp_state_clear_mounts(struct bp_state *s)
{
    s->nmounts = 0;
}

int bp_state_set_pty(struct bp_state *s, int number, int fd)
{
    int i = 0;
    while (i < s->nptys && s->ptys[i]->number != number)
        i++;
    if (fd < 0) {
        if (i < s->nptys) {
            free(s->ptys[i]);
            s->ptys[i] = s->ptys[--s->nptys];
        }
        return 0;
    }
    if (i == s->nptys) {
        if (s->nptys == s->ptys_cap) {
            int cap = s->ptys_cap ? 2 * s->ptys_cap : 16;
            struct bp_pty **grown = realloc(s->ptys, cap * sizeof *grown);
            if (!grown)
                return -ENOMEM;
            s->ptys = grown;
            s->ptys_cap = cap;
        }
        struct bp_pty *p = calloc(1, sizeof *p);
        if (!p)
            return -ENOMEM;
        p->number = number;
        struct bp_mount *m = &p->mount;
        m->guest_len = snprintf(m->guest, sizeof m->guest, "/dev/pts/%d", number);
        m->host_len = snprintf(m->host, sizeof m->host, "/dev/pts/%d", number);
        m->kind = BP_MOUNT_DEVICE;
        s->ptys[s->nptys++] = p;
    }
    s->ptys[i]->mount.root_fd = fd;
    return 0;
}

const struct bp_mount *bp_pty_mount(const struct bp_state *s, const char *name, size_t n)
{
    int number = 0;
    if (!n || n > 9 || (name[0] == '0' && n > 1))
        return NULL;
    for (size_t k = 0; k < n; k++) {
        if (name[k] < '0' || name[k] > '9')
            return NULL;
        number = number * 10 + (name[k] - '0');
    }
    for (int i = 0; i < s->nptys; i++) {
        if (s->ptys[i]->number != number)
            continue;
        struct stat st;     /* a dentry the kernel killed: the pty is freed */
        if (fstat(s->ptys[i]->mount.root_fd, &st) < 0 || !st.st_nlink)
            return NULL;
        return &s->ptys[i]->mount;
    }
    return NULL;
}

/* Open addressing on the host TID; deleted slots are tombstones (tid -1). */
static struct bp_thread *slot(struct bp_state *s, int tid, int insert)
{
    size_t mask = s->cap - 1, i = (size_t)tid * 2654435761u & mask;
    struct bp_thread *tomb = NULL;
    for (size_t n = 0; n < s->cap; n++, i = (i + 1) & mask) {
        struct bp_thread *t = &s->threads[i];
        if (t->tid == tid)
            return t;
        if (t->tid == -1 && !tomb)
            tomb = t;
        if (t->tid == 0)
            return insert ? (tomb ? tomb : t) : NULL;
    }
    return insert ? tomb : NULL;
}

static int grow(struct bp_state *s)
{
    struct bp_thread *old = s->threads;
    size_t oldcap = s->cap;
    s->threads = calloc(oldcap * 2, sizeof *s->threads);
    if (!s->threads) {
        s->threads = old;
        return -ENOMEM;
    }
    s->cap = oldcap * 2;
    s->used = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].tid > 0) {
            *slot(s, old[i].tid, 1) = old[i];
            s->used++;
        }
    free(old);
    return 0;
}

struct bp_thread *bp_state_thread(struct bp_state *s, int tid)
{
    return tid > 0 ? slot(s, tid, 0) : NULL;
}

int bp_state_set_thread(struct bp_state *s, int tid, int tgid, int guest_tid, int guest_tgid,
                        int flags)
{
    struct bp_thread *t;
    if ((s->used + 1) * 2 > s->cap && grow(s) < 0)
        return -ENOMEM;
    t = slot(s, tid, 1);
    if (!t)
        return -ENOMEM;
    if (t->tid != tid)
        s->used++;
    t->tid = tid;
    t->tgid = tgid;
    t->guest_tid = guest_tid;
    t->guest_tgid = guest_tgid;
    t->flags = flags;
    return 0;
}

int bp_state_set_program(struct bp_state *s, int tid, const char *exe, const char *comm,
                         const char *kernel_comm)
{
    struct bp_thread *t = bp_state_thread(s, tid);
    char *copy = NULL;
    if (!t)
        return -ENOENT;
    if (exe && !(copy = strdup(exe)))
        return -ENOMEM;
    free(t->exe);
    t->exe = copy;
    snprintf(t->comm, sizeof t->comm, "%s", comm);
    snprintf(t->kernel_comm, sizeof t->kernel_comm, "%s", kernel_comm);
    return 0;
}

void bp_state_set_dumpable(struct bp_state *s, int tgid, int dumpable)
{
    for (size_t i = 0; i < s->cap; i++) {
        struct bp_thread *t = &s->threads[i];
        if (t->tid > 0 && t->tgid == tgid)
            t->flags = dumpable ? t->flags & ~BP_THREAD_UNDUMPABLE
                                : t->flags | BP_THREAD_UNDUMPABLE;
    }
}

void bp_state_del_thread(struct bp_state *s, int tid)
{
    struct bp_thread *t = bp_state_thread(s, tid);
    if (t) {
        free(t->exe);
        memset(t, 0, sizeof *t);
        t->tid = -1;
        s->used--;
    }
}

const struct bp_mount *bp_mount_of_guest(const struct bp_state *s, const char *guest,
                                         size_t len, size_t *consumed)
{
    /* the deepest mount point; of two at the same guest path the later
     * added, as mounts.MountTable keeps (an OCI bundle's read-only root) */
    const struct bp_mount *best = NULL;
    for (int i = 0; i < s->nmounts; i++) {
        const struct bp_mount *m = &s->mounts[i];
        size_t ml = m->guest_len;
        if (ml == 1 && m->guest[0] == '/') {
            if (!best || !*consumed) {
                best = m;
                *consumed = 0;
            }
            continue;
        }
        if (len >= ml && !memcmp(guest, m->guest, ml) && (len == ml || guest[ml] == '/') &&
            (!best || ml >= *consumed)) {
            best = m;
            *consumed = ml;
        }
    }
    return best;
}

int bp_guest_of_host(const struct bp_state *s, const char *host, char *out, size_t outlen)
{
    const struct bp_mount *best = NULL;
    size_t hl = strlen(host), best_len = 0;
    for (int i = 0; i < s->nmounts; i++) {
        const struct bp_mount *m = &s->mounts[i];
        size_t ml = m->host_len;
        while (ml > 1 && m->host[ml - 1] == '/')
            ml--;
        if (hl >= ml && !memcmp(host, m->host, ml) && (hl == ml || host[ml] == '/' ||
                                                       ml == 1) &&
            (!best || ml > best_len)) {
            best = m;
            best_len = ml;
        }
    }
    if (!best || best->kind == BP_MOUNT_PROC)
        return -1;
    const char *rest = host + (best_len == 1 ? 0 : best_len);
    int n;
    if (best->guest_len == 1)
        n = snprintf(out, outlen, "%s", *rest ? rest : "/");
    else
        n = snprintf(out, outlen, "%s%s", best->guest, rest);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

void bp_state_set_identity(struct bp_state *s, int fake_ids, unsigned int host_uid,
                           unsigned int host_gid)
{
    s->fake_ids = fake_ids;
    s->host_uid = host_uid;
    s->host_gid = host_gid;
}

void bp_state_set_uts(struct bp_state *s, const char *hostname, const char *domainname,
                      const char *release)
{
    snprintf(s->hostname, sizeof s->hostname, "%s", hostname);
    snprintf(s->domainname, sizeof s->domainname, "%s", domainname);
    snprintf(s->release, sizeof s->release, "%s", release);
}

void bp_state_python_only(struct bp_state *s, int nr, int on)
{
    if (nr >= 0 && nr < 512)
        s->python_only[nr] = !!on;
}

unsigned long long bp_state_calls(struct bp_state *s, int nr)
{
    return nr >= 0 && nr < 512 ? s->calls[nr] : 0;
}

unsigned long long bp_state_fallbacks(struct bp_state *s, int nr)
{
    return nr >= 0 && nr < 512 ? s->fallbacks[nr] : 0;
}
