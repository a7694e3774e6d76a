/* ui_png.c - screenshots: the display's surface written as a PNG (libpng), for --screenshot, the
 * screenshot hypercall and the monitor's screendump. */
#include "display.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_png(int fd, const uint8_t *rgb, uint32_t w, uint32_t h)
{
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (uint32_t y = 0; y < h; y++)
            png_write_row(png, rgb + (size_t)y * w * 3);
        png_write_end(png, NULL);
        rc = 0;
    }
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int display_png_at(struct display *d, int dirfd, const char *name, bool replace)
{
    if (!d || !name || !*name || strchr(name, '/'))
        return -EINVAL;
    uint32_t w, h;
    uint8_t *rgb = display_rgb(d, &w, &h);
    if (!rgb)
        return -ENOMEM;
    /* A temporary file of slate's own beside the target (O_EXCL: never an existing file or a
     * planted link), renamed into place, so a reader never sees half a PNG. */
    static _Atomic unsigned serial;
    char tmp[300];
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, sizeof(tmp), ".%.200s.%d.%u.part", name, (int)getpid(), atomic_fetch_add(&serial, 1));
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    int rc = fd < 0 ? -errno : write_png(fd, rgb, w, h) < 0 ? -EIO : 0;
    free(rgb);
    if (rc == 0 && (replace ? renameat(dirfd, tmp, dirfd, name)
                            : renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE)) < 0)
        rc = -errno;
    if (fd >= 0 && rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int display_png(struct display *d, const char *path)
{
    char *copy = strdup(path ? path : "");
    if (!copy)
        return -ENOMEM;
    const char *slash = strrchr(copy, '/');
    const char *name = slash ? slash + 1 : copy;
    if (slash)
        copy[slash - copy] = 0;
    int dirfd = open(slash ? (copy[0] ? copy : "/") : ".", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int rc = dirfd < 0 ? -errno : display_png_at(d, dirfd, name, true);
    if (dirfd >= 0)
        close(dirfd);
    if (rc < 0)
        log_warn("--screenshot %s: %s", path, strerror(-rc));
    free(copy);
    return rc;
}
