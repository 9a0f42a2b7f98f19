/* A container's own ptys, many of them, for tests/security/test_ptys.py
 * (stress-ng's pty stressor does the same):
 *
 *   seq N      N ptys in sequence: open /dev/ptmx, grantpt, unlockpt,
 *              ptsname, open the slave by that name, a line each way,
 *              close both; then no name of them is left in /dev/pts
 *   held N     N ptys open at once, each named and opened as above and
 *              listed in /dev/pts; then all closed, and unlisted
 *   release    one pty named and closed; prints "NUMBER n", waits for a
 *              line on stdin (the host took that number meanwhile), then
 *              looks for /dev/pts/n: stat, open, the listing
 *   hangup     a pty whose master it closes while it holds the slave: the
 *              slave must read end of file (or EIO) at once, as on Linux
 *   peer       a pty whose slave it opens from the master (TIOCGPTPEER, as
 *              openpty() does), never asking its number: ttyname() of the
 *              slave names it, that name opens, and /dev/pts lists it
 *   ptmx       a pty made with /dev/pts/ptmx, the devpts' own multiplexer,
 *              which /dev/pts lists
 *   reach PATH another session's terminal, by a path the kernel walks (the
 *              tests break the open handler to hand it the raw path): prints
 *              "OPENED PATH" or "REFUSED PATH errno"
 *   collide H  ptys made and held until one is numbered H (a host terminal's
 *              number: with a devpts of its own the container reaches it),
 *              "OWN H" if /dev/pts/H is then that pty of its own; then
 *              /dev/pts/H opened with a raw open(2) (the tests break the open
 *              handler alone: its ptys come through openat): "MINE PATH",
 *              "OPENED PATH" for another terminal, or "REFUSED PATH errno";
 *              "UNREACHED H" if no pty of its own got that number; then a
 *              child in a session of its own makes that pty its controlling
 *              terminal and opens /dev/tty (openat): "TTY MINE", "TTY OPENED"
 *              for another terminal, or "TTY REFUSED errno"
 *
 * Each mode prints "OK ..." when everything held, else "FAIL ..." lines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MAXHELD 1024

static int failures;

static void fail(const char *what, int i, int err)
{
    printf("FAIL %s #%d: %s\n", what, i, err ? strerrorname_np(err) : "wrong");
    failures++;
}

/* A pty made as ptsname() users make it: the master, its slave opened by
 * name (raw, so one byte crosses as one byte), its number in *n. */
static int make(int i, int *master, int *slave, int *n)
{
    char name[64];
    *master = posix_openpt(O_RDWR | O_NOCTTY);
    if (*master < 0) {
        fail("posix_openpt", i, errno);
        return -1;
    }
    if (grantpt(*master) < 0 || unlockpt(*master) < 0) {
        fail("grantpt/unlockpt", i, errno);
        close(*master);
        return -1;
    }
    if (ptsname_r(*master, name, sizeof name)) {
        fail("ptsname", i, errno);
        close(*master);
        return -1;
    }
    *n = atoi(name + strlen("/dev/pts/"));
    *slave = open(name, O_RDWR | O_NOCTTY);
    if (*slave < 0) {
        fail("open slave", i, errno);
        close(*master);
        return -1;
    }
    struct termios t;
    if (tcgetattr(*slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(*slave, TCSANOW, &t);
    }
    return 0;
}

static int read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            return -1;
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += r;
    }
    return 0;
}

/* A line each way through the pty. */
static void talk(int i, int master, int slave)
{
    char out[32], in[32];
    int len = snprintf(out, sizeof out, "ping %d\n", i);
    if (write(master, out, len) != len || read_all(slave, in, len) || memcmp(in, out, len))
        fail("master to slave", i, errno);
    len = snprintf(out, sizeof out, "pong %d\n", i);
    if (write(slave, out, len) != len || read_all(master, in, len) || memcmp(in, out, len))
        fail("slave to master", i, errno);
}

/* Which of the numbers are in /dev/pts (in[k]), and how many names it has. */
static int listed(const int *numbers, int count, char *in)
{
    DIR *d = opendir("/dev/pts");
    int names = 0;
    memset(in, 0, count);
    if (!d) {
        fail("opendir /dev/pts", 0, errno);
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        names++;
        for (int k = 0; k < count; k++)
            if (atoi(e->d_name) == numbers[k] && e->d_name[0] >= '0' && e->d_name[0] <= '9')
                in[k] = 1;
    }
    closedir(d);
    return names;
}

static void none_left(const int *numbers, int count)
{
    static char in[MAXHELD];
    struct stat st;
    listed(numbers, count, in);
    for (int k = 0; k < count; k++) {
        char name[64];
        snprintf(name, sizeof name, "/dev/pts/%d", numbers[k]);
        if (in[k])
            fail("a closed pty still listed", numbers[k], 0);
        else if (stat(name, &st) == 0)
            fail("a closed pty still named", numbers[k], 0);
    }
}

static void seq(int count)
{
    static int numbers[MAXHELD];
    int distinct = 0;
    for (int i = 0; i < count; i++) {
        int master, slave, n, seen = 0;
        if (make(i, &master, &slave, &n) < 0)
            break;
        talk(i, master, slave);
        close(slave);
        close(master);
        for (int k = 0; k < distinct; k++)
            seen |= numbers[k] == n;
        if (!seen && distinct < MAXHELD)
            numbers[distinct++] = n;
    }
    none_left(numbers, distinct);
    if (!failures)
        printf("OK seq %d (%d numbers)\n", count, distinct);
}

static void held(int count)
{
    static int masters[MAXHELD], slaves[MAXHELD], numbers[MAXHELD];
    static char in[MAXHELD];
    int made = 0;
    for (; made < count; made++)
        if (make(made, &masters[made], &slaves[made], &numbers[made]) < 0)
            break;
    for (int i = 0; i < made; i++)
        talk(i, masters[i], slaves[i]);
    listed(numbers, made, in);
    for (int i = 0; i < made; i++)
        if (!in[i])
            fail("an open pty not listed", numbers[i], 0);
    for (int i = 0; i < made; i++) {
        close(slaves[i]);
        close(masters[i]);
    }
    none_left(numbers, made);
    if (!failures)
        printf("OK held %d\n", made);
}

static void release(void)
{
    int master, slave, n;
    char line[64], name[64];
    static char in[1];
    struct stat st;
    if (make(0, &master, &slave, &n) < 0)
        return;
    close(slave);
    close(master);
    printf("NUMBER %d\n", n);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) {
        fail("no word from the host", 0, 0);
        return;
    }
    snprintf(name, sizeof name, "/dev/pts/%d", n);
    if (stat(name, &st) == 0)
        fail("a released number named", n, 0);
    int fd = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0) {
        fail("a released number opened", n, 0);
        close(fd);
    }
    listed(&n, 1, in);
    if (in[0])
        fail("a released number listed", n, 0);
    if (!failures)
        printf("OK release %d\n", n);
}

static void hangup(void)
{
    int master, slave, n;
    char c;
    if (make(0, &master, &slave, &n) < 0)
        return;
    close(master);
    struct pollfd p = {.fd = slave, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1) {
        fail("no hangup on the slave after its master closed", n, 0);
        return;
    }
    ssize_t r = read(slave, &c, 1);
    if (r != 0 && !(r < 0 && errno == EIO))
        fail("slave read after hangup", n, r < 0 ? errno : 0);
    close(slave);
    if (!failures)
        printf("OK hangup\n");
}

static void peer(void)
{
    int unlock = 0;
    char name[64];
    static char in[1];
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0 || ioctl(master, TIOCSPTLCK, &unlock) < 0) {
        fail("open /dev/ptmx, unlock", 0, errno);
        return;
    }
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) {
        fail("TIOCGPTPEER", 0, errno);
        return;
    }
    if (ttyname_r(slave, name, sizeof name)) {
        fail("ttyname of the slave", 0, errno);
        return;
    }
    int n = atoi(name + strlen("/dev/pts/"));
    int again = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (again < 0) {
        fail("open the slave by its ttyname", n, errno);
    } else if (tcgetattr(again, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(again, TCSANOW, &t);
        talk(0, master, again);
    }
    listed(&n, 1, in);
    if (!in[0])
        fail("the pty not listed", n, 0);
    if (!failures)
        printf("OK peer %s\n", name);
}

static void devpts_ptmx(void)
{
    int unlock = 0, n;
    char name[64];
    static char in[1];
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0) {
        fail("open /dev/pts/ptmx", 0, errno);
        return;
    }
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ptsname_r(master, name, sizeof name)) {
        fail("unlock, ptsname", 0, errno);
        return;
    }
    int slave = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (slave < 0) {
        fail("open the slave", 0, errno);
    } else if (tcgetattr(slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
        talk(0, master, slave);
    }
    DIR *d = opendir("/dev/pts");
    struct dirent *e;
    while (d && (e = readdir(d)))
        in[0] |= !strcmp(e->d_name, "ptmx");
    if (d)
        closedir(d);
    n = atoi(name + strlen("/dev/pts/"));
    if (!in[0])
        fail("ptmx not listed", n, 0);
    if (!failures)
        printf("OK ptmx %s\n", name);
}

static void reach(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        printf("REFUSED %s %s\n", path, strerrorname_np(errno));
        return;
    }
    printf("OPENED %s\n", path);
    close(fd);
}

/* /dev/tty of a session whose controlling terminal is that slave (own):
 * its number is a host terminal's too (collide). */
static void controlling(int slave, const struct stat *own)
{
    pid_t child = fork();
    if (child == 0) {
        struct stat seen;
        if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
            printf("FAIL TIOCSCTTY: %s\n", strerrorname_np(errno));
            _exit(1);
        }
        int fd = (int)syscall(SYS_openat, AT_FDCWD, "/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
            printf("TTY REFUSED %s\n", strerrorname_np(errno));
        else if (fstat(fd, &seen) == 0)
            printf("TTY %s\n", seen.st_dev == own->st_dev && seen.st_ino == own->st_ino
                               ? "MINE" : "OPENED");
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
}

static void collide(int h)
{
    /* as many as the held modes: a busy host's own pty may have a high number */
    int masters[MAXHELD], slaves[MAXHELD], n = -1, k = 0;
    char name[64];
    struct stat own, seen;
    while (k < MAXHELD && n != h) {
        if (make(k, &masters[k], &slaves[k], &n) < 0)
            return;
        k++;
    }
    if (n != h) {
        printf("UNREACHED %d\n", h);
        return;
    }
    fstat(slaves[k - 1], &own);
    snprintf(name, sizeof name, "/dev/pts/%d", h);
    if (stat(name, &seen) == 0 && seen.st_dev == own.st_dev && seen.st_ino == own.st_ino)
        printf("OWN %d\n", h);
    int fd = (int)syscall(SYS_open, name, O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        printf("REFUSED %s %s\n", name, strerrorname_np(errno));
        controlling(slaves[k - 1], &own);
        return;
    }
    fstat(fd, &seen);
    printf("%s %s\n", seen.st_dev == own.st_dev && seen.st_ino == own.st_ino ? "MINE" : "OPENED",
           name);
    controlling(slaves[k - 1], &own);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    int count = argc > 2 ? atoi(argv[2]) : 0;
    if (count > MAXHELD)
        count = MAXHELD;
    if (!strcmp(mode, "seq"))
        seq(count);
    else if (!strcmp(mode, "held"))
        held(count);
    else if (!strcmp(mode, "release"))
        release();
    else if (!strcmp(mode, "hangup"))
        hangup();
    else if (!strcmp(mode, "peer"))
        peer();
    else if (!strcmp(mode, "ptmx"))
        devpts_ptmx();
    else if (!strcmp(mode, "reach") && argc > 2)
        reach(argv[2]);
    else if (!strcmp(mode, "collide") && argc > 2)
        collide(atoi(argv[2]));
    else {
        fprintf(stderr, "usage: %s seq N | held N | release | hangup | peer | ptmx | reach PATH | collide H\n", argv[0]);
        return 2;
    }
    return failures ? 1 : 0;
}
