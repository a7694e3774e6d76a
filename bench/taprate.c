/* taprate.c - the floor for the network card's benchmark: how many frames per second this host
 * can write into a TAP device from one thread, the same work slate's NIC thread does for each
 * frame the guest sends. Usage: taprate IFNAME SIZE COUNT. Prints frames per second. */
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: taprate IFNAME SIZE COUNT\n");
        return 2;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[1]);
    if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
        perror("taprate: TUNSETIFF");
        return 1;
    }
    size_t size = (size_t)atoi(argv[2]);
    long count = atol(argv[3]);
    unsigned char frame[1514];
    memset(frame, 0, sizeof(frame));
    memset(frame, 0xff, 6);                      /* broadcast */
    frame[6] = 0x52, frame[7] = 0x54;            /* a locally administered source */
    frame[12] = 0x88, frame[13] = 0xb5;          /* local experimental EtherType */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < count; i++)
        if (write(fd, frame, size) != (ssize_t)size) {
            perror("taprate: write");
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.0f\n", (double)count / s);
    return 0;
}
