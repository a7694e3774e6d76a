/* libFuzzer harness: the gdb stub's packet handlers (not only the framing) on whatever a client
 * sends once a packet is framed: register and memory reads and writes with any address and
 * length, breakpoints and watchpoints of every kind, thread selection, queries, vCont, detach.
 * The fake machine has no KVM, so register and memory access fails as it would for a vCPU the
 * kernel refuses; replies go to /dev/null. What must hold: nothing crashes, no breakpoint table
 * overflows, the selected threads stay valid. */
#include "../../src/debug/gdb.c"

#include "fake_machine.h"

#include <assert.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1;
    struct fake_machine *m = fake_machine();
    if (devnull < 0)
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    assert(devnull >= 0);
    fake_machine_reset(m);
    static struct gdb_server g;
    memset(&g, 0, sizeof(g));
    g.client_fd = devnull;
    g.listen_fd = g.notify_fd = -1;
    g.vm = &m->vm;
    g.int3_intercepted = size && (data[0] & 1);
    g.data_breakpoints = size && (data[0] & 2);
    g.warn_limit = (struct ratelimit)RATELIMIT_INIT;
    pthread_mutex_init(&g.lock, NULL);
    /* Packets separated by NUL bytes, each at most a framed packet's length. */
    static char pkt[PACKET_MAX + 1];
    for (size_t pos = size ? 1 : 0; pos < size;) {
        size_t len = strnlen((const char *)data + pos, size - pos);
        if (len > PACKET_MAX)
            len = PACKET_MAX;
        memcpy(pkt, data + pos, len);
        pkt[len] = 0;
        pos += len + 1;
        g.running = false;
        handle_packet(&g, pkt);
        assert(g.cur_g < m->vm.vcpu_count || g.cur_g == 0);
        assert(g.cur_c < m->vm.vcpu_count || g.cur_c == 0);
        g.lost = false;
    }
    pthread_mutex_destroy(&g.lock);
    return 0;
}
