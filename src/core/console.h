/* console.h - the host side of the console: where guest output goes (stdout, a file, nowhere) and
 * where input comes from (stdin, in raw mode when it is a terminal). It outlives a guest reset. */
#ifndef SLATE_CONSOLE_H
#define SLATE_CONSOLE_H

#include "options.h"
#include "outfile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Escapes the user types: Ctrl-A x quits, Ctrl-A p pauses or resumes the machine. */
enum console_command { CONSOLE_NONE, CONSOLE_QUIT, CONSOLE_PAUSE_TOGGLE };

struct console {
    int out_fd; /* -1: output discarded */
    bool close_out;
    int in_fd;  /* -1: no input */
    bool in_is_tty;
    bool escape; /* Ctrl-A seen, waiting for the command key */
    bool out_broken;
    const char *path;     /* --serial file:PATH: a new file, put in place once the machine starts */
    struct outfile file;  /* its temporary file until then */
    bool placed;
    pthread_mutex_t lock; /* one writer at a time, so lines from several CPUs do not mix bytes */
    /* While a writer waits (for the lock, or for a reader that stopped reading our stdout), it
     * is not running guest code: wait_begin/wait_end let the machine count it as parked, so a
     * pause or stop never waits for the reader. Set by the machine; may be NULL. */
    void (*wait_begin)(void *opaque);
    void (*wait_end)(void *opaque);
    void *wait_opaque;
    _Atomic bool stopping; /* the machine is stopping: a blocked write gives up */
    /* With hash_output (--record, --replay): a hash of every byte the guest wrote, wherever it
     * went, which a replay checks at each exit. */
    bool hash_output;
    uint64_t output_hash;
    /* How many bytes the guest wrote, and the most it ever had: time travel goes back (and puts
     * output_bytes back); what it then writes again up to output_high is not shown twice. */
    uint64_t output_bytes, output_high;
    /* Carries out an escape command: machine control sets it (vm_attach_console); may be NULL. */
    void (*command)(void *opaque, enum console_command cmd);
    void *command_opaque;
};

/* Opens the backend chosen by cfg->serial. Logs one line and returns -1 on failure. */
int console_open(struct console *c, const struct slate_config *cfg);
/* The machine is about to start: the --serial file takes PATH's place now (replacing what was
 * there by a rename, never writing through it), not before, so a bad kernel or option leaves an
 * existing file untouched. */
void console_begin(struct console *c);
/* The machine never started: removes the --serial file console_open created. */
void console_abandon(struct console *c);
/* Restores the terminal and closes what console_open opened. */
void console_close(struct console *c);

/* Writes guest output; never fails the guest. When the output cannot take it (a stalled pipe),
 * waits as a parked CPU (wait_begin/wait_end), and gives up when the machine stops. */
void console_write(struct console *c, const void *buf, size_t len);

/* Sends guest output to fd from now on (--each: each case's own file); returns the fd it went
 * to before. The caller keeps owning both. */
int console_redirect(struct console *c, int fd);

/* Reads up to cap input bytes meant for the guest. Returns the count (0: nothing now), or -1 at
 * end of input. Sets *cmd when the user typed an escape, for the reader to pass to
 * console_run_command once it holds no lock (a pause waits for every vCPU). */
ssize_t console_read(struct console *c, uint8_t *buf, size_t cap, enum console_command *cmd);
void console_run_command(struct console *c, enum console_command cmd);

#endif
