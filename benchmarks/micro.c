/* micro: cost of single syscalls inside a container, in microseconds per call.
 *
 *   micro FILE [SECONDS]
 *
 * For each operation (getppid, stat FILE, open+close FILE, pread of FILE) it
 * calls it in batches until SECONDS (default 0.3) have passed and prints
 * "OP USEC" — one line per operation. The loop is bounded by time, not by a
 * fixed count, so each operation takes ~SECONDS natively and also under a
 * runner 300x slower (a fixed count sized for native would take minutes
 * there). Built with gcc -static so it runs in any rootfs. Exits 1 if a call
 * fails, so a runner that breaks the call shows up as a failure, not a speed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32

static const char *file;
static int file_fd;
static off_t file_size;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void op_getppid(void)
{
    /* The raw syscall: glibc could someday cache it. */
    if (syscall(SYS_getppid) < 0)
        die("getppid");
}

static void op_stat(void)
{
    struct stat st;
    if (stat(file, &st) != 0 || st.st_size != file_size)
        die("stat");
}

static void op_open_close(void)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || close(fd) != 0)
        die("open+close");
}

static void op_read(void)
{
    char buf[4096];
    if (pread(file_fd, buf, sizeof buf, 0) != file_size)
        die("pread");
}

static void measure(const char *name, void (*op)(void), double seconds)
{
    /* A short warm-up pays for first-touch page faults and path caches. */
    for (int i = 0; i < BATCH; i++)
        op();
    long calls = 0;
    double start = now(), elapsed;
    do {
        for (int i = 0; i < BATCH; i++)
            op();
        calls += BATCH;
        elapsed = now() - start;
    } while (elapsed < seconds);
    printf("%s %.4f\n", name, elapsed * 1e6 / calls);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: micro FILE [SECONDS]\n");
        return 2;
    }
    file = argv[1];
    double seconds = argc > 2 ? atof(argv[2]) : 0.3;
    struct stat st;
    if (stat(file, &st) != 0)
        die(file);
    file_size = st.st_size;
    if (file_size <= 0 || file_size > 4096) {
        fprintf(stderr, "micro: %s must hold 1..4096 bytes\n", file);
        return 2;
    }
    file_fd = open(file, O_RDONLY | O_CLOEXEC);
    if (file_fd < 0)
        die(file);

    measure("getppid", op_getppid, seconds);
    measure("stat", op_stat, seconds);
    measure("open+close", op_open_close, seconds);
    measure("read", op_read, seconds);
    return 0;
}
