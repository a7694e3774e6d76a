/* preadrate.c - the floor for the block device's random-read benchmark: how many random 4 KiB
 * preads per second this host does from a file in its page cache, from one thread, the same
 * work slate's disk thread does for each request the guest queues. Usage: preadrate FILE COUNT.
 * Prints reads per second. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: preadrate FILE COUNT\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096) {
        perror("preadrate: open");
        return 1;
    }
    long count = atol(argv[2]);
    uint64_t blocks = (uint64_t)st.st_size / 4096, rng = 88172645463325252ULL;
    static unsigned char buf[4096];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* the guest's own sequence */
        if (pread(fd, buf, sizeof(buf), (off_t)(rng % blocks * 4096)) != (ssize_t)sizeof(buf)) {
            perror("preadrate: pread");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)count / s);
    return 0;
}
