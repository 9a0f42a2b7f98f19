/* Internal declarations of the C fast path (not exported to cffi). */
#ifndef BRANDPY_INTERNAL_H
#define BRANDPY_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#define BP_PATH_MAX 4096
#define BP_COMM_LEN 15          /* TASK_COMM_LEN - 1: a thread name's longest */
#define BP_MAX_MOUNTS 64
#define BP_UTS_LEN 64           /* __NEW_UTS_LEN: a utsname field's longest */

struct bp_mount {
    char guest[512];
    char host[1024];
    size_t guest_len, host_len;
    int readonly;
    int kind;                   /* BP_MOUNT_* */
    int root_fd;                /* O_PATH descriptor of host (Python's: see mounts.py) */
    int root_is_dir;
};

/* One of the container's ptys (brandpy/runtime/ptys.py): its name in the
 * /dev/pts view, as a device mount whose root is its devpts dentry. */
struct bp_pty {
    int number;
    struct bp_mount mount;
};

struct bp_thread {
    int tid;                    /* host TID; 0 empty, -1 deleted */
    int tgid;                   /* host TGID */
    int guest_tid, guest_tgid;
    int flags;                  /* BP_THREAD_* */
    char *exe;                  /* its program's guest path (malloc'd), or NULL */
    char comm[BP_COMM_LEN + 1];         /* the container's name for it, or "" */
    char kernel_comm[BP_COMM_LEN + 1];  /* the kernel's at exec */
};

struct bp_state {
    struct bp_mount mounts[BP_MAX_MOUNTS];
    int nmounts;
    struct bp_pty **ptys;       /* the /dev/pts view's names, any number of them */
    int nptys, ptys_cap;
    struct bp_thread *threads;
    size_t cap, used;
    int fake_ids;               /* identity emulated: ownership from xattrs */
    /* the container's UTS view (sandbox.uts, --kernel-release) */
    char hostname[BP_UTS_LEN + 1], domainname[BP_UTS_LEN + 1], release[BP_UTS_LEN + 1];
    unsigned int host_uid, host_gid;
    unsigned long long calls[512];      /* notifications answered in C, per nr */
    unsigned long long fallbacks[512];  /* handed to Python */
    unsigned char python_only[512];     /* C handlers leave these to Python */
};

struct bp_thread *bp_state_thread(struct bp_state *s, int tid);
/* PR_SET_DUMPABLE recorded for every thread of process tgid. */
void bp_state_set_dumpable(struct bp_state *s, int tgid, int dumpable);
const struct bp_mount *bp_mount_of_guest(const struct bp_state *s, const char *guest,
                                         size_t len, size_t *consumed);
int bp_guest_of_host(const struct bp_state *s, const char *host, char *out, size_t outlen);
/* The mount of a name in the /dev/pts view: a live pty of the container's,
 * else NULL (Python answers: it also forgets a pty the kernel freed). */
const struct bp_mount *bp_pty_mount(const struct bp_state *s, const char *name, size_t n);

/* Resolution result (pathres.Resolved): `name` in the directory `dirfd`
 * (an O_PATH descriptor), or with name "" the mount root `dirfd` itself. */
struct bp_resolved {
    char guest[BP_PATH_MAX];
    const struct bp_mount *mount;
    int dirfd, owned;           /* close with bp_resolved_close */
    char name[256];             /* no "/"; "." when the path ended in "." or ".." */
    int must_dir;               /* the path ended in "/" */
    int have_stat;              /* st is name's lstat, not a symlink */
    struct stat st;
};

/* 0, -errno, or BP_FALLBACK: only the Python resolver can answer. */
int bp_resolve(const struct bp_state *s, const struct bp_thread *t, int dirfd,
               const char *path, int follow, struct bp_resolved *out);
void bp_resolved_close(struct bp_resolved *r);
/* Whether host, the n bytes read from /proc link `link`, names a
 * directory removed since ("PATH (deleted)", no link left): walks from it
 * are Python's (pathres.py Resolver._base). */
int bp_removed_dir(const char *link, const char *host, ssize_t n);

/* Test-only: sleeps BRANDPY_TEST_RACE_PAUSE_US between a resolution and its
 * use (racepause.c); nothing when the variable is unset. */
void bp_race_pause(void);

/* bp_spawn's child (native/spawn.c), and the same started by the
 * container's spawner (native/spawner.c) instead of by a fork of ours.
 * self: the child's pid as the supervisor sees it (in a PID namespace of
 * the container's, getpid() answers another). bp_spawn_remote: the
 * child's pid, or -errno. */
#define BP_SPAWN_MAX_FDS 64
struct bp_spawn_args;
/* The spawner's life (spawner.c): it never returns. */
struct bp_ns_mount;
void bp_spawner_run(int ctl, int ruleset, const struct bp_ns_mount *mounts, int n, int flags,
                    char *const *helper, pid_t join_pid, pid_t pids_of) __attribute__((noreturn));
void bp_spawn_child(const struct bp_spawn_args *a, int sync_fd, int listener_sock, int self)
    __attribute__((noreturn));
int bp_spawn_remote(const struct bp_spawn_args *a, int sync_fd, int listener_sock);

#endif
