/* libFuzzer harness: the monitor's line handling and command parser on whatever a client sends
 * (the monitor may listen on TCP): partial and overlong lines, every command with any argument,
 * numbers that overflow, CPU indexes out of range. No KVM, so memory and register reads fail as
 * they would for an unmapped address. An input whose first byte is odd has a display attached
 * and a --dump-dir (a fresh temporary directory): `screendump` then writes real files, and
 * must write them nowhere else. */
#include "../../src/debug/monitor.c"

#include "fake_machine.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const struct device_ops display_device;

static char dump_path[64];
static void remove_dump_dir(void) { rmdir(dump_path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1;
    static struct device *display;
    static device_screenshot_fn screendump;
    static int dump_dir = -1;
    struct fake_machine *m = fake_machine();
    if (devnull < 0) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        display = fake_device_add(m, &display_device, true); /* its setup offers the screen */
        screendump = m->vm.screenshot;
        snprintf(dump_path, sizeof(dump_path), "/tmp/slate-fuzz-monitor-XXXXXX");
        assert(devnull >= 0 && display && mkdtemp(dump_path));
        dump_dir = open(dump_path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        assert(dump_dir >= 0);
        atexit(remove_dump_dir);
    }
    fake_machine_reset(m);
    bool with_display = size && (data[0] & 1);
    m->cfg.display = with_display;
    m->cfg.dump_dir = with_display ? dump_path : NULL;
    m->vm.screen = with_display ? display : NULL;
    m->vm.screenshot = with_display ? screendump : NULL;
    struct monitor mon = {.listen_fd = -1, .in_fd = -1, .out_fd = devnull, .notify_fd = -1,
                          .dump_dir_fd = with_display ? dump_dir : -1, .vm = &m->vm,
                          .syms_tried = true};
    size_t pos = 0;
    while (pos < size) { /* in pieces, as reads from a socket deliver it */
        size_t chunk = 1 + data[pos] % 97, room = sizeof(mon.line) - mon.line_len;
        if (chunk > size - pos)
            chunk = size - pos;
        if (chunk > room)
            chunk = room;
        memcpy(mon.line + mon.line_len, data + pos, chunk);
        mon.line_len += chunk;
        pos += chunk;
        serve_lines(&mon);
        assert(mon.line_len < sizeof(mon.line));
        assert(mon.cpu < m->vm.vcpu_count);
    }
    close_client(&mon);
    /* Whatever screendump wrote is in the dump directory, and only there: empty it. */
    DIR *dir = fdopendir(dup(dump_dir));
    assert(dir);
    for (struct dirent *e; (e = readdir(dir));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            assert(unlinkat(dump_dir, e->d_name, 0) == 0);
    closedir(dir);
    return 0;
}
