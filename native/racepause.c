/* Test-only: the pause between path resolution and its use that
 * BRANDPY_TEST_RACE_PAUSE_US asks for (see brandpy/runtime/racepause.py,
 * the Python side, for why). Read once, when the extension is loaded. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static long pause_us;

__attribute__((constructor)) static void read_pause(void)
{
    const char *v = getenv("BRANDPY_TEST_RACE_PAUSE_US");
    pause_us = v ? strtol(v, NULL, 10) : 0;
    if (pause_us < 0)
        pause_us = 0;
}

void bp_race_pause(void)
{
    if (pause_us)
        usleep(pause_us);
}
