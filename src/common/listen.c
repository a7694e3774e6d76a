/* listen.c - see listen.h. */
#include "listen.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int parse_port(const char *text, uint16_t *port)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (!*text || *end || errno || value < 1 || value > 65535)
        return -1;
    *port = (uint16_t)value;
    return 0;
}

static int parse_ipv4(const char *host, struct in_addr *out)
{
    return inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, out) == 1 ? 0 : -1;
}

static int parse_tcp(const char *spec, const char *hostport, bool host_required,
                     struct sockaddr_in *in, char *err, size_t errlen)
{
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(hostport, ':');
    const char *port_text = colon ? colon + 1 : hostport;
    if (colon) {
        size_t n = (size_t)(colon - hostport);
        if (n == 0 || n >= sizeof(host))
            goto usage;
        memcpy(host, hostport, n);
        host[n] = 0;
    } else if (host_required) {
        goto usage;
    }
    uint16_t port;
    if (parse_port(port_text, &port)) {
        snprintf(err, errlen, "'%s' is not a port number (1-65535)", port_text);
        return -1;
    }
    *in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
    if (parse_ipv4(host, &in->sin_addr)) {
        snprintf(err, errlen, "'%s' is not an IPv4 address", host);
        return -1;
    }
    return 0;
usage:
    (void)spec;
    snprintf(err, errlen, host_required ? "expected stdio, unix:PATH or tcp:HOST:PORT"
                                        : "expected [HOST:]PORT or unix:PATH");
    return -1;
}

int listen_parse(const char *spec, enum listen_style style, struct listen_addr *out, char *err,
                 size_t errlen)
{
    *out = (struct listen_addr){0};
    if (!strncmp(spec, "unix:", 5)) {
        const char *path = spec + 5;
        if (!*path || strlen(path) >= sizeof(out->un.sun_path)) {
            snprintf(err, errlen, "the socket path is empty or longer than %zu bytes",
                     sizeof(out->un.sun_path) - 1);
            return -1;
        }
        out->is_unix = true;
        out->un.sun_family = AF_UNIX;
        strcpy(out->un.sun_path, path);
        return 0;
    }
    if (style == LISTEN_MONITOR) {
        if (strncmp(spec, "tcp:", 4)) {
            snprintf(err, errlen, "expected stdio, unix:PATH or tcp:HOST:PORT");
            return -1;
        }
        return parse_tcp(spec, spec + 4, true, &out->in, err, errlen);
    }
    return parse_tcp(spec, spec, false, &out->in, err, errlen);
}

int listen_open(const struct listen_addr *addr, char *err, size_t errlen)
{
    int fd = socket(addr->is_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (!addr->is_unix && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
        snprintf(err, errlen, "SO_REUSEADDR: %s", strerror(errno));
        close(fd);
        return -1;
    }
    const struct sockaddr *sa = addr->is_unix ? (const struct sockaddr *)&addr->un
                                              : (const struct sockaddr *)&addr->in;
    socklen_t len = addr->is_unix ? sizeof(addr->un) : sizeof(addr->in);
    if (bind(fd, sa, len) < 0 || listen(fd, 1) < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void listen_client_timeout(int fd)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = LISTEN_SEND_TIMEOUT_MS * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* best effort: a pipe has none */
}

/* Stopping: one send that takes what fits now, or nothing. */
static ssize_t send_now(int fd, const void *buf, size_t len)
{
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0 || errno != ENOTSOCK)
        return n;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
        errno = EAGAIN;
        return -1;
    }
    return write(fd, buf, len);
}

bool listen_send_all(int fd, const void *buf, size_t len, const _Atomic bool *stopping)
{
    while (len) {
        bool now = stopping && atomic_load(stopping);
        ssize_t n = now ? send_now(fd, buf, len) : send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf = (const char *)buf + n;
        len -= (size_t)n;
    }
    return true;
}

int listen_start(const char *spec, enum listen_style style, const char *option, char *unix_path)
{
    struct listen_addr addr;
    char err[256];
    int fd = -1;
    if (listen_parse(spec, style, &addr, err, sizeof(err)) == 0 &&
        (fd = listen_open(&addr, err, sizeof(err))) >= 0) {
        if (addr.is_unix)
            strcpy(unix_path, addr.un.sun_path);
        return fd;
    }
    log_error("%s %s: %s", option, spec, err);
    return -1;
}

/* One spare descriptor for the whole process (descriptors are a process-wide resource): given up
 * for a moment to take a connection that could not otherwise be accepted. */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static int spare_fd = -1;

static void take_spare(void)
{
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int listen_accept(int listen_fd, struct ratelimit *limit, const char *who)
{
    pthread_mutex_lock(&spare_lock);
    take_spare();
    pthread_mutex_unlock(&spare_lock);
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
        return fd;
    pthread_mutex_lock(&spare_lock);
    if (spare_fd >= 0) {
        close(spare_fd);
        spare_fd = -1;
        int dropped = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (dropped >= 0)
            close(dropped);
        take_spare();
    }
    pthread_mutex_unlock(&spare_lock);
    log_warn_limited(limit, "%s: out of descriptors; closed a new connection at once", who);
    nanosleep(&(struct timespec){0, 50 * 1000000}, NULL);
    return -1;
}

int listen_fd_ceiling(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > FD_SETSIZE)
        return FD_SETSIZE;
    return (int)rl.rlim_cur;
}

static _Thread_local int pipe_to_hand[2] = {-1, -1};

int pipe(int fds[2])
{
    if (pipe_to_hand[0] < 0)
        return pipe2(fds, 0); /* anyone else's call: what libc's pipe() does */
    fds[0] = pipe_to_hand[0], fds[1] = pipe_to_hand[1];
    pipe_to_hand[0] = pipe_to_hand[1] = -1;
    return 0;
}

bool listen_hand_pipe(int below)
{
    listen_hand_pipe_cancel();
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return false;
    if (fds[0] >= below || fds[1] >= below) {
        close(fds[0]), close(fds[1]);
        return false;
    }
    pipe_to_hand[0] = fds[0], pipe_to_hand[1] = fds[1];
    return true;
}

void listen_hand_pipe_cancel(void)
{
    if (pipe_to_hand[0] >= 0)
        close(pipe_to_hand[0]), close(pipe_to_hand[1]);
    pipe_to_hand[0] = pipe_to_hand[1] = -1;
}
