/* listen.h - the listening sockets of slate's front ends (gdb stub, monitor): one parser for
 * their addresses, so they are checked before KVM is opened, and one way to open them. */
#ifndef SLATE_LISTEN_H
#define SLATE_LISTEN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

enum listen_style {
    LISTEN_GDB,     /* [HOST:]PORT or unix:PATH; HOST defaults to 127.0.0.1 */
    LISTEN_MONITOR, /* tcp:HOST:PORT or unix:PATH */
};

struct listen_addr {
    bool is_unix;
    struct sockaddr_un un;
    struct sockaddr_in in;
};

/* Parses spec. Returns 0, or -1 with the reason in err (without the option's name). */
int listen_parse(const char *spec, enum listen_style style, struct listen_addr *out, char *err,
                 size_t errlen);

/* Binds and listens (backlog 1). Returns the fd, or -1 with strerror in err. */
int listen_open(const struct listen_addr *addr, char *err, size_t errlen);

/* Parses and opens `spec` for `option` ("--gdb"); logs "OPTION SPEC: why" and returns -1 on
 * failure. A Unix socket's path goes to unix_path (sizeof(struct sockaddr_un.sun_path) bytes,
 * left empty otherwise) so its owner can remove it. */
int listen_start(const char *spec, enum listen_style style, const char *option, char *unix_path);

/* For an accepted client: a send that waits more than LISTEN_SEND_TIMEOUT_MS fails (EAGAIN), so
 * a client that stops reading is dropped instead of holding its thread, and with it the
 * machine's shutdown, forever. */
#define LISTEN_SEND_TIMEOUT_MS 500
void listen_client_timeout(int fd);

/* Sends all of buf to a client of slate's (a socket, or stdio's pipe or terminal). False when the
 * client has gone or stopped reading (a send blocked for LISTEN_SEND_TIMEOUT_MS). Once *stopping
 * is set, only what can be sent at once is sent: a machine that is stopping waits for no client,
 * however slowly and steadily it reads. */
bool listen_send_all(int fd, const void *buf, size_t len, const _Atomic bool *stopping);

struct ratelimit;

/* accept4 for every listener of slate's (VNC, gdb, monitor). When the process is out of
 * descriptors (EMFILE, ENFILE) the pending connection is taken with a spare descriptor kept for
 * this and closed at once, so the listener is not left readable for a loop to spin on; `who`
 * ("VNC") is warned about at a limited rate, and -1 returned after a 50 ms pause. Returns the
 * client's fd, or -1. */
int listen_accept(int listen_fd, struct ratelimit *limit, const char *who);

/* A pipe for a library that takes one with pipe() (libvncserver, for each viewer's thread, which
 * then waits on it with select(): a pipe() that fails, or lands at or past FD_SETSIZE, aborts the
 * whole process in glibc's fd_set check). listen_hand_pipe takes a pipe now, both ends below
 * `below`, and the next pipe() called on this thread gets exactly it (slate defines pipe(), and
 * the executable's symbols come before libc's for every library, modules' too). Descriptors
 * freed just before the library's call could be taken by any other thread meanwhile (other
 * viewers, the accept loops, a guest's user-mode network flows). False when no such pipe can be
 * had. listen_hand_pipe_cancel closes it if the library did not take it. */
bool listen_hand_pipe(int below);
void listen_hand_pipe_cancel(void);

/* Descriptors slate keeps for itself, out of what libslirp may open: listeners, their clients,
 * libvncserver's pipes and threads, disks and outputs. */
#define LISTEN_FD_RESERVE 128
/* The highest descriptor count the whole process should reach: the soft RLIMIT_NOFILE, and
 * never past FD_SETSIZE (libvncserver waits with select()). */
int listen_fd_ceiling(void);

#endif
