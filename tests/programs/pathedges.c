/* Path calls at their edges (issue 17, class 3): each line is a call and
 * what Linux answered (0, a value, or the errno's name), so a run under
 * brandpy must print what a native run prints. Starts as root; the `user`
 * section drops to uid 1000. Works in /tmp/edges.PID. `pathedges SECTION...`
 * runs the named sections (all by default). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utime.h>

static char dir[64];

static void show(const char *what, long rc)
{
    printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "0");
}

static void show_value(const char *what, long rc, const char *value)
{
    if (rc < 0)
        printf("%s: %s\n", what, strerrorname_np(errno));
    else
        printf("%s: %s\n", what, value);
}

static const char *at(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static void closed(const char *what, int fd)
{
    show(what, fd);
    if (fd >= 0)
        close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/edges.%d", getpid());
    if (mkdir(dir, 0755) || mkdir(at("d"), 0755) || symlink("d", at("ld")) ||
        symlink("file", at("lf")) || symlink("missing", at("dangling")) ||
        symlink("/", at("abs"))) {
        perror("setup");
        exit(99);
    }
    int fd = open(at("file"), O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || write(fd, "data\n", 5) != 5 || close(fd)) {
        perror("setup file");
        exit(99);
    }
}

static void readlink_empty(void)
{
    char buf[64] = "";
    int fd = open(at("lf"), O_PATH | O_NOFOLLOW);
    show("open symlink O_PATH|O_NOFOLLOW", fd);
    ssize_t n = readlinkat(fd, "", buf, sizeof buf - 1);
    if (n >= 0)
        buf[n] = 0;
    show_value("readlinkat(symlink fd, \"\")", n, buf);
    close(fd);
    fd = open(at("file"), O_PATH);
    show("readlinkat(file fd, \"\")", readlinkat(fd, "", buf, sizeof buf));
    close(fd);
    fd = open(at("d"), O_RDONLY | O_DIRECTORY);
    show("readlinkat(dir fd, \"\")", readlinkat(fd, "", buf, sizeof buf));
    n = readlinkat(fd, "../lf", buf, sizeof buf - 1);
    if (n >= 0)
        buf[n] = 0;
    show_value("readlinkat(dir fd, \"../lf\")", n, buf);
    close(fd);
    show("readlink(file)", readlink(at("file"), buf, sizeof buf));
    show("readlink(lf/)", readlink(at("lf/"), buf, sizeof buf));
    n = readlink(at("lf"), buf, 2);
    printf("readlink(lf, 2 bytes): %zd %.2s\n", n, buf);
    show("readlink(lf, 0 bytes)", readlink(at("lf"), buf, 0));
}

static long openat2_(int dirfd, const char *path, unsigned long flags, unsigned long resolve)
{
    struct open_how how = {.flags = flags, .resolve = resolve};
    return syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

static void openat2_resolve(void)
{
    int d = open(dir, O_PATH | O_DIRECTORY);
    struct {
        const char *what, *path;
        unsigned long resolve;
    } cases[] = {
        {"NO_SYMLINKS on symlink", "lf", RESOLVE_NO_SYMLINKS},
        {"NO_SYMLINKS through dir symlink", "ld/../file", RESOLVE_NO_SYMLINKS},
        {"NO_SYMLINKS plain", "d/../file", RESOLVE_NO_SYMLINKS},
        {"NO_MAGICLINKS on /proc/self/exe", "/proc/self/exe", RESOLVE_NO_MAGICLINKS},
        {"NO_MAGICLINKS on /proc/self/cwd/file", "/proc/self/cwd/file", RESOLVE_NO_MAGICLINKS},
        {"NO_MAGICLINKS on lf", "lf", RESOLVE_NO_MAGICLINKS},
        {"NO_XDEV into /proc", "/proc/self/status", RESOLVE_NO_XDEV},
        {"NO_XDEV local", "d/../file", RESOLVE_NO_XDEV},
        {"BENEATH ..", "../edges", RESOLVE_BENEATH},
        {"BENEATH absolute", "/etc/passwd", RESOLVE_BENEATH},
        {"BENEATH abs symlink", "abs/etc/passwd", RESOLVE_BENEATH},
        {"BENEATH inside", "d/../file", RESOLVE_BENEATH},
        {"IN_ROOT absolute", "/file", RESOLVE_IN_ROOT},
        {"IN_ROOT ..", "../../file", RESOLVE_IN_ROOT},
        {"IN_ROOT abs symlink", "abs/file", RESOLVE_IN_ROOT},
        {"CACHED", "file", RESOLVE_CACHED},
        {"BENEATH|IN_ROOT", "file", RESOLVE_BENEATH | RESOLVE_IN_ROOT},
        {"unknown resolve bit", "file", 1UL << 40},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[96];
        snprintf(what, sizeof what, "openat2 %s", cases[i].what);
        long fd = openat2_(d, cases[i].path, O_RDONLY, cases[i].resolve);
        closed(what, fd);
    }
    closed("openat2 O_PATH NO_MAGICLINKS /proc/self/exe",
           openat2_(d, "/proc/self/exe", O_PATH | O_NOFOLLOW, RESOLVE_NO_MAGICLINKS));
    struct open_how big[2] = {{.flags = O_RDONLY}};
    closed("openat2 larger how, zero tail", syscall(SYS_openat2, d, "file", big, sizeof big));
    ((char *)big)[sizeof big - 1] = 1;
    closed("openat2 larger how, nonzero tail", syscall(SYS_openat2, d, "file", big, sizeof big));
    closed("openat2 short how", syscall(SYS_openat2, d, "file", big, 8));
    close(d);
}

static void slashes(void)
{
    struct stat st;
    closed("open file/", open(at("file/"), O_RDONLY));
    closed("open file/.", open(at("file/."), O_RDONLY));
    closed("open file/x", open(at("file/x"), O_RDONLY));
    closed("open file/x O_CREAT", open(at("file/x"), O_RDONLY | O_CREAT, 0644));
    closed("open new/ O_CREAT", open(at("new/"), O_RDWR | O_CREAT, 0644));
    closed("open d/ O_CREAT", open(at("d/"), O_RDONLY | O_CREAT, 0644));
    closed("open d O_WRONLY", open(at("d"), O_WRONLY));
    closed("open d O_CREAT|O_EXCL", open(at("d"), O_RDONLY | O_CREAT | O_EXCL, 0644));
    closed("open file O_DIRECTORY", open(at("file"), O_RDONLY | O_DIRECTORY));
    closed("open lf/ ", open(at("lf/"), O_RDONLY));
    closed("open ld/", open(at("ld/"), O_RDONLY));
    closed("open dangling O_CREAT|O_EXCL", open(at("dangling"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    closed("open lf O_NOFOLLOW", open(at("lf"), O_RDONLY | O_NOFOLLOW));
    closed("open empty path", open("", O_RDONLY));
    show("stat file/", stat(at("file/"), &st));
    show("lstat lf/", lstat(at("lf/"), &st));
    show("lstat ld/", lstat(at("ld/"), &st));
    printf("lstat ld/ is dir: %d\n", S_ISDIR(st.st_mode));
    show("stat dangling/", stat(at("dangling/"), &st));
    show("mkdir new2/", mkdir(at("new2/"), 0755));
    show("mkdir file/x", mkdir(at("file/x"), 0755));
    show("mkdir d", mkdir(at("d"), 0755));
    show("mkdir dangling", mkdir(at("dangling"), 0755));
    show("rmdir file", rmdir(at("file")));
    show("rmdir new2/.", rmdir(at("new2/.")));
    show("rmdir new2/..", rmdir(at("new2/..")));
    show("rmdir new2/", rmdir(at("new2/")));
    show("unlink file/", unlink(at("file/")));
    show("unlink d", unlink(at("d")));
    show("unlink ld/", unlink(at("ld/")));
    show("rename file -> g/", rename(at("file"), at("g/")));
    show("rename file/ -> g", rename(at("file/"), at("g")));
    show("rename d -> file", rename(at("d"), at("file")));
    show("rename file -> d", rename(at("file"), at("d")));
    show("rename d -> d/sub", rename(at("d"), at("d/sub")));
    show("link file -> d/", link(at("file"), at("d/")));
    show("link d -> d2", link(at("d"), at("d2")));
    show("symlink x -> new3/", symlink("x", at("new3/")));
    show("mknod fifo/", mknod(at("fifo/"), S_IFIFO | 0644, 0));
    show("chdir file", chdir(at("file")));
    show("chdir ld", chdir(at("ld")));
    show("chdir /", chdir("/"));
    show("truncate d", truncate(at("d"), 0));
    show("truncate file/", truncate(at("file/"), 0));
    show("access file/", access(at("file/"), F_OK));
    show("faccessat bad flag", faccessat(AT_FDCWD, at("file"), F_OK, 0x10000));
    /* renames: a trailing slash asks for a directory, and never follows */
    if (mkdir(at("rn"), 0755) || mkdir(at("rn/d"), 0755) || mkdir(at("rn/e"), 0755) ||
        symlink("d", at("rn/ld")) || close(open(at("rn/f"), O_WRONLY | O_CREAT, 0644)) ||
        symlink("f", at("rn/lf"))) {
        perror("rename setup");
        exit(99);
    }
    show("rename rn/ld/ -> rn/x", rename(at("rn/ld/"), at("rn/x")));
    show("rename rn/lf/ -> rn/x", rename(at("rn/lf/"), at("rn/x")));
    show("rename rn/d/ -> rn/x/", rename(at("rn/d/"), at("rn/x/")));
    show("rename rn/x/ -> rn/d", rename(at("rn/x/"), at("rn/d")));
    show("rename rn/f -> rn/ld/", rename(at("rn/f"), at("rn/ld/")));
    show("rename rn/e -> rn/ld/", rename(at("rn/e"), at("rn/ld/")));
    show("rename rn/d/. -> rn/y", rename(at("rn/d/."), at("rn/y")));
    show("rename rn/e -> rn/d/..", rename(at("rn/e"), at("rn/d/..")));
    show("exchange rn/d -> rn/lf/", syscall(SYS_renameat2, AT_FDCWD, at("rn/d"), AT_FDCWD,
                                           at("rn/lf/"), RENAME_EXCHANGE));
    show("exchange rn/d/ -> rn/e/", syscall(SYS_renameat2, AT_FDCWD, at("rn/d/"), AT_FDCWD,
                                           at("rn/e/"), RENAME_EXCHANGE));
    show("link rn/lf/ -> rn/g", link(at("rn/lf/"), at("rn/g")));
    show("link rn/f -> rn/ld/", link(at("rn/f"), at("rn/ld/")));
    printf("rn: d %d e %d x %d y %d\n", !access(at("rn/d"), F_OK), !access(at("rn/e"), F_OK),
           !access(at("rn/x"), F_OK), !access(at("rn/y"), F_OK));
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    closed("open 299-byte name", open(at(longname), O_RDONLY));
    char *longpath = malloc(5000);
    memset(longpath, 'a', 4999);
    longpath[4999] = 0;
    for (int i = 100; i < 4999; i += 101)
        longpath[i] = '/';
    closed("open 4999-byte path", open(longpath, O_RDONLY));
    show("stat 4999-byte path", stat(longpath, &st));
    free(longpath);
}

static void stat_flags(void)
{
    struct stat st;
    int fd = open(at("file"), O_RDONLY);
    int pfd = open(at("lf"), O_PATH | O_NOFOLLOW);
    show("fstatat(fd, \"\", 0)", fstatat(fd, "", &st, 0));
    show("fstatat(fd, \"\", EMPTY_PATH)", fstatat(fd, "", &st, AT_EMPTY_PATH));
    printf("  size %lld\n", (long long)st.st_size);
    show("fstatat(symlink O_PATH, \"\", EMPTY_PATH)", fstatat(pfd, "", &st, AT_EMPTY_PATH));
    printf("  is link %d\n", S_ISLNK(st.st_mode));
    show("fstatat(symlink O_PATH, \"\", EMPTY_PATH|NOFOLLOW)",
         fstatat(pfd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
    show("fstatat(AT_FDCWD, \"\", EMPTY_PATH)", fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH));
    show("fstatat(file fd, \"x\", 0)", fstatat(fd, "x", &st, 0));
    show("fstatat(-5, \"x\", 0)", fstatat(-5, "x", &st, 0));
    show("fstatat(-5, absolute, 0)", fstatat(-5, at("file"), &st, 0));
    show("fstatat(lf, NOFOLLOW)", fstatat(AT_FDCWD, at("lf"), &st, AT_SYMLINK_NOFOLLOW));
    printf("  is link %d\n", S_ISLNK(st.st_mode));
    show("fstatat(bad flags)", fstatat(AT_FDCWD, at("file"), &st, 0x40000));
    show("fstatat(NO_AUTOMOUNT)", fstatat(AT_FDCWD, at("file"), &st, AT_NO_AUTOMOUNT));
    struct statx sx;
    show("statx(FORCE_SYNC|DONT_SYNC)",
         statx(AT_FDCWD, at("file"), AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx));
    show("statx(mask reserved)", statx(AT_FDCWD, at("file"), 0, 0x80000000U, &sx));
    show("statx(fd, \"\", EMPTY_PATH)", statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx));
    printf("  size %llu\n", (unsigned long long)sx.stx_size);
    show("statx(NULL path, EMPTY_PATH)", syscall(SYS_statx, fd, NULL, AT_EMPTY_PATH, STATX_SIZE, &sx));
    show("newfstatat(NULL path, EMPTY_PATH)", syscall(SYS_newfstatat, fd, NULL, &st, AT_EMPTY_PATH));
    show("stat(NULL)", syscall(SYS_stat, NULL, &st));
    show("stat bad buffer", syscall(SYS_stat, at("file"), (void *)8));
    close(fd);
    close(pfd);
}

static void opath_fds(void)
{
    int p = open(at("d"), O_PATH | O_DIRECTORY);
    int f = open(at("file"), O_PATH);
    char buf[8];
    show("accept(O_PATH)", accept(p, NULL, NULL));
    show("read(O_PATH)", read(f, buf, sizeof buf));
    show("fchmod(O_PATH)", fchmod(f, 0644));
    show("fchdir(O_PATH dir)", fchdir(p));
    show("fchdir back", chdir("/"));
    show("getdents(O_PATH dir)", syscall(SYS_getdents64, p, buf, sizeof buf));
    show("ioctl(O_PATH)", ioctl(f, FIONREAD, buf));
    show("fcntl(O_PATH, F_GETFL) ok", fcntl(f, F_GETFL) >= 0 ? 0 : -1);
    closed("openat(O_PATH dir, file)", openat(p, "../file", O_RDONLY));
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", f);
    closed("reopen O_PATH via /proc/self/fd", open(link, O_RDONLY));
    close(p);
    close(f);
}

#define USER 1000       /* the non-root container user */
#define GROUP 1000

static void become_user(void)
{
    if (setgroups(0, NULL) || setresgid(GROUP, GROUP, GROUP) || setresuid(USER, USER, USER)) {
        perror("become user");
        exit(99);
    }
}

/* A file at dir/name with mode and owner, made as root. */
static void made(const char *name, mode_t mode, uid_t owner)
{
    int fd = S_ISDIR(mode) ? mkdir(at(name), 0700) : open(at(name), O_WRONLY | O_CREAT, 0600);
    if (fd < 0 || (!S_ISDIR(mode) && (write(fd, "#!/bin/sh\nexit 0\n", 17) != 17 || close(fd))) ||
        chmod(at(name), mode & 07777) || chown(at(name), owner, owner)) {
        perror(name);
        exit(99);
    }
}

/* execve(dir/name) in a child: the errno, or how the program ended. */
static void try_exec(const char *what, const char *name)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)at(name), NULL};
        execve(at(name), argv, (char *[]){NULL});
        printf("%s: %s\n", what, strerrorname_np(errno));
        fflush(stdout);
        _exit(100);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 100)
        printf("%s: ran, status %#x\n", what, status);
}

/* An AF_UNIX socket bound or connected to dir/name (and closed). */
static long unix_at(const char *name, int (*call)(int, const struct sockaddr *, socklen_t))
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", at(name));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    long rc = call(s, (struct sockaddr *)&sa, sizeof sa);
    int err = errno;
    close(s);
    errno = err;
    return rc;
}

static long bind_unix(const char *name)
{
    return unix_at(name, bind);
}

static long connect_unix(const char *name)
{
    return unix_at(name, connect);
}

static long times_(const char *name, long a, long m)
{
    struct timespec ts[2] = {{.tv_sec = 1, .tv_nsec = a}, {.tv_sec = 2, .tv_nsec = m}};
    return utimensat(AT_FDCWD, at(name), ts, 0);
}

/* Linux's discretionary access control between the container's users:
 * search, read, write and execute permission, the parent's write and
 * search for names made or removed, the sticky bit, protected hardlinks,
 * and owner-only metadata changes. */
static void user(void)
{
    struct stat st;
    if (mkdir(at("locked"), 0700) || mkdir(at("locked/sub"), 0755) ||
        close(open(at("locked/f"), O_WRONLY | O_CREAT, 0644)) || mkdir(at("listable"), 0744) ||
        close(open(at("listable/f"), O_WRONLY | O_CREAT, 0644))) {
        perror("user setup");
        exit(99);
    }
    made("wx", S_IFDIR | 0711, 0);
    made("wx/f", 0644, 0);
    made("secret", 0600, 0);
    made("ro", 0644, 0);
    made("rw", 0666, 0);
    made("x700", 0700, 0);
    made("x744", 0744, 0);
    made("x755", 0755, 0);
    made("rodir", S_IFDIR | 0755, 0);
    made("rodir/f", 0666, 0);
    made("rodir/sub", S_IFDIR | 0755, 0);
    made("pub", S_IFDIR | 0777, 0);
    made("pub/rootf", 0644, 0);
    made("pub/rd", S_IFDIR | 0755, 0);
    made("pub/sub", S_IFDIR | 0777, 0);
    made("sticky", S_IFDIR | 01777, 0);
    made("sticky/rootf", 0666, 0);
    made("sticky/rootd", S_IFDIR | 0777, 0);
    made("home", S_IFDIR | 0755, USER);
    made("home/rootf", 0644, 0);
    made("home/st", S_IFDIR | 01777, USER);
    made("home/st/rootf", 0644, 0);
    made("mine", 0600, USER);
    made("theirs", 0600, 2000);
    made("wo", 0622, 0);
    int locked_fd = open(at("locked"), O_RDONLY | O_DIRECTORY);    /* opened as root */
    become_user();
    /* search */
    show("user stat locked/f", stat(at("locked/f"), &st));
    show("user stat locked/missing", stat(at("locked/missing"), &st));
    closed("user open locked/f", open(at("locked/f"), O_RDONLY));
    closed("user create locked/new", open(at("locked/new"), O_WRONLY | O_CREAT, 0644));
    show("user access locked/f", access(at("locked/f"), R_OK));
    show("user chdir locked/sub", chdir(at("locked/sub")));
    show("user mkdir locked/x", mkdir(at("locked/x"), 0755));
    show("user unlink locked/f", unlink(at("locked/f")));
    show("user stat locked", stat(at("locked"), &st));
    show("user stat locked/", stat(at("locked/"), &st));
    show("user stat locked/.", stat(at("locked/."), &st));
    show("user stat locked/..", stat(at("locked/.."), &st));
    show("user stat locked/sub/..", stat(at("locked/sub/.."), &st));
    closed("user open locked", open(at("locked"), O_RDONLY | O_DIRECTORY));
    closed("user open locked O_PATH", open(at("locked"), O_PATH));
    closed("user open locked/f O_PATH", open(at("locked/f"), O_PATH));
    char buf[64];
    show("user readlink locked/l", readlink(at("locked/l"), buf, sizeof buf));
    show("user stat listable/f", stat(at("listable/f"), &st));
    closed("user open listable", open(at("listable"), O_RDONLY | O_DIRECTORY));
    show("user mkdir listable/x", mkdir(at("listable/x"), 0755));
    show("user stat wx/f", stat(at("wx/f"), &st));
    closed("user open wx", open(at("wx"), O_RDONLY | O_DIRECTORY));
    show("user chdir wx", chdir(at("wx")));
    show("user chdir listable", chdir(at("listable")));
    show("user chdir /", chdir("/"));
    show("user fchdir locked (opened by root)", fchdir(locked_fd));
    close(locked_fd);
    int dfd = open(at("locked"), O_PATH);
    show("user fchdir locked O_PATH", fchdir(dfd));
    close(dfd);
    dfd = open(at("listable"), O_PATH | O_DIRECTORY);
    show("user fchdir listable", fchdir(dfd));
    close(dfd);
    dfd = open(at("wx"), O_PATH);
    show("user fchdir wx", fchdir(dfd));
    close(dfd);
    show("user fchdir back", chdir("/"));
    dfd = open(at("ro"), O_RDONLY);
    show("user fchdir ro", fchdir(dfd));
    close(dfd);
    show("user fchdir closed fd", fchdir(dfd));
    /* read and write */
    closed("user open secret", open(at("secret"), O_RDONLY));
    closed("user open ro O_RDONLY", open(at("ro"), O_RDONLY));
    closed("user open ro O_WRONLY", open(at("ro"), O_WRONLY));
    closed("user open ro O_RDWR", open(at("ro"), O_RDWR));
    closed("user open ro O_RDONLY|O_TRUNC", open(at("ro"), O_RDONLY | O_TRUNC));
    closed("user open ro O_RDONLY|O_CREAT", open(at("ro"), O_RDONLY | O_CREAT, 0644));
    closed("user open ro O_WRONLY|O_CREAT", open(at("ro"), O_WRONLY | O_CREAT, 0644));
    closed("user open rw O_RDWR|O_TRUNC", open(at("rw"), O_RDWR | O_TRUNC));
    closed("user open ro O_NOATIME", open(at("ro"), O_RDONLY | O_NOATIME));
    closed("user open file O_RDWR", open(at("file"), O_RDWR));
    closed("user open theirs", open(at("theirs"), O_RDONLY));
    closed("user open mine O_RDWR", open(at("mine"), O_RDWR));
    show("user truncate ro", truncate(at("ro"), 0));
    show("user truncate rw", truncate(at("rw"), 0));
    show("user access secret R_OK", access(at("secret"), R_OK));
    show("user access ro W_OK", access(at("ro"), W_OK));
    show("user access ro R_OK", access(at("ro"), R_OK));
    show("user access ro X_OK", access(at("ro"), X_OK));
    show("user access x744 X_OK", access(at("x744"), X_OK));
    show("user access x755 X_OK", access(at("x755"), X_OK));
    show("user access secret F_OK", access(at("secret"), F_OK));
    show("user faccessat ro W_OK AT_EACCESS", faccessat(AT_FDCWD, at("ro"), W_OK, AT_EACCESS));
    int in = inotify_init1(IN_CLOEXEC);
    show("user watch secret", inotify_add_watch(in, at("secret"), IN_MODIFY));
    show("user watch ro", inotify_add_watch(in, at("ro"), IN_MODIFY) < 0 ? -1 : 0);
    close(in);
    /* execute */
    try_exec("user exec x700", "x700");
    try_exec("user exec x744", "x744");
    try_exec("user exec x755", "x755");
    try_exec("user exec locked/sub", "locked/sub");
    /* names in a directory the user may not write */
    closed("user create rodir/new", open(at("rodir/new"), O_WRONLY | O_CREAT, 0644));
    closed("user create rodir/f", open(at("rodir/f"), O_WRONLY | O_CREAT, 0644));
    closed("user create rodir/f O_EXCL", open(at("rodir/f"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    closed("user O_TMPFILE rodir", open(at("rodir"), O_RDWR | O_TMPFILE, 0644));
    show("user mkdir rodir/x", mkdir(at("rodir/x"), 0755));
    show("user mkdir rodir/sub", mkdir(at("rodir/sub"), 0755));
    show("user mknod rodir/fifo", mknod(at("rodir/fifo"), S_IFIFO | 0644, 0));
    show("user symlink rodir/l", symlink("x", at("rodir/l")));
    show("user link mine -> rodir/l", link(at("mine"), at("rodir/l")));
    show("user unlink rodir/f", unlink(at("rodir/f")));
    show("user unlink rodir/missing", unlink(at("rodir/missing")));
    show("user unlink rodir/sub", unlink(at("rodir/sub")));
    show("user rmdir rodir/sub", rmdir(at("rodir/sub")));
    show("user rmdir rodir/f", rmdir(at("rodir/f")));
    show("user rename rodir/f -> pub/f", rename(at("rodir/f"), at("pub/f")));
    show("user unlink file", unlink(at("file")));
    show("user rmdir d", rmdir(at("d")));
    /* a directory everyone may write */
    show("user unlink pub/rootf", unlink(at("pub/rootf")));
    closed("user create pub/u", open(at("pub/u"), O_WRONLY | O_CREAT, 0644));
    show("user rename pub/u -> rodir/u", rename(at("pub/u"), at("rodir/u")));
    show("user rename pub/rd -> pub/sub/rd", rename(at("pub/rd"), at("pub/sub/rd")));
    show("user rename pub/rd -> pub/rd2", rename(at("pub/rd"), at("pub/rd2")));
    show("user mkdir pub/ud", mkdir(at("pub/ud"), 0755));
    show("user rename pub/ud -> pub/sub/ud", rename(at("pub/ud"), at("pub/sub/ud")));
    show("user link ro -> pub/l1", link(at("ro"), at("pub/l1")));
    show("user link rw -> pub/l2", link(at("rw"), at("pub/l2")));
    show("user link mine -> pub/l3", link(at("mine"), at("pub/l3")));
    show("user link x755 -> pub/l4", link(at("x755"), at("pub/l4")));
    show("user mkfifo pub/fifo", mkfifo(at("pub/fifo"), 0600));
    closed("user open own fifo O_RDWR", open(at("pub/fifo"), O_RDWR | O_NONBLOCK));
    show("user unlink pub/fifo", unlink(at("pub/fifo")));
    show("user bind rodir/sock", bind_unix("rodir/sock"));
    show("user bind pub/sock", bind_unix("pub/sock"));
    show("user connect ro", connect_unix("ro"));
    show("user connect rw", connect_unix("rw"));
    /* the sticky bit */
    closed("user create sticky/u", open(at("sticky/u"), O_WRONLY | O_CREAT, 0644));
    show("user unlink sticky/rootf", unlink(at("sticky/rootf")));
    show("user rename sticky/rootf -> sticky/x", rename(at("sticky/rootf"), at("sticky/x")));
    show("user rename sticky/u -> sticky/rootf", rename(at("sticky/u"), at("sticky/rootf")));
    show("user rmdir sticky/rootd", rmdir(at("sticky/rootd")));
    closed("user open sticky/rootf O_RDWR", open(at("sticky/rootf"), O_RDWR));
    show("user rename sticky/u -> sticky/u2", rename(at("sticky/u"), at("sticky/u2")));
    show("user unlink sticky/u2", unlink(at("sticky/u2")));
    show("user symlink sticky/ul", symlink("u2", at("sticky/ul")));
    struct timespec ts[2] = {{.tv_sec = 1}, {.tv_sec = 2}};
    show("user utimensat own symlink", utimensat(AT_FDCWD, at("sticky/ul"), ts, AT_SYMLINK_NOFOLLOW));
    show("user unlink sticky/ul", unlink(at("sticky/ul")));
    show("user unlink home/rootf", unlink(at("home/rootf")));
    show("user unlink home/st/rootf", unlink(at("home/st/rootf")));
    /* owner-only changes */
    show("user chmod file", chmod(at("file"), 0777));
    show("user chmod mine", chmod(at("mine"), 0640));
    show("user chown mine to root", chown(at("mine"), 0, -1));
    show("user chown mine to itself", chown(at("mine"), USER, -1));
    show("user chgrp mine to 0", chown(at("mine"), -1, 0));
    show("user chgrp mine to its group", chown(at("mine"), -1, GROUP));
    show("user chown rw", chown(at("rw"), -1, -1));
    show("user utimensat rw NULL", utimensat(AT_FDCWD, at("rw"), NULL, 0));
    show("user utimensat ro NULL", utimensat(AT_FDCWD, at("ro"), NULL, 0));
    show("user utimensat ro NOW NOW", times_("ro", UTIME_NOW, UTIME_NOW));
    show("user utimensat rw NOW NOW", times_("rw", UTIME_NOW, UTIME_NOW));
    show("user utimensat rw times", times_("rw", 0, 0));
    show("user utimensat rw NOW OMIT", times_("rw", UTIME_NOW, UTIME_OMIT));
    show("user utimensat mine times", times_("mine", 0, 0));
    show("user utime ro NULL", utime(at("ro"), NULL));
    /* user.* xattrs */
    show("user setxattr ro", setxattr(at("ro"), "user.x", "1", 1, 0));
    show("user setxattr rw", setxattr(at("rw"), "user.x", "1", 1, 0));
    show("user getxattr secret", getxattr(at("secret"), "user.x", buf, sizeof buf));
    show("user getxattr ro missing", getxattr(at("ro"), "user.missing", buf, sizeof buf));
    show("user setxattr sticky", setxattr(at("sticky"), "user.x", "1", 1, 0));
    show("user removexattr rw", removexattr(at("rw"), "user.x"));
    int fd = open(at("ro"), O_RDONLY);
    show("user fsetxattr ro", fsetxattr(fd, "user.x", "1", 1, 0));
    close(fd);
    fd = open(at("rw"), O_RDONLY);
    show("user fsetxattr rw", fsetxattr(fd, "user.x", "1", 1, 0));
    show("user fremovexattr rw", fremovexattr(fd, "user.x"));
    close(fd);
    fd = open(at("wo"), O_WRONLY);
    show("user fgetxattr write-only wo", fgetxattr(fd, "user.x", buf, sizeof buf));
    printf("user flistxattr write-only wo: %zd\n", flistxattr(fd, buf, sizeof buf));
    close(fd);
}

/* brandpy's own xattr `name` on `path` cannot be read or listed, by
 * path, by a symlink's path or through any descriptor. */
static void hidden(const char *path, const char *name)
{
    char buf[256], what[128], file[512];
    snprintf(file, sizeof file, "%s", path[0] == '/' ? path : at(path));
    const char *base = strrchr(file, '/') + 1;
    snprintf(what, sizeof what, "get %s of %s", name, base);
    show(what, getxattr(file, name, buf, sizeof buf));
    snprintf(what, sizeof what, "lget %s of %s", name, base);
    show(what, lgetxattr(file, name, buf, sizeof buf));
    int fd = open(file, O_RDONLY);
    snprintf(what, sizeof what, "fget %s of %s", name, base);
    show(what, fgetxattr(fd, name, buf, sizeof buf));
    printf("flisted %s: %zd\n", base, flistxattr(fd, buf, sizeof buf));
    printf("llisted %s: %zd\n", base, llistxattr(file, buf, sizeof buf));
    close(fd);
    fd = open(file, O_PATH);
    snprintf(what, sizeof what, "fget O_PATH %s", base);
    show(what, fgetxattr(fd, name, buf, sizeof buf));
    close(fd);
    unlink(at("via"));
    symlink(file, at("via"));
    snprintf(what, sizeof what, "get %s through a symlink to %s", name, base);
    show(what, getxattr(at("via"), name, buf, sizeof buf));
    printf("listed through a symlink to %s: %zd\n", base, listxattr(at("via"), buf, sizeof buf));
    unlink(at("via"));
}

/* brandpy's own xattrs (fake ownership, image files) are not the
 * container's: run under brandpy only, not in the default sections. */
static void own_xattrs(void)
{
    static const char *own[] = {"user.containers.override_stat", "user.brandpy.image"};
    char buf[256];
    made("ox", 0644, 0);
    for (int i = 0; i < 2; i++) {
        char what[96];
        snprintf(what, sizeof what, "set %s", own[i]);
        show(what, setxattr(at("ox"), own[i], "1000:1000:0777:file", 19, 0));
        int fd = open(at("ox"), O_RDONLY);
        snprintf(what, sizeof what, "fset %s", own[i]);
        show(what, fsetxattr(fd, own[i], "1000:1000:0777:file", 19, 0));
        close(fd);
        snprintf(what, sizeof what, "remove %s", own[i]);
        show(what, removexattr(at("ox"), own[i]));
    }
    made("oy", 0644, USER);      /* recorded in the override xattr unprivileged */
    show("get override of a user's file", getxattr(at("oy"), own[0], buf, sizeof buf));
    ssize_t n = listxattr(at("oy"), buf, sizeof buf);
    printf("listed: %zd\n", n);
    hidden("oy", own[0]);
    /* an image file (the test marks it), whatever reaches it */
    hidden("/etc/edges.img", own[1]);
    /* the container's own xattr beside brandpy's: listed alone, with
     * listxattr's size rules (0: the size needed; too small: ERANGE) */
    show("set user.mine", setxattr(at("oy"), "user.mine", "1", 1, 0));
    int fd = open(at("oy"), O_RDONLY);
    printf("list size 0: %zd\n", listxattr(at("oy"), NULL, 0));
    printf("flist size 0: %zd\n", flistxattr(fd, NULL, 0));
    show("flist 9 bytes", flistxattr(fd, buf, 9));
    n = flistxattr(fd, buf, 10);
    printf("flist 10 bytes: %zd %s\n", n, n > 0 ? buf : "");
    show("fget user.mine", fgetxattr(fd, "user.mine", buf, sizeof buf));
    close(fd);
}

/* What a caller with a user's real or effective IDs may reach. */
static void reach(const char *who)
{
    struct stat st;
    char what[64];
    snprintf(what, sizeof what, "%s: access rsecret", who);
    show(what, access(at("rsecret"), R_OK));
    snprintf(what, sizeof what, "%s: AT_EACCESS rsecret", who);
    show(what, faccessat(AT_FDCWD, at("rsecret"), R_OK, AT_EACCESS));
    snprintf(what, sizeof what, "%s: access rlocked/f", who);
    show(what, access(at("rlocked/f"), F_OK));
    snprintf(what, sizeof what, "%s: stat rlocked/f", who);
    show(what, stat(at("rlocked/f"), &st));
    snprintf(what, sizeof what, "%s: open rsecret", who);
    closed(what, open(at("rsecret"), O_RDONLY));
}

/* access() checks with the real IDs, faccessat(AT_EACCESS) with the
 * effective ones, and a real root keeps its permitted capabilities. */
static void realids(void)
{
    made("rsecret", 0600, 0);
    made("rlocked", S_IFDIR | 0700, 0);
    made("rlocked/f", 0644, 0);
    if (setgroups(0, NULL) || setresgid(GROUP, 0, 0) || setresuid(USER, 0, 0)) {
        perror("real user");
        exit(99);
    }
    reach("ruid user");
    if (setresuid(0, USER, 0) || setresgid(0, GROUP, 0)) {
        perror("effective user");
        exit(99);
    }
    reach("euid user");
}

/* Root with some of the capabilities that bypass these checks dropped. */
static void keep_caps(unsigned long long keep)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d)) {
        perror("capget");
        exit(99);
    }
    d[0].effective &= keep;
    d[1].effective &= keep >> 32;
    if (syscall(SYS_capset, &h, d)) {
        perror("capset");
        exit(99);
    }
}

static void rootcaps(void)
{
    struct stat st;
    made("ufile", 0600, USER);
    made("udir", S_IFDIR | 0700, USER);
    made("udir/f", 0600, USER);
    made("uro", S_IFDIR | 0755, USER);
    made("uexec", 0744, USER);
    unsigned long long all = ~0ULL, dac = 1ULL << CAP_DAC_OVERRIDE;
    unsigned long long search = 1ULL << CAP_DAC_READ_SEARCH, fowner = 1ULL << CAP_FOWNER;
    keep_caps(all & ~dac);
    show("read-search root: open ufile O_RDONLY", open(at("ufile"), O_RDONLY) < 0 ? -1 : 0);
    show("read-search root: open ufile O_WRONLY", open(at("ufile"), O_WRONLY) < 0 ? -1 : 0);
    show("read-search root: stat udir/f", stat(at("udir/f"), &st));
    show("read-search root: mkdir uro/x", mkdir(at("uro/x"), 0755));
    show("read-search root: access uexec X_OK", access(at("uexec"), X_OK));
    keep_caps(all & ~(dac | search));
    show("no-dac root: open ufile O_RDONLY", open(at("ufile"), O_RDONLY) < 0 ? -1 : 0);
    show("no-dac root: stat udir/f", stat(at("udir/f"), &st));
    int udir = open(at("udir"), O_PATH);
    show("no-dac root: fchdir udir", fchdir(udir));
    close(udir);
    show("no-dac root: access ufile R_OK", access(at("ufile"), R_OK));
    show("no-dac root: AT_EACCESS ufile R_OK", faccessat(AT_FDCWD, at("ufile"), R_OK, AT_EACCESS));
    show("no-dac root: chmod ufile", chmod(at("ufile"), 0640));
    show("no-dac root: utimensat ufile times", times_("ufile", 0, 0));
    keep_caps(all & ~(dac | search | fowner));
    show("no-fowner root: chmod ufile", chmod(at("ufile"), 0600));
    show("no-fowner root: utimensat ufile times", times_("ufile", 0, 0));
    show("no-fowner root: utimensat ufile NULL", utimensat(AT_FDCWD, at("ufile"), NULL, 0));
    show("no-fowner root: chown ufile", chown(at("ufile"), 0, 0));
}

/* More calls at their edges: empty and odd names, flags Linux refuses,
 * xattr names and kinds of file, directories that cannot go. */
static void calls(void)
{
    char buf[300];
    int p[2];
    show("chdir empty", chdir(""));
    show("symlink empty target", symlink("", at("el")));
    show("rmdir .", rmdir("."));
    show("rmdir d/.", rmdir(at("d/.")));
    show("rmdir /", rmdir("/"));
    show("unlinkat file AT_REMOVEDIR", unlinkat(AT_FDCWD, at("file"), AT_REMOVEDIR));
    show("unlinkat d no flag", unlinkat(AT_FDCWD, at("d"), 0));
    show("unlinkat bad flag", unlinkat(AT_FDCWD, at("file"), 0x1));
    show("mknod S_IFDIR", mknod(at("mkd"), S_IFDIR | 0755, 0));
    show("mknod bad type", mknod(at("mkx"), 0170000 | 0644, 0));
    closed("open O_DIRECTORY|O_CREAT", open(at("odc"), O_RDONLY | O_DIRECTORY | O_CREAT, 0644));
    closed("open O_TMPFILE O_RDONLY", open(at("d"), O_RDONLY | O_TMPFILE, 0644));
    closed("open O_TMPFILE on file", open(at("file"), O_RDWR | O_TMPFILE, 0644));
    show("renameat2 NOREPLACE|EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, at("file"), AT_FDCWD,
                                                at("lf"), RENAME_NOREPLACE | RENAME_EXCHANGE));
    show("renameat2 bad flag", syscall(SYS_renameat2, AT_FDCWD, at("file"), AT_FDCWD, at("x"), 0x80));
    show("rename file -> file", rename(at("file"), at("file")));
    show("rename d -> .", rename(at("d"), "."));
    show("utimensat bad flag", utimensat(AT_FDCWD, at("file"), NULL, 0x4));
    struct timespec bad[2] = {{.tv_nsec = 1000000000}, {.tv_nsec = 0}};
    show("utimensat bad nsec", utimensat(AT_FDCWD, at("file"), bad, 0));
    show("linkat bad flag", linkat(AT_FDCWD, at("file"), AT_FDCWD, at("l9"), 0x2));
    show("linkat dir", linkat(AT_FDCWD, at("d"), AT_FDCWD, at("l9"), 0));
    show("mkdir existing symlink", mkdir(at("lf"), 0755));
    show("symlink over existing", symlink("x", at("file")));
    show("fchmodat bad flag", syscall(SYS_fchmodat, AT_FDCWD, at("file"), 0644, 0x100));
    show("fchownat bad flag", fchownat(AT_FDCWD, at("file"), -1, -1, 0x2));
    /* xattrs: names, kinds of file */
    show("getxattr empty name", getxattr(at("file"), "", buf, sizeof buf));
    memset(buf, 'n', 260);
    memcpy(buf, "user.", 5);
    buf[260] = 0;
    char name[300];
    memcpy(name, buf, 261);
    show("getxattr 260-byte name", getxattr(at("file"), name, buf, sizeof buf));
    show("getxattr no namespace", getxattr(at("file"), "foo", buf, sizeof buf));
    show("getxattr unknown namespace", getxattr(at("file"), "bogus.x", buf, sizeof buf));
    show("setxattr bad flags", setxattr(at("file"), "user.x", "1", 1, 4));
    show("setxattr XATTR_REPLACE missing", setxattr(at("file"), "user.y", "1", 1, XATTR_REPLACE));
    show("setxattr user.x", setxattr(at("file"), "user.x", "1", 1, 0));
    show("setxattr XATTR_CREATE existing", setxattr(at("file"), "user.x", "1", 1, XATTR_CREATE));
    show("getxattr 0 bytes", getxattr(at("file"), "user.x", NULL, 0) == 1 ? 0 : -1);
    show("removexattr missing", removexattr(at("file"), "user.y"));
    show("lgetxattr user.x of symlink", lgetxattr(at("lf"), "user.x", buf, sizeof buf));
    show("lsetxattr user.x on symlink", lsetxattr(at("lf"), "user.x", "1", 1, 0));
    printf("llistxattr symlink: %zd\n", llistxattr(at("lf"), buf, sizeof buf));
    show("getxattr user.x through lf", getxattr(at("lf"), "user.x", buf, sizeof buf) == 1 ? 0 : -1);
    if (pipe(p)) {
        perror("pipe");
        exit(99);
    }
    show("fgetxattr pipe", fgetxattr(p[0], "user.x", buf, sizeof buf));
    show("fsetxattr pipe", fsetxattr(p[1], "user.x", "1", 1, 0));
    printf("flistxattr pipe: %zd\n", flistxattr(p[0], buf, sizeof buf));
    close(p[0]);
    close(p[1]);
    show("fgetxattr closed fd", fgetxattr(p[0], "user.x", buf, sizeof buf));
    show("fgetxattr -1", fgetxattr(-1, "user.x", buf, sizeof buf));
    show("flistxattr bad buffer", flistxattr(open(at("file"), O_RDONLY), (char *)8, 100));
    show("getxattr bad name pointer", getxattr(at("file"), (char *)8, buf, sizeof buf));
    show("removexattr user.x", removexattr(at("file"), "user.x"));
    /* descriptors as directories, and the cwd */
    int f = open(at("file"), O_RDONLY), d = open(at("d"), O_PATH | O_DIRECTORY);
    closed("openat(file fd, x)", openat(f, "x", O_RDONLY));
    show("mkdirat(file fd, x)", mkdirat(f, "x", 0755));
    show("symlinkat(x, file fd, y)", symlinkat("x", f, "y"));
    show("unlinkat(file fd, x)", unlinkat(f, "x", 0));
    show("renameat(file fd, x, d, y)", renameat(f, "x", d, "y"));
    show("linkat(O_PATH d, \"\", EMPTY_PATH)", linkat(d, "", AT_FDCWD, at("dl"), AT_EMPTY_PATH));
    show("linkat(file fd, \"\", EMPTY_PATH)", linkat(f, "", AT_FDCWD, at("fl"), AT_EMPTY_PATH));
    /* a file the process opened O_PATH itself, and O_TMPFILE's two ways in */
    int op = open(at("file"), O_PATH), tmp = open(at("d"), O_RDWR | O_TMPFILE, 0644);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", tmp);
    show("linkat(O_PATH file, \"\", EMPTY_PATH)", linkat(op, "", AT_FDCWD, at("fl4"), AT_EMPTY_PATH));
    show("linkat O_TMPFILE by /proc/self/fd", linkat(AT_FDCWD, self, AT_FDCWD, at("d/tl1"),
                                                     AT_SYMLINK_FOLLOW));
    show("linkat O_TMPFILE EMPTY_PATH", linkat(tmp, "", AT_FDCWD, at("d/tl2"), AT_EMPTY_PATH));
    show("stat d/tl1", stat(at("d/tl1"), &(struct stat){0}));
    close(op);
    close(tmp);
    show("linkat lf SYMLINK_FOLLOW", linkat(AT_FDCWD, at("lf"), AT_FDCWD, at("fl2"), AT_SYMLINK_FOLLOW));
    struct stat st;
    show("lstat fl2", lstat(at("fl2"), &st));
    printf("  fl2 is link %d\n", S_ISLNK(st.st_mode));
    show("linkat lf no follow", linkat(AT_FDCWD, at("lf"), AT_FDCWD, at("fl3"), 0));
    show("lstat fl3", lstat(at("fl3"), &st));
    printf("  fl3 is link %d\n", S_ISLNK(st.st_mode));
    closed("open O_PATH|O_CREAT missing", open(at("pc"), O_PATH | O_CREAT, 0644));
    show("access pc", access(at("pc"), F_OK));
    show("truncate -1", truncate(at("file"), -1));
    show("fchmodat2 NOFOLLOW symlink", syscall(452 /* fchmodat2 */, AT_FDCWD, at("lf"), 0644,
                                                 AT_SYMLINK_NOFOLLOW));
    show("faccessat dangling NOFOLLOW", faccessat(AT_FDCWD, at("dangling"), F_OK,
                                                 AT_SYMLINK_NOFOLLOW));
    show("faccessat dangling", faccessat(AT_FDCWD, at("dangling"), F_OK, 0));
    int in = inotify_init1(IN_CLOEXEC);
    show("inotify mask 0", inotify_add_watch(in, at("file"), 0));
    show("inotify ONLYDIR file", inotify_add_watch(in, at("file"), IN_MODIFY | IN_ONLYDIR));
    show("inotify DONT_FOLLOW dangling", inotify_add_watch(in, at("dangling"),
                                                           IN_ATTRIB | IN_DONT_FOLLOW) < 0 ? -1 : 0);
    show("inotify dangling", inotify_add_watch(in, at("dangling"), IN_ATTRIB));
    close(in);
    show("syscall getcwd 0 bytes", syscall(SYS_getcwd, buf, 0));
    show("syscall getcwd 1 byte", syscall(SYS_getcwd, buf, 1));
    if (mkdir(at("gone"), 0755) || chdir(at("gone")) || rmdir(at("gone"))) {
        perror("gone");
        exit(99);
    }
    show("getcwd of a removed dir", syscall(SYS_getcwd, buf, sizeof buf) < 0 ? -1 : 0);
    closed("open x O_CREAT in a removed cwd", open("x", O_RDWR | O_CREAT, 0644));
    show("stat . of a removed cwd", stat(".", &st));
    printf("  nlink %lu\n", (unsigned long)st.st_nlink);
    closed("open . of a removed cwd", open(".", O_RDONLY));
    show("mkdir x in a removed cwd", mkdir("x", 0755));
    show("stat .. of a removed cwd", stat("..", &st));
    int gone = open(".", O_RDONLY | O_DIRECTORY);
    if (chdir("/")) {
        perror("chdir /");
        exit(99);
    }
    show("fstatat(removed dir fd, \".\")", fstatat(gone, ".", &st, 0));
    closed("openat(removed dir fd, x, O_CREAT)", openat(gone, "x", O_RDWR | O_CREAT, 0644));
    close(gone);
    show("chdir back", chdir("/"));
    close(f);
    close(d);
    /* modes given at creation, as stat shows them */
    mode_t modes[] = {01777, 07777, 04755, 02755};
    for (unsigned i = 0; i < sizeof modes / sizeof *modes; i++) {
        char what[64], name[16];
        snprintf(name, sizeof name, "m%o", modes[i]);
        snprintf(what, sizeof what, "mkdir %s", name);
        show(what, mkdir(at(name), modes[i]));
        if (!stat(at(name), &st))
            printf("  mode %o\n", st.st_mode);
        snprintf(name, sizeof name, "f%o", modes[i]);
        snprintf(what, sizeof what, "creat %s", name);
        closed(what, open(at(name), O_WRONLY | O_CREAT, modes[i]));
        if (!stat(at(name), &st))
            printf("  mode %o\n", st.st_mode);
        snprintf(name, sizeof name, "p%o", modes[i]);
        snprintf(what, sizeof what, "mkfifo %s", name);
        show(what, mkfifo(at(name), modes[i]));
        if (!stat(at(name), &st))
            printf("  mode %o\n", st.st_mode);
    }
    struct {
        unsigned long long value;
        unsigned int size, flags;
    } xa = {(unsigned long)buf, sizeof buf, 0};
    show("getxattrat bad at-flags", syscall(464 /* getxattrat */, AT_FDCWD, at("file"), 0x8,
                                            "user.x", &xa, sizeof xa));
    show("getxattrat short args", syscall(464, AT_FDCWD, at("file"), 0, "user.x", &xa, 8));
    show("getxattrat missing", syscall(464, AT_FDCWD, at("file"), 0, "user.x", &xa, sizeof xa));
    printf("listxattrat: %ld\n", syscall(465 /* listxattrat */, AT_FDCWD, at("file"), 0, buf,
                                         sizeof buf));
}

/* An O_CREAT open of what exists, as `who` (and closed). */
static void creat_open(const char *who, const char *name)
{
    char what[96];
    snprintf(what, sizeof what, "%s: O_CREAT %s", who, name);
    closed(what, open(at(name), O_RDWR | O_CREAT | O_NONBLOCK, 0644));
}

/* A symlink or fifo at name with an owner, made as root. */
static void made_link(const char *name, const char *target, uid_t owner)
{
    if ((target ? symlink(target, at(name)) : mkfifo(at(name), 0666)) ||
        (!target && chmod(at(name), 0666))) {
        perror(name);
        exit(99);
    }
    lchown(at(name), owner, owner);   /* emulated: not recorded (no xattr on these) */
}

/* fs.protected_regular, fs.protected_fifos and fs.protected_symlinks as
 * the host sets them (the container shares them): O_CREAT of another's
 * file or fifo in a sticky directory, and following another's symlink
 * there. Root is bound by them too. Symlinks' and fifos' owners are in
 * `protected_links` (emulated identities cannot record them). */
static void protected_setup(void)
{
    made("ps", S_IFDIR | 01777, 0);
    made("pg", S_IFDIR | 01770, 0);
    if (chown(at("pg"), 0, GROUP)) {
        perror("pg");
        exit(99);
    }
    made("ps/rootf", 0666, 0);
    made("ps/uf", 0666, USER);
    made("ps/tf", 0666, 2000);
    made("pg/uf", 0666, USER);
    made("pg/tf", 0666, 2000);
}

static void protected_regular(void)
{
    protected_setup();
    creat_open("root", "ps/rootf");
    creat_open("root", "ps/uf");
    closed("root: open ps/uf", open(at("ps/uf"), O_RDWR));
    creat_open("root", "pg/tf");
    struct open_how how = {.flags = O_RDWR | O_CREAT, .mode = 0644};
    closed("root: openat2 O_CREAT ps/uf", syscall(SYS_openat2, AT_FDCWD, at("ps/uf"), &how,
                                                  sizeof how));
    show("root: creat ps/uf", creat(at("ps/uf"), 0644) < 0 ? -1 : 0);
    fflush(stdout);
    if (fork() == 0) {
        become_user();
        creat_open("user", "ps/rootf");
        creat_open("user", "ps/uf");
        creat_open("user", "ps/tf");
        creat_open("user", "pg/uf");
        creat_open("user", "pg/tf");
        closed("user: O_CREAT|O_EXCL ps/tf", open(at("ps/tf"), O_RDWR | O_CREAT | O_EXCL, 0644));
        exit(0);
    }
    wait(NULL);
}

static void protected_links(void)
{
    struct stat st;
    made("ls", S_IFDIR | 01777, 0);
    made("ls/rootf", 0666, 0);
    made_link("ls/ufifo", NULL, USER);
    made_link("ls/ul", "rootf", USER);
    made_link("ls/tl", "rootf", 2000);
    made_link("ls/rl", "rootf", 0);
    creat_open("root", "ls/ufifo");
    show("root: stat ls/ul", stat(at("ls/ul"), &st));
    show("root: lstat ls/ul", lstat(at("ls/ul"), &st));
    show("root: stat ls/rl", stat(at("ls/rl"), &st));
    fflush(stdout);
    if (fork() == 0) {
        become_user();
        creat_open("user", "ls/ufifo");
        show("user: stat ls/ul", stat(at("ls/ul"), &st));
        show("user: stat ls/tl", stat(at("ls/tl"), &st));
        show("user: stat ls/rl", stat(at("ls/rl"), &st));
        closed("user: open ls/tl", open(at("ls/tl"), O_RDONLY));
        exit(0);
    }
    wait(NULL);
}

/* Events as a watcher on the working directory sees them, for opens,
 * writes and closes the container makes of its files. */
static void print_events(int in, const char *what)
{
    char buf[4096] __attribute__((aligned(8)));
    struct pollfd p = {.fd = in, .events = POLLIN};
    printf("%s:", what);
    while (poll(&p, 1, 200) > 0) {
        ssize_t n = read(in, buf, sizeof buf);
        for (char *c = buf; n > 0 && c < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)c;
            static const struct {
                unsigned m;
                const char *name;
            } names[] = {{IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
                         {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
                         {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},
                         {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"}, {IN_ISDIR, "ISDIR"}};
            printf(" ");
            for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
                if (e->mask & names[i].m)
                    printf("%s|", names[i].name);
            printf("%s", e->len ? e->name : ".");
            c += sizeof *e + e->len;
        }
    }
    printf("\n");
}

static void events(const char *image_file)
{
    int in = inotify_init1(IN_CLOEXEC);
    int w = inotify_add_watch(in, dir, IN_ALL_EVENTS);
    show("watch dir", w);
    int fd = open(at("ev"), O_WRONLY | O_CREAT, 0644);
    write(fd, "x", 1);
    close(fd);
    print_events(in, "create+write+close");
    fd = open(at("ev"), O_RDONLY);
    char c;
    read(fd, &c, 1);
    close(fd);
    print_events(in, "open+read+close");
    chmod(at("ev"), 0600);
    rename(at("ev"), at("ev2"));
    unlink(at("ev2"));
    mkdir(at("evd"), 0755);
    rmdir(at("evd"));
    print_events(in, "chmod+rename+unlink+mkdir+rmdir");
    int wf = inotify_add_watch(in, at("file"), IN_ALL_EVENTS);
    show("watch file", wf);
    fd = open(at("file"), O_WRONLY | O_APPEND);
    write(fd, "more\n", 5);
    close(fd);
    print_events(in, "append to watched file");
    /* a file of the image, watched before the container first writes it */
    int wi = inotify_add_watch(in, image_file, IN_MODIFY | IN_CLOSE_WRITE | IN_OPEN | IN_ATTRIB);
    show("watch image file", wi);
    fd = open(image_file, O_WRONLY | O_APPEND);
    show("open image file for writing", fd);
    write(fd, "# appended\n", 11);
    close(fd);
    print_events(in, "write image file");
    close(in);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    umask(022);
    setup();
    const char *all[] = {"readlink", "openat2", "slashes", "stat", "opath", "events", "user",
                         "realids", "rootcaps", "protected_regular", "protected_links", "calls"};
    const char **which = argc > 1 ? (const char **)argv + 1 : all;
    int n = argc > 1 ? argc - 1 : (int)(sizeof all / sizeof *all);
    for (int i = 0; i < n; i++) {
        printf("== %s\n", which[i]);
        if (!strcmp(which[i], "readlink"))
            readlink_empty();
        else if (!strcmp(which[i], "openat2"))
            openat2_resolve();
        else if (!strcmp(which[i], "slashes"))
            slashes();
        else if (!strcmp(which[i], "stat"))
            stat_flags();
        else if (!strcmp(which[i], "opath"))
            opath_fds();
        else if (!strcmp(which[i], "calls"))
            calls();
        else if (!strcmp(which[i], "events"))
            events("/etc/edges.conf");   /* the test puts it in the image */
        else if (!strcmp(which[i], "user") || !strcmp(which[i], "realids") ||
                 !strcmp(which[i], "rootcaps")) {
            pid_t pid = fork();     /* each changes its credentials */
            if (pid == 0) {
                (which[i][0] == 'u' ? user : which[i][1] == 'e' ? realids : rootcaps)();
                exit(0);
            }
            waitpid(pid, NULL, 0);
        } else if (!strcmp(which[i], "protected_regular") || !strcmp(which[i], "protected_links")) {
            pid_t pid = fork();     /* each makes its own sticky directories */
            if (pid == 0) {
                (which[i][10] == 'r' ? protected_regular : protected_links)();
                exit(0);
            }
            waitpid(pid, NULL, 0);
        } else if (!strcmp(which[i], "ownxattrs"))
            own_xattrs();
        else
            return 2;
    }
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) ? 3 : 0;
}
