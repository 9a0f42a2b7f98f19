/* The host's executable canary for tests/security/: it lies outside every
 * container, so if a container ever runs it, it says so with a token only
 * this file holds (the harness writes a fresh one over the placeholder in
 * each canary's copy). */
#include <unistd.h>

static const char token[] = "EXEC-TOKEN-PLACEHOLDER-0123456789abcdef\n";

int main(void)
{
    (void)!write(1, token, sizeof token - 1);
    (void)!write(2, token, sizeof token - 1);
    return 0;
}
