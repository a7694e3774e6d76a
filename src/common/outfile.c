/* outfile.c - see outfile.h. */
#include "outfile.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_create_at(struct outfile *o, int dirfd, const char *name)
{
    *o = (struct outfile){.dirfd = dirfd};
    if (!*name || strchr(name, '/') || strlen(name) >= sizeof(o->name))
        return -EINVAL;
    strcpy(o->name, name);
    static _Atomic unsigned serial;
    for (int tries = 0; tries < 100; tries++) {
        snprintf(o->tmp, sizeof(o->tmp), ".%.200s.%d.%u.part", name, (int)getpid(),
                 atomic_fetch_add(&serial, 1));
        int fd = openat(dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            break;
    }
    int rc = -errno;
    o->tmp[0] = 0;
    return rc;
}

int outfile_create(struct outfile *o, const char *path)
{
    *o = (struct outfile){.dirfd = -1};
    char *copy = strdup(path), *name_copy = strdup(path);
    int rc = -ENOMEM;
    if (copy && name_copy) {
        const char *dir = dirname(copy), *name = basename(name_copy);
        int dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        rc = dirfd < 0 ? -errno : outfile_create_at(o, dirfd, name);
        if (dirfd >= 0 && rc < 0)
            close(dirfd);
        if (rc >= 0)
            o->own_dirfd = true;
    }
    free(copy);
    free(name_copy);
    return rc;
}

int outfile_place(struct outfile *o, bool replace)
{
    if (!o->tmp[0])
        return -ENOENT;
    int rc = replace ? renameat(o->dirfd, o->tmp, o->dirfd, o->name)
                     : renameat2(o->dirfd, o->tmp, o->dirfd, o->name, RENAME_NOREPLACE);
    rc = rc < 0 ? -errno : 0;
    if (rc)
        unlinkat(o->dirfd, o->tmp, 0);
    o->tmp[0] = 0;
    return rc;
}

void outfile_finish(struct outfile *o)
{
    if (o->tmp[0])
        unlinkat(o->dirfd, o->tmp, 0);
    o->tmp[0] = 0;
    if (o->own_dirfd && o->dirfd >= 0)
        close(o->dirfd);
    o->own_dirfd = false;
    o->dirfd = -1;
}

static const char *file_kind(mode_t mode)
{
    return S_ISLNK(mode) ? "a symbolic link (slate does not write through links)"
           : S_ISDIR(mode) ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO (slate writes only regular files: it would wait for a reader)"
           : S_ISSOCK(mode) ? "a socket (slate writes only regular files)"
           : "a device (slate writes only regular files)";
}

int outfile_check(const char *option, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            log_error("%s %s: is %s", option, path, file_kind(st.st_mode));
            return -1;
        }
        if (access(path, W_OK) < 0) { /* replacing it takes only the directory: ask as cp would */
            log_error("%s %s: %s", option, path, strerror(errno));
            return -1;
        }
    } else if (errno != ENOENT) {
        log_error("%s %s: %s", option, path, strerror(errno));
        return -1;
    }
    char *copy = strdup(path);
    if (!copy) {
        log_error("out of memory");
        return -1;
    }
    const char *dir = dirname(copy);
    int rc = 0;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        log_error("%s %s: the directory %s does not exist", option, path, dir);
        rc = -1;
    } else if (access(dir, W_OK | X_OK) < 0) {
        log_error("%s %s: cannot create it in %s: %s", option, path, dir, strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}
