/* An attacker's program for tests/security/test_processes.py: run as a
 * container's entrypoint, it makes processes the supervisor should not
 * see, or that should outlive the container, and exits.
 *
 *   untraced-fork    clone(CLONE_UNTRACED): ptrace's fork events skip it
 *   untraced-vfork   clone(CLONE_VFORK|CLONE_VM|CLONE_UNTRACED), whose child
 *                    forks the survivor
 *   untraced-thread  a thread made with CLONE_UNTRACED forks the survivor
 *   clone3-untraced  clone3 with CLONE_UNTRACED in its flags (in memory)
 *   clone3-race      clone3 while a sibling thread flips CLONE_UNTRACED
 *                    into the flags in memory, after any check
 *   daemon           a classic daemon: fork, setsid, fork, ignore every
 *                    signal it can, no parent-death signal
 *   daemon-wait      the same, and the entrypoint then waits for SIGTERM,
 *                    SIGINT or SIGHUP and exits on it
 *
 * A survivor says "ALIVE <host-visible pid>" on stdout and sleeps forever
 * (the test looks for processes running from the container's rootfs once
 * `brandpy run` has returned). The entrypoint prints "SPAWNED" when done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

static void survive(void)
{
    for (int sig = 1; sig < 65; sig++)
        signal(sig, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, 0);
    char line[64];
    int n = snprintf(line, sizeof line, "ALIVE %ld\n", (long)syscall(SYS_getpid));
    (void)!write(1, line, n);
    for (;;)
        pause();
}

static void say(const char *what)
{
    (void)!write(1, what, strlen(what));
}

static long raw_clone(unsigned long flags, void *stack)
{
    return syscall(SYS_clone, flags, stack, NULL, NULL, 0);
}

static int untraced_fork(void)
{
    long pid = raw_clone(CLONE_UNTRACED | SIGCHLD, NULL);
    if (pid == 0)
        survive();
    if (pid < 0)
        printf("clone: %s\n", strerror(errno));
    return 0;
}

static int untraced_vfork(void)
{
    long pid = raw_clone(CLONE_VFORK | CLONE_VM | CLONE_UNTRACED | SIGCHLD, NULL);
    if (pid == 0) {
        /* the vfork child shares our memory: only raw calls, then leave */
        if (syscall(SYS_fork) == 0)
            survive();
        syscall(SYS_exit, 0);
    }
    if (pid < 0)
        printf("clone: %s\n", strerror(errno));
    return 0;
}

static char thread_stack[1 << 16] __attribute__((aligned(16)));
static volatile int thread_done;

static int thread_main(void *arg)
{
    (void)arg;
    if (syscall(SYS_fork) == 0)
        survive();
    thread_done = 1;
    syscall(SYS_exit, 0);
    return 0;
}

static int untraced_thread(void)
{
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_UNTRACED;
    if (clone(thread_main, thread_stack + sizeof thread_stack, flags, NULL) < 0)
        printf("clone: %s\n", strerror(errno));
    for (int i = 0; i < 500 && !thread_done; i++)
        usleep(10000);
    return 0;
}

static long clone3_(struct clone_args *args)
{
    return syscall(SYS_clone3, args, sizeof *args);
}

static int clone3_untraced(void)
{
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_UNTRACED;
    args.exit_signal = SIGCHLD;
    long pid = clone3_(&args);
    if (pid == 0)
        survive();
    if (pid < 0)
        printf("clone3: %s\n", strerror(errno));
    return 0;
}

static struct clone_args shared_args;
static struct utsname name;
static volatile int racing = 1;

static void *flipper(void *arg)
{
    (void)arg;
    while (racing) {
        __atomic_store_n(&shared_args.flags, (uint64_t)CLONE_UNTRACED, __ATOMIC_RELAXED);
        __atomic_store_n(&shared_args.flags, (uint64_t)0, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int clone3_race(void)
{
    pthread_t t;
    shared_args.exit_signal = SIGCHLD;
    if (pthread_create(&t, NULL, flipper, NULL))
        return 2;
    for (int i = 0; i < 300; i++) {
        long pid = clone3_(&shared_args);
        if (pid == 0) {
            /* traced children leave at once; an untraced one survives (it
             * knows itself by its traced calls failing with ENOSYS: there
             * is no tracer to handle them) */
            if (syscall(SYS_uname, &name) == -1 && errno == ENOSYS)
                survive();
            syscall(SYS_exit, 0);
        }
        if (pid < 0) {
            printf("clone3: %s\n", strerror(errno));
            break;
        }
        waitpid((pid_t)pid, NULL, __WALL);
    }
    racing = 0;
    pthread_join(t, NULL);
    return 0;
}

static void daemonize(void)
{
    if (fork() == 0) {
        setsid();
        if (fork() == 0)
            survive();
        _exit(0);
    }
    wait(NULL);
}

static void leave(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (!strcmp(mode, "untraced-fork"))
        rc = untraced_fork();
    else if (!strcmp(mode, "untraced-vfork"))
        rc = untraced_vfork();
    else if (!strcmp(mode, "untraced-thread"))
        rc = untraced_thread();
    else if (!strcmp(mode, "clone3-untraced"))
        rc = clone3_untraced();
    else if (!strcmp(mode, "clone3-race"))
        rc = clone3_race();
    else if (!strcmp(mode, "daemon") || !strcmp(mode, "daemon-wait")) {
        daemonize();
        rc = 0;
    }
    if (rc == 2) {
        fprintf(stderr, "usage: proc_attack MODE (see the source)\n");
        return 2;
    }
    usleep(200000);   /* let the survivor speak */
    int wait = !strcmp(mode, "daemon-wait");
    if (wait) {
        signal(SIGTERM, leave);
        signal(SIGINT, leave);
        signal(SIGHUP, leave);
    }
    say("SPAWNED\n");
    while (wait)
        pause();
    return 0;
}
