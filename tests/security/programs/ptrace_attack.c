/* An attacker's program for tests/security/test_ptrace.py: a tracer in the
 * container (ptrace is emulated: the supervisor is the real tracer).
 *
 *   rewrite DIR    forks a child that opens /etc/hostname (reading, then
 *                  writing), stats it and execs /bin/true, over and over,
 *                  under PTRACE_TRACEME; at each syscall-entry stop the
 *                  parent rewrites the path, in the child's memory
 *                  (POKEDATA) or by pointing the argument register at a
 *                  copy (SETREGS), to DIR/secret, DIR/victim, DIR/exe, or
 *                  "/../../../DIR/...", so that the call would reach the
 *                  host's file. The child prints what it read ("READ ..."),
 *                  writes "OWNED" into what it opened for writing, says
 *                  "FAILED open|stat ERRNO" for a refused call.
 *   suid PROG      PROG is this program, setuid root: runs "PROG euid" untraced
 *                  ("EUID n": the control), then under PTRACE_TRACEME
 *                  ("TRACED EUID n"): a traced exec must not elevate (the
 *                  tracer could take the elevated program over)
 *   euid           prints "EUID n" with the effective UID
 *   attach PID     PTRACE_ATTACH and PTRACE_SEIZE a host process (not the
 *                  container's), then PEEKDATA, POKEUSER and PTRACE_KILL it;
 *                  prints "ATTACHED" or "REFUSED <errno name>" for each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 40

static char path[4096] = "/etc/hostname";

static void child(void)
{
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
        perror("PTRACE_TRACEME");
        _exit(1);
    }
    raise(SIGSTOP);
    for (int i = 0; i < ROUNDS; i++) {
        char buf[256] = {0};
        strcpy(path, "/etc/hostname");
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            if (read(fd, buf, sizeof buf - 1) > 0)
                printf("READ %s", buf);
            close(fd);
        } else {
            printf("FAILED open %s\n", strerrorname_np(errno));
        }
        strcpy(path, "/etc/hostname");
        fd = open(path, O_WRONLY | O_APPEND);
        if (fd >= 0) {
            if (write(fd, "OWNED\n", 6) == 6)
                printf("WROTE\n");
            close(fd);
        }
        struct stat st;
        strcpy(path, "/etc/hostname");
        if (stat(path, &st) == 0)
            printf("STAT ino=%lu \n", (unsigned long)st.st_ino);
        else
            printf("FAILED stat %s\n", strerrorname_np(errno));
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            strcpy(path, "/bin/true");
            char *argv[] = {"true", NULL};
            execv(path, argv);
            _exit(0);
        }
        waitpid(p, NULL, 0);
    }
    _exit(0);
}

/* Write s into the child at addr, a word at a time. */
static void poke_string(pid_t pid, unsigned long addr, const char *s)
{
    size_t n = strlen(s) + 1;
    for (size_t off = 0; off < n; off += sizeof(long)) {
        long word = 0;
        memcpy(&word, s + off, n - off < sizeof(long) ? n - off : sizeof(long));
        ptrace(PTRACE_POKEDATA, pid, addr + off, word);
    }
}

static void rewrite(const char *dir)
{
    const char *names[] = {"secret", "victim", "hostonly", "exe"};
    pid_t pid = fork();
    if (pid == 0)
        child();
    int status, round = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
        printf("no stop: %#x\n", status);
        return;
    }
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL);
    ptrace(PTRACE_SYSCALL, pid, 0, 0);
    for (;;) {
        pid_t who = waitpid(-1, &status, __WALL);
        if (who < 0)
            break;
        if (!WIFSTOPPED(status))
            continue;
        int sig = WSTOPSIG(status);
        if (sig == (SIGTRAP | 0x80)) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, who, 0, &regs);
            long nr = regs.orig_rax;
            unsigned long long *arg = nr == SYS_openat || nr == SYS_newfstatat ? &regs.rsi :
                                 nr == SYS_open || nr == SYS_stat || nr == SYS_execve ? &regs.rdi : NULL;
            if (arg != NULL && (long)regs.rax == -ENOSYS) {   /* an entry */
                char host[4096];
                const char *name = nr == SYS_execve ? "exe" : names[round % 3];
                snprintf(host, sizeof host, "%s%s/%s", round % 2 ? "/../../../.." : "", dir, name);
                if (round++ % 4 < 2) {
                    poke_string(who, *arg, host);              /* the string in place */
                } else {
                    unsigned long at = (regs.rsp - 8192) & ~15UL;   /* a copy, the register moved */
                    poke_string(who, at, host);
                    *arg = at;
                    ptrace(PTRACE_SETREGS, who, 0, &regs);
                }
            }
            sig = 0;
        } else if (sig == SIGTRAP || sig == SIGSTOP) {
            sig = 0;
        }
        ptrace(PTRACE_SYSCALL, who, 0, sig);
    }
}

static void report(const char *what, long rc)
{
    if (rc < 0)
        printf("REFUSED %s %s\n", what, strerrorname_np(errno));
    else
        printf("ATTACHED %s\n", what);
}

static void attach(pid_t pid)
{
    int status;
    report("PTRACE_ATTACH", ptrace(PTRACE_ATTACH, pid, 0, 0));
    waitpid(pid, &status, WNOHANG | __WALL);
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, 0x400000, 0);
    report("PTRACE_PEEKDATA", word == -1 && errno ? -1 : 0);
    report("PTRACE_POKEUSER", ptrace(PTRACE_POKEUSER, pid, offsetof(struct user_regs_struct, rip), 0));
    report("PTRACE_DETACH", ptrace(PTRACE_DETACH, pid, 0, 0));
    report("PTRACE_SEIZE", ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL));
    report("PTRACE_INTERRUPT", ptrace(PTRACE_INTERRUPT, pid, 0, 0));
    report("PTRACE_KILL", ptrace(PTRACE_KILL, pid, 0, 0));
}

static void suid(const char *prog)
{
    for (int traced = 0; traced < 2; traced++) {
        pid_t pid = fork();
        if (pid == 0) {
            if (traced && ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
                perror("PTRACE_TRACEME");
                _exit(1);
            }
            execl(prog, prog, traced ? "traced-euid" : "euid", (char *)NULL);
            _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) == pid && WIFSTOPPED(status))
            ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(status) == SIGTRAP ? 0 : WSTOPSIG(status));
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "euid") == 0) {
        printf("EUID %d\n", (int)geteuid());
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "traced-euid") == 0) {
        printf("TRACED EUID %d\n", (int)geteuid());
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "suid") == 0)
        suid(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "rewrite") == 0)
        rewrite(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "attach") == 0)
        attach(atoi(argv[2]));
    else {
        fprintf(stderr, "usage: %s rewrite DIR | suid PROG | attach PID\n", argv[0]);
        return 2;
    }
    printf("DONE\n");
    return 0;
}
