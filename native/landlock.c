/* Landlock, the kernel's wall under the translation layer: the ruleset a
 * container's processes are restricted to (built in the supervisor from the
 * rules brandpy/runtime/landlock.py computes; the child of bp_spawn only
 * calls landlock_restrict_self on it). The structures are the kernel's
 * uapi <linux/landlock.h>, spelled out here because the build host's
 * headers may predate the ABI the running kernel has. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "brandpy.h"

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#endif

#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#define LANDLOCK_RULE_PATH_BENEATH 1

struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* The rights the kernel accepts on a rule for a file that is not a
 * directory: EXECUTE, WRITE_FILE, READ_FILE, TRUNCATE, IOCTL_DEV. */
#define FILE_RIGHTS ((1ULL << 0) | (1ULL << 1) | (1ULL << 2) | (1ULL << 14) | (1ULL << 15))

int bp_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? -errno : (int)v;
}

static int add_rule(int ruleset, int fd, uint64_t access)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        access &= FILE_RIGHTS;
    if (!access)
        return 0;
    struct path_beneath_attr rule = {.allowed_access = access, .parent_fd = fd};
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
        return -errno;
    return 0;
}

int bp_landlock_ruleset(const struct bp_landlock_rule *rules, int n,
                        unsigned long long handled_fs, unsigned long long scoped,
                        int *failed)
{
    struct ruleset_attr attr = {.handled_access_fs = handled_fs, .scoped = scoped};
    /* Older kernels take a shorter attribute: pass only what they know. */
    size_t size = scoped ? sizeof attr : offsetof(struct ruleset_attr, handled_access_net);
    int err;
    *failed = -1;
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        int fd = rules[i].path ? open(rules[i].path, O_PATH | O_CLOEXEC) : rules[i].fd;
        if (fd < 0 && errno == ENOENT)
            continue;       /* nothing there to allow (a mount of a path the host lacks) */
        err = fd < 0 ? -errno : add_rule(ruleset, fd, rules[i].access & handled_fs);
        if (rules[i].path && fd >= 0)
            close(fd);
        if (err < 0) {
            *failed = i;
            close(ruleset);
            return err;
        }
    }
    return ruleset;
}
