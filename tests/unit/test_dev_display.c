/* The display against the fake machine: modes and their registers, refused sizes, text rendered
 * with slate's font (seen in a PNG decoded by libpng), graphics pixels as the guest wrote them,
 * the screenshot hypercall, and the screen offered to the monitor. */
#include "unit.h"

#include "fake_host.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern const struct device_ops display_device;

struct rig {
    struct vm *vm;
    struct device *dev;
    char dir[64];
    int dirfd;
};

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/slate-test-display-XXXXXX");
    assert_non_null(mkdtemp(r->dir));
    r->dirfd = open(r->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    r->vm = fake_vm_new();
    r->vm->cfg.display = true;
    r->dev = fake_add(r->vm, &display_device, 0);
    assert_non_null(r->dev);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    assert_int_equal(system(cmd), 0);
    close(r->dirfd);
    free(r);
    return 0;
}

/* The pixel (x, y) of PNG `name` in the rig's directory, as 0xRRGGBB; sets *w and *h. */
static uint32_t png_pixel(struct rig *r, const char *name, uint32_t x, uint32_t y, uint32_t *w, uint32_t *h)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", r->dir, name);
    png_image image = {.version = PNG_IMAGE_VERSION};
    assert_true(png_image_begin_read_from_file(&image, path));
    image.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(image));
    assert_true(png_image_finish_read(&image, NULL, rgb, 0, NULL));
    *w = image.width, *h = image.height;
    uint8_t *p = rgb + ((size_t)y * image.width + x) * 3;
    uint32_t px = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    free(rgb);
    return px;
}

static void text_mode_registers(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_MODE), SLATE_DISPLAY_TEXT);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_WIDTH), 80);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_HEIGHT), 25);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_PITCH), 160);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_MAX_WIDTH), 1920);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_MAX_HEIGHT), 1080);
}

static void text_is_rendered_with_the_font(void **state)
{
    struct rig *r = *state;
    uint16_t *cells = r->dev->window;
    cells[0] = 0x1F00 | 'H'; /* white on blue */
    fake_write(r->dev, SLATE_DISPLAY_CURSOR, 5 | 2 << 16);
    assert_non_null(r->vm->screenshot);
    assert_int_equal(r->vm->screenshot(r->vm->screen, r->dirfd, "t.png", false), 0);
    uint32_t w, h;
    assert_int_equal(png_pixel(r, "t.png", 1, 1, &w, &h), 0x0000AA); /* background */
    assert_int_equal(w, 640);
    assert_int_equal(h, 400);
    assert_int_equal(png_pixel(r, "t.png", 1, 5, &w, &h), 0xFFFFFF); /* the H's left stroke */
    assert_int_equal(png_pixel(r, "t.png", 43, 47, &w, &h), 0xAAAAAA); /* the cursor's underline */
    /* The file exists now: without `replace` it stays. */
    assert_int_equal(r->vm->screenshot(r->vm->screen, r->dirfd, "t.png", false), -EEXIST);
}

static void graphics_mode_shows_the_window(void **state)
{
    struct rig *r = *state;
    fake_write(r->dev, SLATE_DISPLAY_WIDTH, 320);
    fake_write(r->dev, SLATE_DISPLAY_HEIGHT, 200);
    uint32_t *fb = r->dev->window;
    for (int i = 0; i < 320 * 200; i++)
        fb[i] = i < 320 * 100 ? 0xFF0000 : 0x00FF00;
    fake_write(r->dev, SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_STATUS), 0);
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_PITCH), 1280);
    assert_int_equal(r->vm->screenshot(r->vm->screen, r->dirfd, "g.png", true), 0);
    uint32_t w, h;
    assert_int_equal(png_pixel(r, "g.png", 10, 10, &w, &h), 0xFF0000);
    assert_int_equal(png_pixel(r, "g.png", 10, 150, &w, &h), 0x00FF00);
    assert_int_equal(w, 320);
    assert_int_equal(h, 200);
}

static void bad_sizes_are_refused_and_keep_the_mode(void **state)
{
    struct rig *r = *state;
    const uint32_t sizes[][2] = {{0, 100}, {100, 0}, {1921, 100}, {100, 1081}, {UINT32_MAX, UINT32_MAX}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fake_write(r->dev, SLATE_DISPLAY_WIDTH, sizes[i][0]);
        fake_write(r->dev, SLATE_DISPLAY_HEIGHT, sizes[i][1]);
        fake_write(r->dev, SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
        assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_STATUS), SLATE_DISPLAY_ERROR);
        assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_MODE), SLATE_DISPLAY_TEXT);
    }
    fake_write(r->dev, SLATE_DISPLAY_MODE, 7); /* no such mode */
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_STATUS), SLATE_DISPLAY_ERROR);
    assert_contains(r->vm->last_warning, "mode 7");
    fake_write(r->dev, SLATE_DISPLAY_MODE, SLATE_DISPLAY_TEXT); /* a good one clears ERROR */
    assert_int_equal(fake_read(r->dev, SLATE_DISPLAY_STATUS), 0);
}

static void the_screenshot_hypercall(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_hypercall(r->vm, SLATE_HC_SCREENSHOT), SLATE_EINVAL); /* no --screenshot */
    char path[128];
    snprintf(path, sizeof(path), "%s/shot.png", r->dir);
    r->vm->cfg.screenshot = path;
    assert_int_equal(fake_hypercall(r->vm, SLATE_HC_SCREENSHOT), 0);
    uint32_t w, h;
    png_pixel(r, "shot.png", 0, 0, &w, &h);
    assert_int_equal(w, 640);
    snprintf(path, sizeof(path), "%s/no/such/dir/shot.png", r->dir);
    assert_int_equal(fake_hypercall(r->vm, SLATE_HC_SCREENSHOT), SLATE_EIO);
    r->vm->cfg.screenshot = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(text_mode_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(text_is_rendered_with_the_font, setup, teardown),
        cmocka_unit_test_setup_teardown(graphics_mode_shows_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_sizes_are_refused_and_keep_the_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(the_screenshot_hypercall, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
