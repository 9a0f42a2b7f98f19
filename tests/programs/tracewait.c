/* A tracer's waits see its tracee's stops, whenever it started waiting
 * (issue 16: as root brandpy lets waits run natively, and traps them only
 * for a process that traces). Prints one line per case; natively:
 *
 *   traceme   the parent blocks in waitpid() first; then its child calls
 *             PTRACE_TRACEME and stops itself: the wait reports the stop
 *   blocked   the same with SIGCHLD blocked in the parent
 *   thread    a second thread blocks in waitpid() for a child the main
 *             thread then attaches to (PTRACE_ATTACH): it reports the stop
 *   seize     PTRACE_SEIZE and PTRACE_INTERRUPT, then a wait: the
 *             interrupt-stop
 *
 * each followed by the tracee's exit status once resumed (or killed).
 * Arguments name the cases to run (all without).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracetest.h"

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static int wait_for(pid_t pid, int options)
{
    int status;
    pid_t got = waitpid(pid, &status, options);
    if (got != pid) {
        perror("waitpid");
        exit(1);
    }
    return status;
}

static void traceme(const char *name, int block)
{
    if (block) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, NULL);
    }
    pid_t child = fork();
    if (child == 0) {
        nap(100);   /* the parent is in its wait by then */
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0)
            _exit(2);
        raise(SIGSTOP);
        _exit(7);
    }
    int status = wait_for(child, 0);
    printf("%s: %s", name, describe(status));
    ptrace(PTRACE_CONT, child, 0, 0);
    printf(", then %s\n", describe(wait_for(child, 0)));
    if (block)
        sigprocmask(SIG_SETMASK, &(sigset_t){0}, NULL);
}

static pid_t target;

static void *waiter(void *out)
{
    *(int *)out = wait_for(target, 0);
    return NULL;
}

static void thread_waits(void)
{
    target = fork();
    if (target == 0) {
        for (;;)
            pause();
    }
    pthread_t t;
    int status = 0;
    pthread_create(&t, NULL, waiter, &status);
    nap(100);   /* the thread is in its wait by then */
    if (ptrace(PTRACE_ATTACH, target, 0, 0) < 0) {
        perror("PTRACE_ATTACH");
        exit(1);
    }
    pthread_join(t, NULL);
    printf("thread: %s", describe(status));
    kill(target, SIGKILL);
    printf(", then %s\n", describe(wait_for(target, 0)));
}

static void seize(void)
{
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    if (ptrace(PTRACE_SEIZE, child, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, child, 0, 0) < 0) {
        perror("PTRACE_SEIZE");
        exit(1);
    }
    printf("seize: %s", describe(wait_for(child, 0)));
    kill(child, SIGKILL);
    printf(", then %s\n", describe(wait_for(child, 0)));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (wanted(argc, argv, "traceme"))
        traceme("traceme", 0);
    if (wanted(argc, argv, "blocked"))
        traceme("blocked", 1);
    if (wanted(argc, argv, "thread"))
        thread_waits();
    if (wanted(argc, argv, "seize"))
        seize();
    return 0;
}
