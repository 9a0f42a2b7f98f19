/* What the ptrace test programs beside it share: a wait status in words,
 * and whether the command line names a case (all run without any). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static inline const char *describe(int status)
{
    static char text[64];
    if (WIFSTOPPED(status))
        snprintf(text, sizeof text, "stopped %d event %d", WSTOPSIG(status), status >> 16);
    else if (WIFEXITED(status))
        snprintf(text, sizeof text, "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(text, sizeof text, "killed %d", WTERMSIG(status));
    else
        snprintf(text, sizeof text, "status %#x", status);
    return text;
}

static inline int wanted(int argc, char **argv, const char *name)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return argc == 1;
}
