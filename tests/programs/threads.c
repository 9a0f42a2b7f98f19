/* Debugged by gdb in tests/runtime/test_ptrace.py, built against the image's libc: a thread, libthread_db. */
#include <pthread.h>
#include <stdio.h>

static int shared;

static void *work(void *arg)
{
	int n = *(int *)arg;
	shared += n;
	return NULL;
}

int main(void)
{
	pthread_t t;
	int n = 5;
	pthread_create(&t, NULL, work, &n);
	pthread_join(t, NULL);
	printf("shared=%d\n", shared);
	return 0;
}
