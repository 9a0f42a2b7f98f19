/* brandpy native fast path: declarations shared by the C sources and the
 * cffi build (native/build.py reads the CDEF section below). */
#ifndef BRANDPY_H
#define BRANDPY_H

#include <stdint.h>

/* CDEF-BEGIN */
#define BP_SPAWN_SETSID 1
#define BP_SPAWN_CTTY 2
#define BP_SPAWN_SETPGID 4

struct bp_rlimit {
    int resource;
    unsigned long long soft, hard;
};

struct bp_spawn_args {
    const char *path;          /* guest path of the entrypoint */
    char *const *argv;
    char *const *envp;
    const char *cwd;           /* host path of the working directory */
    const int *fds;            /* become fds 0..nfds-1 in the child */
    int nfds;
    const void *filter;        /* struct sock_filter[filter_len] */
    unsigned short filter_len;
    unsigned int seccomp_flags;
    unsigned long ptrace_options;
    int flags;                 /* BP_SPAWN_* */
    int hold_fd;               /* >= 0: wait for a byte on it before exec (OCI "created") */
    long personality;          /* >= 0: personality(2) flags for the program (replay: no ASLR) */
    const struct bp_rlimit *rlimits;   /* docker --ulimit: set before credentials change */
    int nrlimits;
    /* Real credentials (the supervisor is root): applied before the filter. */
    int set_ids;
    unsigned int uid, gid;
    const unsigned int *groups;
    int ngroups;
    int set_caps;              /* keep only these capabilities (bounding set too) */
    unsigned long long caps;
    int spawner;               /* >= 0: the control socket of the container's spawner,
                                * which forks the child, in its Landlock domain */
};

/* Fork, PTRACE_SEIZE, filter, execve. Returns the child's pid or -errno.
 * With SECCOMP_FILTER_FLAG_NEW_LISTENER in seccomp_flags the child names
 * its notification fd before exec over a socket stored in *listener
 * (bp_recv_listener takes it from there, with pidfd_getfd). */
int bp_spawn(const struct bp_spawn_args *a, int *listener);
int bp_recv_listener(int sock);

/* Landlock (native/landlock.c): the ABI version the kernel has, or -errno
 * (-ENOSYS, -EOPNOTSUPP when it is built in but disabled). */
int bp_landlock_abi(void);
/* A new devpts instance mounted nowhere, made by a child in a user and
 * mount namespace of its own (devpts.c): an O_PATH fd of its root, or
 * -errno where the host forbids user namespaces. */
int bp_devpts_in_userns(void);
struct bp_landlock_rule {
    const char *path;          /* opened O_PATH; NULL: use fd */
    int fd;
    unsigned long long access; /* LANDLOCK_ACCESS_FS_* allowed beneath it */
};
/* A ruleset fd handling handled_fs and scoped, with these rules (rights
 * beyond a non-directory's are dropped), or -errno with *failed the index
 * of the rule that failed (-1: creating the ruleset did). */
int bp_landlock_ruleset(const struct bp_landlock_rule *rules, int n,
                        unsigned long long handled_fs, unsigned long long scoped,
                        int *failed);
/* bp_spawner_start's flags. BP_SPAWNER_NAMESPACES (root, or unprivileged
 * with BP_SPAWNER_USERNS): the spawner first makes the container's mount,
 * IPC and UTS namespaces, whose root holds only these mounts (pivot). */
#define BP_SPAWNER_NAMESPACES 1
/* BP_SPAWNER_NETWORK (unprivileged): the spawner first makes a user
 * namespace (mapping only our uid and gid) and a network namespace of its
 * own, with loopback up; `helper` (NULL-terminated argv, or NULL) is run
 * outside them with the spawner's PID appended, must print a line on its
 * stdout once it has connected the namespace (pasta's --pid /dev/stdout)
 * and is killed with the spawner. -ENONET: the helper failed. */
#define BP_SPAWNER_NETWORK 2
/* BP_SPAWNER_JOIN (unprivileged, with BP_SPAWNER_NETWORK): join the user
 * and network namespaces of process join_pid instead (container:NAME). */
#define BP_SPAWNER_JOIN 4
/* BP_SPAWNER_PIDNS (with BP_SPAWNER_NAMESPACES): the processes it
 * forks are in a PID namespace of their own, the first one its PID 1; or,
 * with pids_of > 0, in the PID namespace of process pids_of
 * (--pid container:NAME). */
#define BP_SPAWNER_PIDNS 8
/* BP_SPAWNER_USERNS (unprivileged, with BP_SPAWNER_NAMESPACES): the
 * spawner first makes a user namespace mapping only our uid and gid (or,
 * with pids_of > 0, joins that process's), which owns the namespaces it
 * then makes, as root's; with BP_SPAWNER_NETWORK the network's is that one. */
#define BP_SPAWNER_USERNS 16
/* Whether this process may make such a user namespace and, in it, the
 * mount, PID, IPC and UTS namespaces with /proc bound as a container's
 * (tried in a child): 0 or -errno (EPERM/ENOSPC/EACCES where the host
 * forbids them). */
int bp_userns_probe(void);
/* A file of at most size bytes (else -EFBIG) as a process in the user and
 * IPC namespaces of process pid reads it (the files of /proc/sysvipc show
 * the reader's), read by a forked child that joins them (unprivileged: the
 * IPC namespace's owner, the container's user namespace, must be joined
 * first); its length or -errno. */
int bp_read_in_ipc_ns(int pid, const char *path, char *buf, int size);
#define BP_NS_RW 0              /* bound writable */
#define BP_NS_RO 1              /* bound read-only */
#define BP_NS_MASK 2            /* hidden (/dev/null over a file, an empty tmpfs on a dir) */
#define BP_NS_KEEP 3            /* kept in the new root as the host has it (read-only) */
struct bp_ns_mount {
    const char *path;
    int how;
};
/* Start a container's spawner restricted with this ruleset (see
 * native/spawner.c), with the BP_SPAWNER_* flags above: its pid, and in
 * *ctl the socket to pass as bp_spawn_args.spawner (closing it ends the
 * spawner); or -errno. */
int bp_spawner_start(int ruleset, const struct bp_ns_mount *mounts, int n, int flags,
                     char *const *helper, int join_pid, int pids_of, int *ctl);

#define BP_FALLBACK -100000    /* a C handler leaves the call to Python (no errno is this low) */
#define BP_MAX_LISTENERS 64

/* mount kinds (brandpy/runtime/mounts.py Mount.kind) */
#define BP_MOUNT_ROOTFS 0
#define BP_MOUNT_BIND 1
#define BP_MOUNT_PROC 2
#define BP_MOUNT_OTHER 3
#define BP_MOUNT_DEVICE 4       /* a device given to the container (devices.GIVEN) */
#define BP_MOUNT_PTS 5          /* its /dev/pts: names resolved by Python's view (ptys.py) */

/* thread flags */
#define BP_THREAD_ROOT 1        /* root with the filesystem capabilities (acting.FS_CAPS) */
#define BP_THREAD_CHROOT 2      /* chrooted inside the container: Python resolves */
#define BP_THREAD_TOPLEVEL 4    /* its process's parent is outside the container */
#define BP_THREAD_ACCESS_ROOT 8 /* access() with its real IDs is root's with those capabilities too */
#define BP_THREAD_UNDUMPABLE 16 /* its process's recorded PR_SET_DUMPABLE is 0 (process.py prctl) */
#define BP_THREAD_OWN_UTS 32    /* in a UTS namespace it unshared (namespaces.py): Python's */

struct bp_state;
struct bp_state *bp_state_new(void);
void bp_state_free(struct bp_state *s);
int bp_state_add_mount(struct bp_state *s, const char *guest, const char *host, int readonly,
                       int kind, int root_fd, int root_is_dir);
void bp_state_clear_mounts(struct bp_state *s);
/* The /dev/pts view (brandpy/runtime/ptys.py): pty `number` is the
 * container's, `fd` (Python's) an O_PATH descriptor of its devpts dentry;
 * fd -1: no longer. */
int bp_state_set_pty(struct bp_state *s, int number, int fd);
int bp_state_set_thread(struct bp_state *s, int tid, int tgid, int guest_tid, int guest_tgid,
                        int flags);
void bp_state_del_thread(struct bp_state *s, int tid);
/* The thread's program: its guest path (its process's /proc/PID/exe as
 * the container sees it), or NULL when unknown; the name the container
 * gives it and the name the kernel gave it at exec (process.ExecImage
 * comm and kernel_comm, "" when unknown; at most 15 bytes, longer ones
 * are cut). */
int bp_state_set_program(struct bp_state *s, int tid, const char *exe, const char *comm,
                         const char *kernel_comm);
void bp_state_set_identity(struct bp_state *s, int fake_ids, unsigned int host_uid,
                           unsigned int host_gid);
void bp_state_python_only(struct bp_state *s, int nr, int on);
/* The container's hostname, domain name and kernel release, as uname(2)
 * reports them (handlers/uts.py; longer than 64 bytes: cut). */
void bp_state_set_uts(struct bp_state *s, const char *hostname, const char *domainname,
                      const char *release);
/* Whether the native engine answers syscall nr in C (for the callers and
 * arguments it can; the rest fall back to Python). */
int bp_notify_answers(int nr);
unsigned long long bp_state_calls(struct bp_state *s, int nr);
unsigned long long bp_state_fallbacks(struct bp_state *s, int nr);

struct bp_notif {               /* a notification handed to Python */
    unsigned long long id;
    int pid;
    int nr;
    unsigned long long args[6];
    int listener;
};

struct bp_loop {
    struct bp_state *state;
    int sigfd, wakefd;
    int wake_w;                      /* its write end: bp_loop_wake, and Python's signal wake-ups */
    int listeners[BP_MAX_LISTENERS];
    int nlisteners;
    int sockets[BP_MAX_LISTENERS];   /* listeners on their way (see bp_spawn) */
    int nsockets;
    int walls, home, cwd;            /* bp_loop_set_walls: the container's and our mount
                                        namespaces, our working directory; -1: none */
};
struct bp_loop *bp_loop_new(struct bp_state *state);
void bp_loop_free(struct bp_loop *L);
int bp_loop_add_listener(struct bp_loop *L, int fd);
int bp_loop_add_listener_socket(struct bp_loop *L, int sock);
int bp_loop_wake(struct bp_loop *L);
int bp_loop_set_walls(struct bp_loop *L, int mount_ns, int home_ns);
int bp_loop_run(struct bp_loop *L);

/* Python callbacks (cffi extern "Python") */
int bp_py_wait(int tid, int status);
void bp_py_notify(struct bp_notif *n);
void bp_py_wake(void);
/* C answered PR_SET_DUMPABLE for thread tid: Python's record follows. */
void bp_py_dumpable(int tid, int dumpable);

/* CDEF-END */

#endif
