/* brandpy native fast path: declarations shared by the C sources and the
 * cffi build (native/build.py reads the CDEF section below). */
#ifndef BRANDPY_H
#define BRANDPY_H

#include <stdint.h>

/* CDEF-BEGIN */
#define BP_SPAWN_SETSID 1
#define BP_SPAWN_CTTY 2
#define BP_SPAWN_SETPGID 4

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
    /* Real credentials (the supervisor is root): applied before the filter. */
    int set_ids;
    unsigned int uid, gid;
    const unsigned int *groups;
    int ngroups;
    int set_caps;              /* keep only these capabilities (bounding set too) */
    unsigned long long caps;
};

/* Fork, PTRACE_SEIZE, filter, execve. Returns the child's pid or -errno. */
int bp_spawn(const struct bp_spawn_args *a);
/* CDEF-END */

#endif
