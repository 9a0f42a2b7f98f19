/* Linux's permission rules for a non-root container user (issue 17,
 * class 2): each line is a call and what Linux answered (0 or the errno's
 * name), so a run under brandpy must print what a native run prints.
 * Starts as root with every capability; `perms SECTION...` runs the named
 * sections (all by default). Works in /tmp/perms.PID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define USER 1000       /* the non-root container user */
#define GROUP 1000

static char dir[64];

static void show(const char *what, long rc)
{
    printf("%s: %s\n", what, rc < 0 ? strerrorname_np(errno) : "0");
}

static void become_user(void)
{
    if (setgroups(0, NULL) || setresgid(GROUP, GROUP, GROUP) || setresuid(USER, USER, USER)) {
        perror("become_user");
        exit(99);
    }
}

/* A copy of `src` at dir/name with `mode`; returns its path. */
static const char *copy(const char *src, const char *name, mode_t mode)
{
    static char path[128];
    char buf[65536];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int in = open(src, O_RDONLY), out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n;
    if (in < 0 || out < 0) {
        perror(src);
        exit(99);
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, n) != n)
            exit(99);
    close(in);
    close(out);
    chmod(path, mode);
    return path;
}

static const char *text(const char *name, const char *body, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, body, strlen(body)) != (ssize_t)strlen(body))
        exit(99);
    close(fd);
    chmod(path, mode);
    return path;
}

/* execve(path) in a child, as USER when `as_user`: the errno, or how the
 * program ended. */
static void try_exec(const char *what, const char *path, int as_user, char *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (as_user)
            become_user();
        char *argv[] = {(char *)path, arg, NULL};
        execve(path, argv, (char *[]){"PATH=/usr/bin:/bin", NULL});
        printf("%s: %s\n", what, strerrorname_np(errno));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        printf("%s: ran, status %#x\n", what, status);
}

static void chroot_section(void)
{
    mkdir(strcat(strcpy((char[96]){0}, dir), "/root"), 0755);
    fflush(stdout);
    if (fork() == 0) {
        show("chroot root", chroot(dir));
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
    fflush(stdout);
    if (fork() == 0) {
        become_user();
        show("chroot user dir", chroot(dir));
        show("chroot user /", chroot("/"));
        show("chroot user missing", chroot("/nonexistent"));
        show("chroot user file", chroot("/bin/sh"));
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
}

static void txtbsy_section(void)
{
    const char *dynamic = access("/bin/true", X_OK) == 0 ? "/bin/true" : "/proc/self/exe";
    struct { const char *name, *src; } progs[] = {
        {"static", "/proc/self/exe"}, {"true", dynamic}};
    for (unsigned i = 0; i < 2; i++) {
        char label[64], path[128];
        strcpy(path, copy(progs[i].src, progs[i].name, 0755));
        int w = open(path, O_WRONLY);
        snprintf(label, sizeof label, "exec %s open for writing", progs[i].name);
        try_exec(label, path, 0, "exit0");
        close(w);
        snprintf(label, sizeof label, "exec %s writer closed", progs[i].name);
        try_exec(label, path, 0, "exit0");
        int r = open(path, O_RDONLY);
        snprintf(label, sizeof label, "exec %s open for reading", progs[i].name);
        try_exec(label, path, 0, "exit0");
        close(r);
    }
    char path[128];
    strcpy(path, text("script", "#!/bin/sh\nexit 0\n", 0755));
    int w = open(path, O_WRONLY);
    try_exec("exec script open for writing", path, 0, NULL);
    close(w);
    try_exec("exec script writer closed", path, 0, NULL);
}

static void noexec_section(void)
{
    for (int as_user = 0; as_user < 2; as_user++) {
        char label[96];
        const char *who = as_user ? "user" : "root";
        const char *dynamic = access("/bin/true", X_OK) == 0 ? "/bin/true" : "/proc/self/exe";
        struct { const char *name, *src; mode_t mode; } files[] = {
            {"elf-0644", "/proc/self/exe", 0644}, {"dyn-0644", dynamic, 0644},
            {"elf-0744", "/proc/self/exe", 0744}, {"dyn-0744", dynamic, 0744}};
        for (unsigned i = 0; i < sizeof files / sizeof *files; i++) {
            snprintf(label, sizeof label, "exec %s as %s", files[i].name, who);
            try_exec(label, copy(files[i].src, files[i].name, files[i].mode), as_user, "exit0");
        }
        struct { const char *name, *body; mode_t mode; } texts[] = {
            {"garbage-0755", "hello\n", 0755}, {"garbage-0644", "hello\n", 0644},
            {"empty-shebang", "#!\n", 0755}, {"missing-interp", "#!/nonexistent\n", 0755},
            {"script-0644", "#!/bin/sh\nexit 0\n", 0644}};
        for (unsigned i = 0; i < sizeof texts / sizeof *texts; i++) {
            snprintf(label, sizeof label, "exec %s as %s", texts[i].name, who);
            try_exec(label, text(texts[i].name, texts[i].body, texts[i].mode), as_user, NULL);
        }
        snprintf(label, sizeof label, "exec directory as %s", who);
        try_exec(label, "/tmp", as_user, NULL);
    }
}

static long capget_net_raw(const char *what)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    long rc = syscall(SYS_capget, &h, d);
    printf("%s: effective %u permitted %u\n", what, d[0].effective >> CAP_NET_RAW & 1,
           d[0].permitted >> CAP_NET_RAW & 1);
    return rc;
}

static long capset_net_raw(int effective, int permitted)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective = effective ? d[0].effective | 1u << CAP_NET_RAW
                               : d[0].effective & ~(1u << CAP_NET_RAW);
    d[0].permitted = permitted ? d[0].permitted | 1u << CAP_NET_RAW
                               : d[0].permitted & ~(1u << CAP_NET_RAW);
    return syscall(SYS_capset, &h, d);
}

static void caps_section(void)
{
    fflush(stdout);
    if (fork() == 0) {
        capget_net_raw("start");
        show("drop effective", capset_net_raw(0, 1));
        capget_net_raw("after drop effective");
        show("raise effective", capset_net_raw(1, 1));
        capget_net_raw("after raise");
        show("drop permitted", capset_net_raw(0, 0));
        show("raise beyond permitted", capset_net_raw(1, 1));
        capget_net_raw("end");
        fflush(stdout);
        _exit(0);
    }
    wait(NULL);
}

static void ids(void)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    getresuid(&r, &e, &s);
    getresgid(&rg, &eg, &sg);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    printf("  uids %u %u %u gids %u %u %u setuid cap: effective %u permitted %u\n",
           r, e, s, rg, eg, sg, d[0].effective >> CAP_SETUID & 1, d[0].permitted >> CAP_SETUID & 1);
}

static void setuid_section(void)
{
    struct { const char *name; uid_t uid; gid_t gid; mode_t mode; } progs[] = {
        {"suid-root", 0, 0, 04755}, {"suid-other", 4321, 0, 04755},
        {"sgid-other", 0, 4321, 02755}, {"suid-noexec-bit", 0, 0, 04744}};
    for (unsigned i = 0; i < sizeof progs / sizeof *progs; i++) {
        const char *path = copy("/proc/self/exe", progs[i].name, 0755);
        if (chown(path, progs[i].uid, progs[i].gid) || chmod(path, progs[i].mode))
            exit(99);
        for (int as_user = 1; as_user >= 0; as_user--) {
            char label[64];
            snprintf(label, sizeof label, "exec %s as %s", progs[i].name,
                     as_user ? "user" : "root");
            printf("%s\n", label);
            try_exec(label, path, as_user, "ids");
        }
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "exit0"))
        return 0;
    if (argc == 2 && !strcmp(argv[1], "ids")) {
        ids();
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(dir, sizeof dir, "/tmp/perms.%d", getpid());
    if (mkdir(dir, 0755)) {
        perror(dir);
        return 99;
    }
    struct { const char *name; void (*run)(void); } sections[] = {
        {"chroot", chroot_section}, {"txtbsy", txtbsy_section}, {"noexec", noexec_section},
        {"caps", caps_section}, {"setuid", setuid_section}};
    for (unsigned i = 0; i < sizeof sections / sizeof *sections; i++) {
        int wanted = argc == 1;
        for (int a = 1; a < argc; a++)
            wanted |= !strcmp(argv[a], sections[i].name);
        if (wanted)
            sections[i].run();
    }
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) ? 98 : 0;
}
