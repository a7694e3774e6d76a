/* outfile.h - every file slate writes for the user (--serial file:, --trace-file, --profile,
 * --report, --dump-core, --screenshot, the monitor's dumps) is a file of slate's own: created
 * anew beside its target (O_EXCL | O_NOFOLLOW, a hidden temporary name) and renamed over it. So
 * slate never writes through a link, a hard link, a FIFO or a device planted at the name, and a
 * reader never sees half a file. */
#ifndef SLATE_OUTFILE_H
#define SLATE_OUTFILE_H

#include <stdbool.h>

struct outfile {
    int dirfd;      /* the target's directory */
    bool own_dirfd; /* opened by outfile_create (closed by outfile_finish) */
    char name[256]; /* the target's name in dirfd */
    char tmp[300];  /* the temporary file's name in dirfd ("" once renamed or removed) */
};

/* Creates the temporary file for `name` in dirfd (borrowed). Returns its fd (O_WRONLY, close it
 * yourself), or -errno; -EINVAL for a name with a '/' or too long. */
int outfile_create_at(struct outfile *o, int dirfd, const char *name);
/* The same for a path (its directory is opened here). */
int outfile_create(struct outfile *o, const char *path);

/* Renames the temporary file over the target: over an existing one only when `replace`
 * (-EEXIST otherwise). 0 or -errno; on failure the temporary file is removed. For files written
 * while slate runs (the serial console, traces), call it right after creating: the target then
 * shows the output as it comes. */
int outfile_place(struct outfile *o, bool replace);

/* Removes the temporary file if it was never placed, and closes the directory if it is ours. */
void outfile_finish(struct outfile *o);

/* Writes nothing: whether `path` may become an output. It may not exist yet (its directory must,
 * writable) or be a regular file; a link, a FIFO, a socket, a device or a directory is refused.
 * Logs "OPTION PATH: why" and returns -1, or 0. */
int outfile_check(const char *option, const char *path);

#endif
