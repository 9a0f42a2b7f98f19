/* An attacker for tests/security/test_walls.py, run as a container's
 * entrypoint while a handler is deliberately broken (the call reaches the
 * kernel with its raw guest path or PID). Each argument is one attack,
 * NAME:ARG[:ARG2]; each prints one line, "NAME ok [what it got]" or
 * "NAME errno E", so the harness sees exactly which walls held.
 * Raw syscall numbers, so the call broken is the call made. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long rc, const char *got)
{
    if (rc < 0)
        printf("%s errno %d\n", name, errno);
    else
        printf("%s ok %s\n", name, got ? got : "");
    fflush(stdout);
}

static long do_read(const char *path, char *buf, size_t size)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static long do_write(const char *path)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND);
    if (fd < 0)
        return -1;
    long rc = write(fd, "pwned\n", 6);
    close(fd);
    return rc;
}

static long do_list(const char *path, char *buf, size_t size)
{
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    struct dirent *e;
    buf[0] = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strlen(buf) + strlen(e->d_name) + 2 < size) {
            strcat(buf, e->d_name);
            strcat(buf, ",");
        }
    if (d)
        closedir(d);
    return 0;
}

static long do_exec(const char *path, char *buf, size_t size)
{
    int pipefd[2];
    if (pipe(pipefd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        char *argv[] = {(char *)path, "hello:", NULL};
        syscall(SYS_execveat, AT_FDCWD, path, argv, environ, 0);
        printf("exec-failed %d", errno);
        fflush(stdout);
        _exit(1);
    }
    close(pipefd[1]);
    ssize_t n = read(pipefd[0], buf, size - 1);
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (strncmp(buf, "exec-failed ", 12) == 0) {
        errno = atoi(buf + 12);
        return -1;
    }
    return 0;
}

static long do_socket(const char *path, int abstract, int bind_it)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    size_t len = strlen(path);
    if (fd < 0 || len + 2 > sizeof addr.sun_path)
        return -1;
    memcpy(addr.sun_path + (abstract ? 1 : 0), path, len);
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0);
    long rc = syscall(bind_it ? SYS_bind : SYS_connect, fd, &addr, alen);
    if (rc == 0 && !bind_it)
        rc = write(fd, "pwned\n", 6);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    char got[4096];
    if (argc == 2 && strcmp(argv[1], "hello:") == 0) {
        printf("executed\n");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        char *name = argv[i];
        char *a = strchr(name, ':');
        if (!a) {
            fprintf(stderr, "usage: NAME:ARG[:ARG2]...\n");
            return 2;
        }
        *a++ = 0;
        char *b = strchr(a, ':');
        if (b)
            *b++ = 0;
        long rc;
        got[0] = 0;
        if (!strcmp(name, "read"))
            rc = do_read(a, got, sizeof got);
        else if (!strcmp(name, "list"))
            rc = do_list(a, got, sizeof got);
        else if (!strcmp(name, "write"))
            rc = do_write(a);
        else if (!strcmp(name, "truncate"))
            rc = syscall(SYS_truncate, a, 0);
        else if (!strcmp(name, "create")) {
            rc = syscall(SYS_openat, AT_FDCWD, a, O_WRONLY | O_CREAT | O_EXCL, 0644);
            if (rc >= 0)
                close((int)rc);
        } else if (!strcmp(name, "mkdir"))
            rc = syscall(SYS_mkdir, a, 0755);
        else if (!strcmp(name, "mkfifo"))
            rc = syscall(SYS_mknodat, AT_FDCWD, a, S_IFIFO | 0644, 0);
        else if (!strcmp(name, "unlink"))
            rc = syscall(SYS_unlink, a);
        else if (!strcmp(name, "rmdir"))
            rc = syscall(SYS_rmdir, a);
        else if (!strcmp(name, "rename"))
            rc = syscall(SYS_rename, a, b);
        else if (!strcmp(name, "link"))
            rc = syscall(SYS_link, a, b);
        else if (!strcmp(name, "symlink"))
            rc = syscall(SYS_symlink, b, a);
        else if (!strcmp(name, "exec"))
            rc = do_exec(a, got, sizeof got);
        else if (!strcmp(name, "bind"))
            rc = do_socket(a, 0, 1);
        else if (!strcmp(name, "abstract"))
            rc = do_socket(a, 1, 0);
        else if (!strcmp(name, "connect"))
            rc = do_socket(a, 0, 0);
        else if (!strcmp(name, "stat")) {
            struct stat st = {0};
            rc = syscall(SYS_newfstatat, AT_FDCWD, a, &st, 0);
            snprintf(got, sizeof got, "%lld", (long long)st.st_size);
        }
        else if (!strcmp(name, "chmod"))
            rc = syscall(SYS_chmod, a, 0777);
        else if (!strcmp(name, "chown"))
            rc = syscall(SYS_chown, a, 12345, 12345);
        else if (!strcmp(name, "utimes"))
            rc = syscall(SYS_utimensat, AT_FDCWD, a, NULL, 0);
        else if (!strcmp(name, "setxattr"))
            rc = syscall(SYS_setxattr, a, "user.pwned", "1", 1, 0);
        else if (!strcmp(name, "kill"))
            rc = syscall(SYS_kill, atoi(a), SIGKILL);
        else if (!strcmp(name, "pid"))      /* not an attack: who the kernel says we are */
            rc = snprintf(got, sizeof got, "%ld", syscall(SYS_getpid));
        else {
            fprintf(stderr, "unknown attack %s\n", name);
            return 2;
        }
        report(name, rc, got);
    }
    return 0;
}
