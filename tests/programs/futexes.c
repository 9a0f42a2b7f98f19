/* PI and robust futexes, which hold TIDs in user memory (issue 17, class 1):
 * glibc writes its thread's TID (from set_tid_address or clone) into the
 * futex word, and the kernel reads it back as a TID of the caller's PID
 * namespace. Prints one line per case; a native run prints "ok" for each.
 *
 *   pi        a priority-inheritance mutex taken by one thread and waited
 *             for by another (FUTEX_LOCK_PI: the kernel finds the owner
 *             by the TID in the word), then handed over
 *   owner     the word's TID is the owner's gettid()
 *   robust    a robust mutex whose owner thread exits holding it: the
 *             next locker gets EOWNERDEAD (the kernel matched the TID)
 *   robust-pi the same with priority inheritance
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t pi, robust, robust_pi;
static volatile int waiting;

static void init(pthread_mutex_t *m, int protocol, int robustness)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, protocol);
    pthread_mutexattr_setrobust(&a, robustness);
    pthread_mutex_init(m, &a);
}

static void *waiter(void *arg)
{
    (void)arg;
    waiting = 1;
    int rc = pthread_mutex_lock(&pi);      /* blocks in FUTEX_LOCK_PI */
    if (!rc)
        pthread_mutex_unlock(&pi);
    return (void *)(long)rc;
}

static void *dies_holding(void *arg)
{
    return (void *)(long)pthread_mutex_lock((pthread_mutex_t *)arg);
}

static void owner_dies(const char *name, pthread_mutex_t *m)
{
    pthread_t t;
    void *ret;
    pthread_create(&t, NULL, dies_holding, m);
    pthread_join(t, &ret);
    int rc = pthread_mutex_lock(m);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent(m);
        pthread_mutex_unlock(m);
        printf("%s: ok\n", name);
    } else {
        printf("%s: %s (lock in the thread: %s)\n", name, rc ? strerror(rc) : "taken",
               strerror((int)(long)ret));
        if (!rc)
            pthread_mutex_unlock(m);
    }
}

int main(void)
{
    init(&pi, PTHREAD_PRIO_INHERIT, PTHREAD_MUTEX_STALLED);
    init(&robust, PTHREAD_PRIO_NONE, PTHREAD_MUTEX_ROBUST);
    init(&robust_pi, PTHREAD_PRIO_INHERIT, PTHREAD_MUTEX_ROBUST);

    int rc = pthread_mutex_lock(&pi);
    unsigned int word = *(volatile unsigned int *)&pi;    /* __data.__lock */
    printf("owner: %s\n", (word & 0x3fffffff) == (unsigned int)syscall(SYS_gettid) ? "ok" :
           "the word holds another TID");
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    while (!waiting)
        sched_yield();
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);               /* the waiter is in the kernel */
    if (!rc)
        rc = pthread_mutex_unlock(&pi);
    void *ret;
    pthread_join(t, &ret);
    printf("pi: %s\n", !rc && !ret ? "ok" : strerror(rc ? rc : (int)(long)ret));

    owner_dies("robust", &robust);
    owner_dies("robust-pi", &robust_pi);
    return 0;
}
