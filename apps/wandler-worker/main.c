/* wandler-worker - the executable a process worker runs: the worker loop on an inherited
 * socket. Started by libwandler (never by hand):
 *
 *   wandler-worker --fd N --parent PID   serve the host on fd N; die with process PID
 *   wandler-worker --check               print "wandler-worker PROTOCOL VERSION" and exit 0
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "worker/frame.h"
#include "worker/loop.h"
#include "wandler.h"

static long number(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || end == s || *end || v < 0 ? -1 : v;
}

int main(int argc, char **argv)
{
    long fd = -1, parent = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) {
            printf("wandler-worker %d %s\n", WL_PROTOCOL_VERSION, wandler_version());
            return 0;
        } else if (!strcmp(argv[i], "--fd") && i + 1 < argc) {
            fd = number(argv[++i]);
        } else if (!strcmp(argv[i], "--parent") && i + 1 < argc) {
            parent = number(argv[++i]);
        } else {
            fprintf(stderr, "wandler-worker: started by libwandler only (unknown argument '%s')\n", argv[i]);
            return 2;
        }
    }
    if (fd < 0 || parent < 1) {
        fprintf(stderr, "usage: wandler-worker --fd N --parent PID | --check\n");
        return 2;
    }
    /* die with the host; and if it is already gone, do not serve an orphaned channel */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)parent)
        return 3;
    /* nothing of the host's but the channel and the standard streams */
    for (int other = 3; other < 1024; other++)
        if (other != fd)
            close(other);
    signal(SIGPIPE, SIG_IGN);
    return wl_worker_loop((int)fd);
}
