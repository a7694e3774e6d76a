/* ui_png.c - screenshots: the display's surface written as a PNG (libpng), for --screenshot, the
 * screenshot hypercall and the monitor's screendump. */
#include "display.h"
#include "outfile.h"

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

/* A PNG written as a new file and renamed into place (outfile.h): in dirfd, or at `name` as a
 * path when dirfd is -1. */
static int png_to(struct display *d, int dirfd, const char *name, bool replace)
{
    uint32_t w, h;
    uint8_t *rgb = display_rgb(d, &w, &h);
    if (!rgb)
        return -ENOMEM;
    struct outfile o;
    int fd = dirfd >= 0 ? outfile_create_at(&o, dirfd, name) : outfile_create(&o, name);
    int rc = fd < 0 ? fd : write_png(fd, rgb, w, h) < 0 ? -EIO : 0;
    free(rgb);
    if (!rc)
        rc = outfile_place(&o, replace);
    if (fd >= 0)
        outfile_finish(&o);
    return rc;
}

int display_png_at(struct display *d, int dirfd, const char *name, bool replace)
{
    if (!d || !name || !*name || strchr(name, '/'))
        return -EINVAL;
    return png_to(d, dirfd, name, replace);
}

int display_png(struct display *d, const char *path)
{
    int rc = d && path ? png_to(d, -1, path, true) : -EINVAL;
    if (rc < 0)
        log_warn("--screenshot %s: %s", path, strerror(-rc));
    return rc;
}
