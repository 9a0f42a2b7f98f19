/* Attached to by gdb -p in tests/runtime/test_ptrace.py: it waits in pause() for ever. */
#include <unistd.h>

static volatile int counter;

static void wait_here(int rounds)
{
	while (counter < rounds)
		pause();
}

int main(void)
{
	wait_here(3);
	return 0;
}
