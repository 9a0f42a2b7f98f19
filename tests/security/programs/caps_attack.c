/* An attacker's program for tests/security/test_capabilities.py: run as a
 * container's root without CAP_SYS_ADMIN, it uses the xattr namespaces the
 * kernel keeps for CAP_SYS_ADMIN (trusted.*, and security.* but for the
 * file capability, which CAP_SETFCAP allows) on FILE, a file of a volume
 * (the host's), through calls brandpy performs for it: set and remove
 * trusted.pwned and security.pwned, read trusted.secret, list the names.
 * Each prints "NAME = RESULT" ("= -1 Operation not permitted" when
 * refused), a value read as "value: ...", then DONE.
 *
 * With "--bind PORT" it binds 127.0.0.1:PORT, a privileged port, over TCP
 * (brandpy performs the bind) and says "bind = RESULT".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/xattr.h>

static void said(const char *what, long rc)
{
    printf("%s = %ld%s%s\n", what, rc, rc < 0 ? " " : "", rc < 0 ? strerror(errno) : "");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--bind")) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        said("bind", bind(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&sa, sizeof sa));
        printf("DONE\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE | --bind PORT\n", argv[0]);
        return 2;
    }
    const char *file = argv[1];
    char buf[256];
    said("setxattr trusted", setxattr(file, "trusted.pwned", "1", 1, 0));
    said("lsetxattr security", lsetxattr(file, "security.pwned", "1", 1, 0));
    said("removexattr trusted", removexattr(file, "trusted.keep"));
    long n = getxattr(file, "trusted.secret", buf, sizeof buf - 1);
    said("getxattr trusted", n);
    if (n > 0) {
        buf[n] = 0;
        printf("value: %s\n", buf);
    }
    n = listxattr(file, buf, sizeof buf);
    said("listxattr", n);
    for (long i = 0; i < n; i += strlen(buf + i) + 1)
        printf("name: %s\n", buf + i);
    printf("DONE\n");
    return 0;
}
