/* libFuzzer harness: the monitor's line handling and command parser on whatever a client sends
 * (the monitor may listen on TCP): partial and overlong lines, every command with any argument,
 * numbers that overflow, CPU indexes out of range. The fake machine has no display, so
 * `screendump` never writes a file, and no KVM, so memory and register reads fail as they
 * would for an unmapped address. */
#include "../../src/monitor.c"

#include "fake_machine.h"

#include <assert.h>
#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1;
    struct fake_machine *m = fake_machine();
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert(devnull >= 0 && !m->cfg.display);
    fake_machine_reset(m);
    struct monitor mon = {.listen_fd = -1, .in_fd = -1, .out_fd = devnull, .notify_fd = -1,
                          .dump_dir_fd = -1, .vm = &m->vm, .syms_tried = true};
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
    return 0;
}
