/* preadrate.c - the floors for the block device's benchmark: how many preads per second this
 * host does from a file in its page cache, from one thread, the same work slate's disk thread
 * does for the guest's requests. Usage: preadrate FILE COUNT [seq SIZE BUFFERS]: random 4 KiB
 * reads, or sequential SIZE-byte reads into BUFFERS buffers in turn (as the guest's 8 requests in
 * flight land in 8 buffers; dd's one buffer stays in the CPU's cache). Prints reads per second. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 6) {
        fprintf(stderr, "usage: preadrate FILE COUNT [seq SIZE BUFFERS]\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096) {
        perror("preadrate: open");
        return 1;
    }
    long count = atol(argv[2]);
    bool seq = argc == 6 && !strcmp(argv[3], "seq");
    size_t size = seq ? (size_t)atol(argv[4]) : 4096, buffers = seq ? (size_t)atol(argv[5]) : 1;
    uint64_t blocks = (uint64_t)st.st_size / size, rng = 88172645463325252ULL;
    unsigned char *buf = malloc(size * buffers);
    if (!buf || !blocks) {
        fprintf(stderr, "preadrate: out of memory, or a file smaller than %zu bytes\n", size);
        return 1;
    }
    memset(buf, 1, size * buffers); /* (touched once, as the guest's RAM is) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* the guest's own sequence */
        uint64_t block = seq ? (uint64_t)i % blocks : rng % blocks;
        if (pread(fd, buf + (size_t)i % buffers * size, size, (off_t)(block * size)) != (ssize_t)size) {
            perror("preadrate: pread");
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)count / s);
    return 0;
}
