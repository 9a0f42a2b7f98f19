/* A devpts instance of the container's own for a supervisor without
 * privileges (brandpy/runtime/ptys.py; as root Python makes it itself):
 * fsopen("devpts") needs CAP_SYS_ADMIN over the user namespace that owns
 * the caller's mount namespace, which a child has in a user and mount
 * namespace of its own. The child shares our memory and file table
 * (CLONE_VM, CLONE_FILES, CLONE_VFORK: we wait, as posix_spawn's parent
 * does), so the detached mount it makes (fsmount) is an fd of ours; a
 * mount fd opens files from any mount namespace. It exits with no signal
 * (exit_signal 0), which the supervisor's SIGCHLD loop never sees. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "brandpy.h"

#define FSOPEN_CLOEXEC_ 1
#define FSMOUNT_CLOEXEC_ 1
#define FSCONFIG_SET_STRING_ 1
#define FSCONFIG_CMD_CREATE_ 6
#define MOUNT_ATTR_NOSUID_ 0x2
#define MOUNT_ATTR_NOEXEC_ 0x8

struct job {
    uid_t uid;
    int fd;             /* the mount's, or -1 */
    int err;
};

static int make(void *arg)
{
    struct job *j = arg;
    char map[32];
    int len = snprintf(map, sizeof map, "0 %u 1", (unsigned)j->uid);
    int m = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
    if (m < 0 || write(m, map, (size_t)len) != len) {
        j->err = errno;
        if (m >= 0)
            close(m);   /* our file table is the caller's (CLONE_FILES) */
        return 1;
    }
    close(m);
    /* Docker's options but gid=5, a group our namespace does not map */
    int fs = (int)syscall(SYS_fsopen, "devpts", FSOPEN_CLOEXEC_);
    if (fs < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "ptmxmode", "0666", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING_, "mode", "0620", 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE_, NULL, NULL, 0) < 0 ||
        (j->fd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC_,
                              MOUNT_ATTR_NOSUID_ | MOUNT_ATTR_NOEXEC_)) < 0)
        j->err = errno;
    if (fs >= 0)
        close(fs);
    return 0;
}

int bp_devpts_in_userns(void)
{
    enum { STACK = 64 * 1024 };
    struct job j = {.uid = geteuid(), .fd = -1, .err = 0};
    char *stack = malloc(STACK);
    if (!stack)
        return -ENOMEM;
    pid_t pid = clone(make, stack + STACK,
                      CLONE_VM | CLONE_VFORK | CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNS, &j);
    int rc = pid < 0 ? -errno : 0, status;
    while (pid > 0 && waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
        ;
    free(stack);
    if (rc < 0)
        return rc;
    return j.fd >= 0 ? j.fd : -(j.err ? j.err : ECHILD);
}
