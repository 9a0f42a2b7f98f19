/* Debugged by gdb in tests/runtime/test_ptrace.py: breakpoint, backtrace, next, finish;
 * the vfork before it: gdb keeps its breakpoints past one (PTRACE_EVENT_VFORK_DONE). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static int square(int x)
{
	int y = x * x;
	return y;
}

int main(void)
{
	int a = 7;
	pid_t p = vfork();
	if (p == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	waitpid(p, NULL, 0);
	int b = square(a);
	printf("%d\n", b);
	return 0;
}
