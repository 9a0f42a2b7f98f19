/* Debugged by gdb in tests/runtime/test_ptrace.py: breakpoint, backtrace, next, finish. */
#include <stdio.h>

static int square(int x)
{
	int y = x * x;
	return y;
}

int main(void)
{
	int a = 7;
	int b = square(a);
	printf("%d\n", b);
	return 0;
}
