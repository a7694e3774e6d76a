/* console.c - console backends: stdio (raw terminal, Ctrl-A escapes), file, none. */
#include "console.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define CTRL_A 0x01

/* The terminal state to put back, global because fatal-signal handlers and atexit need it. */
static struct termios saved_termios;
static volatile sig_atomic_t terminal_is_raw;

static void terminal_restore(void)
{
    if (terminal_is_raw) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        terminal_is_raw = 0;
    }
}

static void fatal_signal(int sig)
{
    terminal_restore(); /* tcsetattr is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void terminal_make_raw(void)
{
    if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
        return;
    struct termios raw = saved_termios;
    cfmakeraw(&raw);
    raw.c_oflag |= OPOST; /* keep "\n" -> "\r\n" so guest output reads as usual */
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0)
        return;
    terminal_is_raw = 1;
    atexit(terminal_restore);
    const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        signal(fatal[i], fatal_signal);
}

int console_open(struct console *c, const struct slate_config *cfg)
{
    *c = (struct console){.out_fd = -1, .in_fd = -1};
    pthread_mutex_init(&c->lock, NULL);
    if (cfg->serial == SERIAL_FILE) {
        c->path = cfg->serial_path;
        c->out_fd = outfile_create(&c->file, c->path);
        if (c->out_fd < 0) {
            log_error("--serial file:%s: %s", cfg->serial_path, strerror(-c->out_fd));
            return -1;
        }
        c->close_out = true;
        return 0;
    }
    if (cfg->serial == SERIAL_NONE)
        return 0;
    c->out_fd = STDOUT_FILENO;
    if (fcntl(STDIN_FILENO, F_GETFL) >= 0) {
        c->in_fd = STDIN_FILENO;
        c->in_is_tty = isatty(STDIN_FILENO);
        if (c->in_is_tty)
            terminal_make_raw();
    }
    return 0;
}

void console_begin(struct console *c)
{
    if (!c->path || c->placed)
        return; /* a reset: the file goes on */
    int rc = outfile_place(&c->file, true);
    if (rc)
        log_warn("--serial file:%s: %s (the output is lost)", c->path, strerror(-rc));
    c->placed = true;
}

void console_abandon(struct console *c)
{
    if (c->path && !c->placed)
        outfile_finish(&c->file);
}

void console_close(struct console *c)
{
    terminal_restore();
    if (c->close_out && c->out_fd >= 0)
        close(c->out_fd);
    if (c->path)
        outfile_finish(&c->file);
    c->out_fd = c->in_fd = -1;
}

static void wait_begin(struct console *c)
{
    if (c->wait_begin)
        c->wait_begin(c->wait_opaque);
}

static void wait_end(struct console *c)
{
    if (c->wait_end)
        c->wait_end(c->wait_opaque);
}

/* Waits until out_fd takes bytes; false when the machine stops first. Lock held. */
static bool wait_writable(struct console *c)
{
    bool ok = false;
    wait_begin(c);
    while (!atomic_load(&c->stopping)) {
        struct pollfd pfd = {.fd = c->out_fd, .events = POLLOUT};
        if (poll(&pfd, 1, 100) > 0) { /* 100 ms: how often a stop is noticed */
            ok = true;
            break;
        }
    }
    wait_end(c);
    return ok;
}

int console_redirect(struct console *c, int fd)
{
    pthread_mutex_lock(&c->lock);
    int old = c->out_fd;
    c->out_fd = fd;
    c->out_broken = false;
    pthread_mutex_unlock(&c->lock);
    return old;
}

void console_write(struct console *c, const void *buf, size_t len)
{
    if (pthread_mutex_trylock(&c->lock) != 0) { /* another CPU is writing, maybe stuck */
        wait_begin(c);
        pthread_mutex_lock(&c->lock);
        wait_end(c);
    }
    const uint8_t *p = buf;
    if (c->hash_output) {
        uint64_t h = c->output_hash;
        for (size_t i = 0; i < len; i++)
            h = (h ^ p[i]) * 1099511628211ULL;
        c->output_hash = h;
        /* Bytes time travel runs again were shown the first time. */
        uint64_t shown = c->output_bytes < c->output_high ? c->output_high - c->output_bytes : 0;
        size_t skip = shown < len ? (size_t)shown : len;
        c->output_bytes += len;
        if (c->output_bytes > c->output_high)
            c->output_high = c->output_bytes;
        p += skip, len -= skip;
    }
    if (c->out_fd < 0 || !len) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    while (len && !c->out_broken) {
        /* Never block in write(): a pipe that polls writable takes PIPE_BUF bytes at once. A
         * full one (nobody reads our output) is waited for as a parked CPU. */
        struct pollfd pfd = {.fd = c->out_fd, .events = POLLOUT};
        if (poll(&pfd, 1, 0) == 0 && !wait_writable(c))
            break; /* the machine is stopping: what is left is dropped */
        ssize_t n = write(c->out_fd, p, len < PIPE_BUF ? len : PIPE_BUF);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            /* The reader went away (EPIPE) or the disk is full: the guest keeps running. */
            c->out_broken = true;
            log_warn("console output failed (%s); further output is discarded",
                     n < 0 ? strerror(errno) : "short write");
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&c->lock);
}

/* Ctrl-A x quits, Ctrl-A p pauses or resumes, Ctrl-A Ctrl-A sends one Ctrl-A; anything else
 * after Ctrl-A is dropped. */
static size_t filter_escapes(struct console *c, uint8_t *buf, size_t n, enum console_command *cmd)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = buf[i];
        if (c->escape) {
            c->escape = false;
            if (b == 'x' || b == 'X')
                *cmd = CONSOLE_QUIT;
            else if (b == 'p' || b == 'P')
                *cmd = CONSOLE_PAUSE_TOGGLE;
            else if (b == CTRL_A)
                buf[out++] = b;
        } else if (b == CTRL_A) {
            c->escape = true;
        } else {
            buf[out++] = b;
        }
    }
    return out;
}

ssize_t console_read(struct console *c, uint8_t *buf, size_t cap, enum console_command *cmd)
{
    *cmd = CONSOLE_NONE;
    if (c->in_fd < 0)
        return -1;
    ssize_t n = read(c->in_fd, buf, cap);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    if (!c->in_is_tty)
        return n;
    return (ssize_t)filter_escapes(c, buf, (size_t)n, cmd);
}

void console_run_command(struct console *c, enum console_command cmd)
{
    if (cmd != CONSOLE_NONE && c->command)
        c->command(c->command_opaque, cmd);
}
