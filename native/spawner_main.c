/* brandpy/_spawner: the container's spawner (spawner.c) as a program of
 * its own, which bp_spawner_start's child execs. The spawner lives as long
 * as the container; forked from the supervisor and left so, it kept the
 * supervisor's Python image, whose pages became its own as the supervisor
 * wrote to them (about 4 MB of unique memory per container). Exec'd, it
 * holds a few hundred KiB.
 *
 * argv: RULESET FLAGS JOIN_PID PIDS_OF [HOW PATH]... -- [HELPER ARG...]
 * with the control socket at fd 3 and, if RULESET is 1, the Landlock
 * ruleset at fd 4. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "brandpy.h"
#include "internal.h"

int main(int argc, char **argv)
{
    if (argc < 6)
        return 125;
    int ruleset = atoi(argv[1]) ? 4 : -1, flags = atoi(argv[2]);
    int join_pid = atoi(argv[3]), pids_of = atoi(argv[4]);
    struct bp_ns_mount mounts[argc / 2];
    int n = 0, i = 5;
    for (; i + 1 < argc && strcmp(argv[i], "--"); i += 2, n++) {
        mounts[n].how = atoi(argv[i]);
        mounts[n].path = argv[i + 1];
    }
    if (i >= argc || strcmp(argv[i], "--"))
        return 125;
    bp_spawner_run(3, ruleset, mounts, n, flags, i + 1 < argc ? argv + i + 1 : NULL,
                   join_pid, pids_of);
}
