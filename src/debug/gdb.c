/* gdb.c - a GDB remote serial protocol stub for the stock gdb (`target remote`).
 *
 * One thread serves one client at a time, in all-stop mode: when any vCPU stops (breakpoint,
 * step, watchpoint, the break hypercall, Ctrl-C from gdb), every vCPU is paused, and the client
 * sees each vCPU as a thread (id = CPU index + 1). Registers and memory are read and written only
 * while the machine is paused, so every vCPU ioctl happens outside KVM_RUN. Software breakpoints
 * are int3 bytes the stub writes into guest RAM (KVM_GUESTDBG_USE_SW_BP routes #BP to us), so
 * they work from the first instruction, in real mode too; hardware breakpoints and watchpoints
 * use the four debug registers through KVM_SET_GUEST_DEBUG. */
#include "gdb.h"
#include "gdb_proto.h"
#include "gdb_x86.h"
#include "listen.h"
#include "debug_room.h"
#include "timetravel.h"

#include "vm.h"
#include "x86.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PACKET_MAX GDB_PACKET_MAX /* advertised as PacketSize; longer packets are refused */
#define RX_MAX (2 * PACKET_MAX)
#define SW_BPS_MAX 256
#define SIGTRAP_NUM 5
#define SIGINT_NUM 2
#define SIGSEGV_NUM 11

struct sw_bp {
    bool used;
    uint64_t addr;
    uint8_t *host; /* the byte in guest RAM that holds our int3 */
    uint8_t saved;
};

/* A write watchpoint kept by single-stepping, where KVM ignores data breakpoints. */
struct soft_watch {
    bool used;
    uint64_t addr;
    unsigned len;
    uint8_t value[8];
};

struct gdb_server {
    /* What this KVM can do (probed once): nested KVM such as PVM may deliver int3 to the guest
     * instead of to us, and may ignore data breakpoints. */
    bool int3_intercepted;
    bool data_breakpoints;
    int listen_fd;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    bool wait_first; /* --gdb-wait and the first boot has not started yet */
    int client_fd;
    int notify_fd; /* eventfd: a vCPU stopped, or the machine is stopping */
    pthread_t thread;
    bool thread_started;
    struct vm *vm;

    pthread_mutex_t lock; /* guards the stop record, written by vCPU threads */
    bool stop_pending;
    unsigned stop_cpu;
    int stop_signal;
    uint64_t watch_addr;
    enum hw_kind watch_kind;
    bool watch_hit;

    struct ratelimit warn_limit; /* a client can send bad packets without end */
    bool lost;         /* a send failed: the client left or stopped reading; detach it */
    bool running;      /* the client was told the machine runs; a stop reply is owed */
    bool no_ack;       /* QStartNoAckMode */
    unsigned cur_g;    /* thread for registers and memory */
    unsigned cur_c;    /* thread for step */
    struct sw_bp sw[SW_BPS_MAX];
    struct hw_bp hw[HW_SLOTS];
    struct soft_watch soft[HW_SLOTS];
    bool soft_stepping; /* continuing by single steps to check soft watchpoints */
    /* On a replay: reverse execution. Breakpoints and watchpoints are then looked for at every
     * instruction by the time-travel engine, none goes into guest memory or debug registers. */
    struct timetravel *tt;
    uint64_t stop_dr6;
    char rx[RX_MAX];
    size_t rx_len;
    char reply[2 * PACKET_MAX + 64];
};

/* ---- packets ---------------------------------------------------------------------------------- */

/* A machine that is stopping waits for no client (listen_send_all). */
static bool send_all(struct gdb_server *g, const char *buf, size_t len)
{
    return listen_send_all(g->client_fd, buf, len, &g->vm->stopping);
}

static void send_packet(struct gdb_server *g, const char *data)
{
    if (g->client_fd < 0 || g->lost)
        return;
    size_t len;
    char *frame = gdb_frame(data, &len);
    if (frame && !send_all(g, frame, len))
        g->lost = true; /* it left or stopped reading: detached by the thread's loop */
    free(frame);
}

/* The next item from the client; answers acks unless in no-ack mode. */
static enum gdb_item next_item(struct gdb_server *g, char *out)
{
    char ack;
    enum gdb_item item = gdb_take_item(g->rx, &g->rx_len, out, &ack);
    if (ack && (!g->no_ack || ack == '-') && !g->lost && !send_all(g, &ack, 1))
        g->lost = true;
    if (g->lost)
        return GDB_ITEM_NONE;
    if (ack == '-')
        log_warn_limited(&g->warn_limit, "gdb: dropped a packet with a bad checksum or length");
    return item;
}

/* ---- guest memory, breakpoints, debug registers ------------------------------------------------ */

static struct vcpu *thread_cpu(struct gdb_server *g, unsigned index)
{
    return &g->vm->vcpus[index < g->vm->vcpu_count ? index : 0];
}

static bool read_memory(struct gdb_server *g, uint64_t addr, uint8_t *out, size_t len)
{
    return vcpu_read_virtual(thread_cpu(g, g->cur_g), addr, out, len) == len;
}

/* All or nothing (vcpu_write_virtual translates every page first). */
static bool write_memory(struct gdb_server *g, uint64_t addr, const uint8_t *in, size_t len)
{
    return vcpu_write_virtual(thread_cpu(g, g->cur_g), addr, in, len);
}

static bool set_hw(struct gdb_server *g, bool insert, enum hw_kind kind, uint64_t addr, unsigned len);
static bool receive(struct gdb_server *g);

/* The software breakpoint slot for addr: its own (*exists) or a free one; NULL when all are used. */
static struct sw_bp *sw_slot(struct gdb_server *g, uint64_t addr, bool *exists)
{
    struct sw_bp *free_slot = NULL;
    for (int i = 0; i < SW_BPS_MAX; i++) {
        if (g->sw[i].used && g->sw[i].addr == addr)
            return *exists = true, &g->sw[i];
        if (!g->sw[i].used && !free_slot)
            free_slot = &g->sw[i];
    }
    *exists = false;
    return free_slot;
}

/* The time travel engine, when it runs the CPU: on a replay, or a recording stopped by its crash
 * (a recording that runs is debugged as any run). */
static bool reversible(const struct gdb_server *g) { return timetravel_ready(g->tt); }

/* A breakpoint in a debug register, not an int3 in memory: where KVM would let the int3 reach the
 * guest, and while recording (the log and the run's checkpoints keep the guest's own bytes). */
static bool exec_bp_in_dr(const struct gdb_server *g) { return !reversible(g) && (!g->int3_intercepted || g->tt); }

static bool insert_sw(struct gdb_server *g, uint64_t addr)
{
    if (exec_bp_in_dr(g))
        return set_hw(g, true, HW_EXEC, addr, 1);
    bool exists;
    struct sw_bp *slot = sw_slot(g, addr, &exists);
    if (exists)
        return true;
    if (slot && reversible(g)) { /* a replay's memory is the recording's: the engine compares RIP instead */
        *slot = (struct sw_bp){.used = true, .addr = addr};
        return true;
    }
    uint8_t *host = vcpu_gva_to_ram(thread_cpu(g, g->cur_g), addr, 1);
    if (!slot || !host)
        return false;
    *slot = (struct sw_bp){.used = true, .addr = addr, .host = host, .saved = *host};
    *host = 0xCC; /* int3 */
    return true;
}

static bool remove_sw(struct gdb_server *g, uint64_t addr)
{
    if (exec_bp_in_dr(g))
        return set_hw(g, false, HW_EXEC, addr, 1);
    for (int i = 0; i < SW_BPS_MAX; i++) {
        if (g->sw[i].used && g->sw[i].addr == addr) {
            if (g->sw[i].host)
                *g->sw[i].host = g->sw[i].saved;
            g->sw[i].used = false;
            return true;
        }
    }
    /* (a recording that crashed is a replay now: a breakpoint set before is in a debug register) */
    return set_hw(g, false, HW_EXEC, addr, 1);
}

static bool set_hw(struct gdb_server *g, bool insert, enum hw_kind kind, uint64_t addr, unsigned len)
{
    if (kind != HW_EXEC && len != 1 && len != 2 && len != 4 && len != 8)
        return false;
    for (int i = 0; i < HW_SLOTS; i++) {
        struct hw_bp *h = &g->hw[i];
        if (!insert && h->used && h->addr == addr && h->kind == kind) {
            h->used = false;
            return true;
        }
        if (insert && !h->used) {
            *h = (struct hw_bp){.used = true, .addr = addr, .len = len, .kind = kind};
            return true;
        }
    }
    return false;
}

static bool read_memory(struct gdb_server *g, uint64_t addr, uint8_t *out, size_t len);

static bool set_soft_watch(struct gdb_server *g, bool insert, uint64_t addr, unsigned len)
{
    if (len != 1 && len != 2 && len != 4 && len != 8)
        return false;
    for (int i = 0; i < HW_SLOTS; i++) {
        struct soft_watch *w = &g->soft[i];
        if (!insert && w->used && w->addr == addr) {
            w->used = false;
            return true;
        }
        if (insert && !w->used) {
            *w = (struct soft_watch){.used = true, .addr = addr, .len = len};
            return read_memory(g, addr, w->value, len) || (w->used = false);
        }
    }
    return false;
}

/* Which soft watchpoint's memory changed since the last look (updating the snapshot), or -1. */
static int soft_watch_changed(struct gdb_server *g)
{
    for (int i = 0; i < HW_SLOTS; i++) {
        struct soft_watch *w = &g->soft[i];
        uint8_t now[8];
        if (!w->used || !read_memory(g, w->addr, now, w->len) || !memcmp(now, w->value, w->len))
            continue;
        memcpy(w->value, now, w->len);
        return i;
    }
    return -1;
}

static bool any_soft_watch(const struct gdb_server *g)
{
    for (int i = 0; i < HW_SLOTS; i++)
        if (g->soft[i].used)
            return true;
    return false;
}

/* Programs every vCPU's guest-debug state; `step` may be NULL. The machine is paused. */
static void apply_debug(struct gdb_server *g, struct vcpu *step, bool enable)
{
    struct kvm_guest_debug dbg = {0};
    if (reversible(g)) /* (the engine runs the CPU) */
        enable = false, step = NULL;
    if (enable) {
        dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP;
        uint64_t dr7 = gdb_dr7(g->hw);
        if (dr7) {
            dbg.control |= KVM_GUESTDBG_USE_HW_BP;
            for (int i = 0; i < HW_SLOTS; i++)
                dbg.arch.debugreg[i] = g->hw[i].used ? g->hw[i].addr : 0;
            dbg.arch.debugreg[7] = dr7;
        }
    }
    for (unsigned i = 0; i < g->vm->vcpu_count; i++) {
        struct vcpu *cpu = &g->vm->vcpus[i];
        struct kvm_guest_debug d = dbg;
        if (cpu == step) /* interrupts stay pending during a step, as with QEMU's gdbstub */
            d.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
        int rc = vcpu_set_debug(cpu, DEBUG_GDB, &d); /* the arbiter keeps the monitor's wishes */
        if (rc < 0)
            log_warn("gdb: KVM_SET_GUEST_DEBUG on cpu %u: %s", i, strerror(-rc));
    }
}

/* ---- stops -------------------------------------------------------------------------------------- */

static void record_stop(struct gdb_server *g, struct vcpu *cpu, int sig)
{
    pthread_mutex_lock(&g->lock);
    if (!g->stop_pending) {
        g->stop_dr6 = 0;
        g->stop_pending = true;
        g->stop_cpu = cpu->index;
        g->stop_signal = sig;
        g->watch_hit = false;
    }
    pthread_mutex_unlock(&g->lock);
}

static void stop_reply(struct gdb_server *g)
{
    char buf[96];
    pthread_mutex_lock(&g->lock);
    int n = snprintf(buf, sizeof(buf), "T%02x", g->stop_signal);
    if (g->watch_hit)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s:%" PRIx64 ";",
                      g->watch_kind == HW_WRITE ? "watch" : "awatch", g->watch_addr);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "thread:%x;", g->stop_cpu + 1);
    g->cur_g = g->cur_c = g->stop_cpu;
    g->stop_pending = false;
    pthread_mutex_unlock(&g->lock);
    send_packet(g, buf);
}

/* The debug-exit hook: a breakpoint, a watchpoint or gdb's own step. A step someone else asked
 * for (the monitor's) is not gdb's. */
static bool gdb_debug_exit(void *opaque, struct vcpu *cpu)
{
    struct gdb_server *g = opaque;
    struct kvm_debug_exit_arch *dbg = &cpu->run->debug.arch;
    if (dbg->exception == 1 && !(dbg->dr6 & 0xF) &&
        !vcpu_debug_wanted(cpu, DEBUG_GDB, KVM_GUESTDBG_SINGLESTEP))
        return false;
    if (dbg->exception == 3 && !vcpu_debug_wanted(cpu, DEBUG_GDB, KVM_GUESTDBG_USE_SW_BP))
        return false;
    if (dbg->exception == 3) {
        bool ours = false;
        for (int i = 0; i < SW_BPS_MAX; i++)
            ours |= g->sw[i].used && g->sw[i].addr == dbg->pc;
        if (!ours) {
            /* The guest's own int3: report it past the instruction, as a trap is. */
            cpu->run->s.regs.regs.rip++;
            cpu->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
        }
    }
    record_stop(g, cpu, SIGTRAP_NUM);
    pthread_mutex_lock(&g->lock);
    if (g->stop_cpu == cpu->index)
        g->stop_dr6 = dbg->exception == 1 ? dbg->dr6 : 0;
    pthread_mutex_unlock(&g->lock);
    if (dbg->exception == 1 && (dbg->dr6 & 0xF)) {
        for (int i = 0; i < HW_SLOTS; i++) {
            if ((dbg->dr6 & (1u << i)) && g->hw[i].used && g->hw[i].kind != HW_EXEC) {
                pthread_mutex_lock(&g->lock);
                if (g->stop_cpu == cpu->index) {
                    g->watch_hit = true;
                    g->watch_addr = g->hw[i].addr;
                    g->watch_kind = g->hw[i].kind;
                }
                pthread_mutex_unlock(&g->lock);
            }
        }
    }
    vm_request_hold(cpu->vm, HOLD_GDB);
    eventfd_write(g->notify_fd, 1);
    return true;
}

/* SLATE_HC_DEBUG_BREAK: stops here when a client is attached (1), else nothing happens (0). */
static int64_t gdb_break_hypercall(void *opaque, struct vcpu *cpu, const uint64_t args[4])
{
    struct gdb_server *g = opaque;
    (void)args;
    if (g->client_fd < 0)
        return 0;
    record_stop(g, cpu, SIGTRAP_NUM);
    vm_request_hold(cpu->vm, HOLD_GDB);
    eventfd_write(g->notify_fd, 1);
    return 1;
}

/* --on-crash pause: a client waiting on a continue hears of the crash as SIGSEGV (the machine
 * stays for it to look at and, recorded, to go back in). */
static void gdb_notify_crash(void *opaque, struct vcpu *cpu, const char *what)
{
    struct gdb_server *g = opaque;
    (void)what;
    if (g->client_fd < 0 || !cpu->vm->cfg->on_crash_pause)
        return;
    record_stop(g, cpu, SIGSEGV_NUM);
    vm_request_hold(cpu->vm, HOLD_GDB);
    eventfd_write(g->notify_fd, 1);
}

static void gdb_notify_stop(void *opaque)
{
    struct gdb_server *g = opaque;
    eventfd_write(g->notify_fd, 1);
}

/* ---- the packet handlers ------------------------------------------------------------------------ */

static void reply_registers(struct gdb_server *g)
{
    struct gdb_regs st;
    if (!gdb_load_state(thread_cpu(g, g->cur_g), &st)) {
        send_packet(g, "E01");
        return;
    }
    char *p = g->reply;
    uint8_t bytes[16];
    for (int n = 0; n < REG_COUNT; n++)
        p = gdb_put_hex(p, bytes, gdb_reg_bytes(&st, n, bytes));
    send_packet(g, g->reply);
}

static void reply_one_register(struct gdb_server *g, const char *args)
{
    uint64_t n;
    struct gdb_regs st;
    uint8_t bytes[16];
    size_t size;
    if (!gdb_parse_hex(args, &n) || n >= REG_COUNT || !gdb_load_state(thread_cpu(g, g->cur_g), &st) ||
        !(size = gdb_reg_bytes(&st, (int)n, bytes))) {
        send_packet(g, "E01");
        return;
    }
    gdb_put_hex(g->reply, bytes, size);
    send_packet(g, g->reply);
}

/* P n=value: general registers, RIP and RFLAGS can be written. */
static void write_register(struct gdb_server *g, const char *args)
{
    uint64_t n;
    const char *p = gdb_parse_hex(args, &n);
    uint8_t bytes[8] = {0};
    uint64_t v;
    if (!p || *p != '=' || n > REG_EFLAGS || !gdb_hex_bytes(p + 1, bytes, n == REG_EFLAGS ? 4 : 8)) {
        send_packet(g, "E01");
        return;
    }
    memcpy(&v, bytes, 8);
    send_packet(g, gdb_set_register(thread_cpu(g, g->cur_g), (int)n, v) ? "OK" : "E01");
}

static void reply_memory(struct gdb_server *g, const char *args)
{
    uint64_t addr, len;
    const char *p = gdb_parse_hex(args, &addr);
    if (!p || *p != ',' || !gdb_parse_hex(p + 1, &len) || len > PACKET_MAX / 2 - 16) {
        send_packet(g, "E01");
        return;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf || !read_memory(g, addr, buf, len))
        send_packet(g, "E14"); /* EFAULT: unmapped, or not memory (MMIO, unclaimed) */
    else {
        gdb_put_hex(g->reply, buf, len);
        send_packet(g, g->reply);
    }
    free(buf);
}

static void handle_write_memory(struct gdb_server *g, const char *args)
{
    uint64_t addr, len;
    const char *p = gdb_parse_hex(args, &addr);
    if (!p || *p != ',' || !(p = gdb_parse_hex(p + 1, &len)) || *p != ':' || len > PACKET_MAX / 2 ||
        strlen(p + 1) != 2 * len) {
        send_packet(g, "E01");
        return;
    }
    uint8_t *buf = malloc(len ? len : 1);
    for (size_t i = 0; buf && i < len; i++) {
        int hi = gdb_hexval(p[1 + 2 * i]), lo = gdb_hexval(p[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(buf);
            send_packet(g, "E01");
            return;
        }
        buf[i] = (uint8_t)(hi << 4 | lo);
    }
    send_packet(g, buf && write_memory(g, addr, buf, len) ? "OK" : "E14");
    free(buf);
}

/* Z/z type,addr,kind */
static void handle_breakpoint(struct gdb_server *g, bool insert, const char *args)
{
    uint64_t type, addr, kind;
    const char *p = gdb_parse_hex(args, &type);
    if (!p || *p != ',' || !(p = gdb_parse_hex(p + 1, &addr)) || *p != ',' || !gdb_parse_hex(p + 1, &kind)) {
        send_packet(g, "E01");
        return;
    }
    bool ok;
    switch (type) {
    case 0: ok = insert ? insert_sw(g, addr) : remove_sw(g, addr); break;
    case 1: ok = set_hw(g, insert, HW_EXEC, addr, 1); break;
    case 2:
        if (!insert && set_hw(g, false, HW_WRITE, addr, (unsigned)kind)) { /* (set before a recording turned) */
            ok = true;
            break;
        }
        ok = g->data_breakpoints && !reversible(g) ? set_hw(g, insert, HW_WRITE, addr, (unsigned)kind)
                                 : set_soft_watch(g, insert, addr, (unsigned)kind);
        break;
    case 4:
        if (!g->data_breakpoints || reversible(g)) {
            send_packet(g, ""); /* a read leaves no trace to compare: not without the hardware */
            return;
        }
        ok = set_hw(g, insert, HW_ACCESS, addr, (unsigned)kind);
        break;
    default: send_packet(g, ""); return; /* read watchpoints: x86 has none */
    }
    send_packet(g, ok ? "OK" : "E0e");
}

static void reply_features(struct gdb_server *g, const char *args)
{
    uint64_t off, len;
    const char *p = strchr(args, ':');
    if (strncmp(args, "target.xml:", 11) || !(p = gdb_parse_hex(p + 1, &off)) || *p != ',' ||
        !gdb_parse_hex(p + 1, &len)) {
        send_packet(g, "E00");
        return;
    }
    size_t total = strlen(gdb_target_xml);
    if (off >= total) {
        send_packet(g, "l");
        return;
    }
    if (len > PACKET_MAX - 8)
        len = PACKET_MAX - 8;
    size_t n = total - off < len ? total - off : len;
    g->reply[0] = off + n < total ? 'm' : 'l';
    memcpy(g->reply + 1, gdb_target_xml + off, n);
    g->reply[1 + n] = 0;
    send_packet(g, g->reply);
}

static bool valid_thread(struct gdb_server *g, uint64_t id) { return id >= 1 && id <= g->vm->vcpu_count; }

/* H g|c THREAD: -1 and 0 mean "any". */
static void set_thread(struct gdb_server *g, const char *args)
{
    char op = args[0];
    uint64_t id = 0;
    if (!strcmp(args + 1, "-1") || !strcmp(args + 1, "0")) {
        send_packet(g, "OK");
        return;
    }
    if (!gdb_parse_hex(args + 1, &id) || !valid_thread(g, id) || (op != 'g' && op != 'c')) {
        send_packet(g, "E01");
        return;
    }
    if (op == 'g')
        g->cur_g = (unsigned)id - 1;
    else
        g->cur_c = (unsigned)id - 1;
    send_packet(g, "OK");
}

static void reply_thread_list(struct gdb_server *g)
{
    char *p = g->reply;
    *p++ = 'm';
    for (unsigned i = 0; i < g->vm->vcpu_count && p < g->reply + sizeof(g->reply) - 16; i++)
        p += sprintf(p, "%s%x", i ? "," : "", i + 1);
    send_packet(g, g->reply);
}

/* ---- reverse execution on a replay -------------------------------------------------------------- */

/* While the engine runs: a Ctrl-C from gdb asks it to stop (other bytes wait in rx). */
static bool tt_poll(void *opaque)
{
    struct gdb_server *g = opaque;
    struct pollfd pfd = {.fd = g->client_fd, .events = POLLIN};
    if (g->client_fd < 0 || poll(&pfd, 1, 0) <= 0)
        return false;
    if (!receive(g)) {
        g->lost = true;
        return true;
    }
    char *ctrl_c = memchr(g->rx, 0x03, g->rx_len);
    if (!ctrl_c)
        return false;
    memmove(ctrl_c, ctrl_c + 1, g->rx_len - (size_t)(ctrl_c - g->rx) - 1);
    g->rx_len--;
    return true;
}

static void tt_resume(struct gdb_server *g, enum tt_action action)
{
    uint64_t breaks[SW_BPS_MAX + HW_SLOTS];
    struct tt_watch watches[HW_SLOTS];
    struct tt_points pts = {.breaks = breaks, .watches = watches};
    for (int i = 0; i < SW_BPS_MAX; i++)
        if (g->sw[i].used)
            breaks[pts.break_count++] = g->sw[i].addr;
    for (int i = 0; i < HW_SLOTS; i++) {
        if (g->hw[i].used && g->hw[i].kind == HW_EXEC)
            breaks[pts.break_count++] = g->hw[i].addr;
        if (g->soft[i].used)
            watches[pts.watch_count++] = (struct tt_watch){g->soft[i].addr, g->soft[i].len};
    }
    struct tt_stop stop = timetravel_run(g->tt, action, &pts, tt_poll, g);
    for (int i = 0; i < HW_SLOTS; i++) /* (what the soft watchpoints compare against, outside the engine) */
        if (g->soft[i].used)
            read_memory(g, g->soft[i].addr, g->soft[i].value, g->soft[i].len);
    pthread_mutex_lock(&g->lock);
    g->stop_pending = false; /* (a break hypercall met on the way is not a stop of its own) */
    pthread_mutex_unlock(&g->lock);
    if (stop.reason == TT_FAILED)
        return; /* the machine is stopping: the client hears how it ended */
    char buf[96];
    const char *extra = stop.reason == TT_BEGIN ? "replaylog:begin;" : stop.reason == TT_END ? "replaylog:end;" : "";
    int sig = stop.reason == TT_INTERRUPTED ? SIGINT_NUM : stop.reason == TT_CRASH ? SIGSEGV_NUM : SIGTRAP_NUM;
    if (stop.reason == TT_WATCHPOINT)
        snprintf(buf, sizeof(buf), "T%02xwatch:%" PRIx64 ";thread:1;", sig, stop.watch_addr);
    else
        snprintf(buf, sizeof(buf), "T%02x%sthread:1;", sig, extra);
    g->cur_g = g->cur_c = 0;
    g->stop_signal = sig;
    send_packet(g, buf);
}

static void resume(struct gdb_server *g, struct vcpu *step)
{
    if (reversible(g)) {
        tt_resume(g, step ? TT_STEP : TT_CONTINUE);
        return;
    }
    g->soft_stepping = !step && any_soft_watch(g);
    if (g->soft_stepping) /* continue one instruction at a time, comparing the watched bytes */
        step = thread_cpu(g, g->cur_c);
    apply_debug(g, step, true);
    g->running = true;
    if (step)
        vm_release_one(g->vm, step);
    else
        vm_release(g->vm, HOLD_GDB);
}

/* vCont;ACTION[:THREAD]...: a step for one thread steps it alone; otherwise all continue. */
static void handle_vcont(struct gdb_server *g, const char *args)
{
    struct vcpu *step = NULL;
    for (const char *p = args; p && *p == ';'; p = strchr(p + 1, ';')) {
        char action = p[1];
        if (action != 's' && action != 'S')
            continue;
        const char *colon = strchr(p, ':');
        const char *next = strchr(p + 1, ';');
        uint64_t id = g->cur_c + 1;
        if (colon && (!next || colon < next) && (!gdb_parse_hex(colon + 1, &id) || !valid_thread(g, id))) {
            send_packet(g, "E01");
            return;
        }
        step = &g->vm->vcpus[id - 1];
        break;
    }
    resume(g, step);
}

static void detach(struct gdb_server *g)
{
    for (int i = 0; i < SW_BPS_MAX; i++)
        if (g->sw[i].used)
            remove_sw(g, g->sw[i].addr);
    memset(g->hw, 0, sizeof(g->hw));
    memset(g->soft, 0, sizeof(g->soft));
    apply_debug(g, NULL, false);
    if (g->tt)
        timetravel_leave(g->tt);
    if (g->client_fd >= 0)
        close(g->client_fd);
    g->client_fd = -1;
    g->running = false;
    g->no_ack = false;
    g->rx_len = 0;
    vm_release(g->vm, HOLD_GDB);
}

static void handle_query(struct gdb_server *g, const char *pkt)
{
    char extra[64];
    uint64_t id;
    if (!strncmp(pkt, "qSupported", 10))
        send_packet(g, g->tt ? "PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;vContSupported+;"
                               "ReverseStep+;ReverseContinue+"
                             : "PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;vContSupported+");
    else if (!strncmp(pkt, "qXfer:features:read:", 20))
        reply_features(g, pkt + 20);
    else if (!strcmp(pkt, "qfThreadInfo"))
        reply_thread_list(g);
    else if (!strcmp(pkt, "qsThreadInfo"))
        send_packet(g, "l");
    else if (!strcmp(pkt, "qC"))
        snprintf(extra, sizeof(extra), "QC%x", g->cur_g + 1), send_packet(g, extra);
    else if (!strcmp(pkt, "qAttached"))
        send_packet(g, "1");
    else if (!strncmp(pkt, "qThreadExtraInfo,", 17) && gdb_parse_hex(pkt + 17, &id) && valid_thread(g, id)) {
        char text[32];
        int n = snprintf(text, sizeof(text), "CPU %u", (unsigned)id - 1);
        gdb_put_hex(extra, (const uint8_t *)text, (size_t)n);
        send_packet(g, extra);
    } else if (!strncmp(pkt, "qSymbol", 7))
        send_packet(g, "OK");
    else
        send_packet(g, "");
}

/* One packet while the machine is stopped. */
static void handle_packet(struct gdb_server *g, const char *pkt)
{
    uint64_t id;
    switch (pkt[0]) {
    case '?':
        pthread_mutex_lock(&g->lock);
        g->stop_signal = g->stop_signal ? g->stop_signal : SIGTRAP_NUM;
        pthread_mutex_unlock(&g->lock);
        stop_reply(g);
        return;
    case 'q': handle_query(g, pkt); return;
    case 'Q':
        if (!strcmp(pkt, "QStartNoAckMode")) {
            send_packet(g, "OK");
            g->no_ack = true;
        } else {
            send_packet(g, "");
        }
        return;
    case 'H': set_thread(g, pkt + 1); return;
    case 'T': send_packet(g, gdb_parse_hex(pkt + 1, &id) && valid_thread(g, id) ? "OK" : "E01"); return;
    case 'g': reply_registers(g); return;
    case 'p': reply_one_register(g, pkt + 1); return;
    case 'P':
    case 'M':
        if (g->tt) { /* a replay runs what was recorded; a recording must stay what the guest did */
            log_warn_limited(&g->warn_limit, "gdb: a %s's registers and memory cannot be written",
                             reversible(g) ? "replay" : "recording");
            send_packet(g, "E01");
        } else if (pkt[0] == 'P')
            write_register(g, pkt + 1);
        else
            handle_write_memory(g, pkt + 1);
        return;
    case 'b':
        if ((strcmp(pkt, "bs") && strcmp(pkt, "bc")) || !g->tt) {
            send_packet(g, "");
        } else if (reversible(g)) {
            tt_resume(g, pkt[1] == 's' ? TT_REVERSE_STEP : TT_REVERSE_CONTINUE);
        } else {
            log_warn_limited(&g->warn_limit, "gdb: a recording goes back once it has crashed (with --on-crash "
                             "pause), or on its replay (--replay)");
            send_packet(g, "E01");
        }
        return;
    case 'm': reply_memory(g, pkt + 1); return;
    case 'Z': handle_breakpoint(g, true, pkt + 1); return;
    case 'z': handle_breakpoint(g, false, pkt + 1); return;
    case 'c': resume(g, NULL); return;
    case 's': resume(g, thread_cpu(g, g->cur_c)); return;
    case 'v':
        if (!strcmp(pkt, "vCont?"))
            send_packet(g, "vCont;c;C;s;S");
        else if (!strncmp(pkt, "vCont;", 6))
            handle_vcont(g, pkt + 5);
        else
            send_packet(g, "");
        return;
    case 'D':
        send_packet(g, "OK");
        detach(g);
        return;
    case 'k':
        detach(g);
        vm_request_stop(g->vm, 128 + 9); /* as if killed */
        return;
    default: send_packet(g, ""); /* unsupported, as the protocol says: G, X, and the rest */
    }
}

/* ---- the server thread -------------------------------------------------------------------------- */

/* A vCPU stopped while the client waits. Soft watchpoints: a plain single step with no watched
 * byte changed goes on stepping; anything else is reported. */
static void handle_stop(struct gdb_server *g)
{
    if (g->soft_stepping) {
        int hit = soft_watch_changed(g);
        pthread_mutex_lock(&g->lock);
        bool plain_step = g->stop_signal == SIGTRAP_NUM && (g->stop_dr6 & (1u << 14)) && !(g->stop_dr6 & 0xF);
        if (hit >= 0) {
            g->watch_hit = true;
            g->watch_addr = g->soft[hit].addr;
            g->watch_kind = HW_WRITE;
        }
        unsigned cpu = g->stop_cpu;
        if (hit < 0 && plain_step) {
            g->stop_pending = false;
            pthread_mutex_unlock(&g->lock);
            vm_release_one(g->vm, &g->vm->vcpus[cpu]);
            return;
        }
        pthread_mutex_unlock(&g->lock);
        g->soft_stepping = false;
    }
    g->running = false;
    stop_reply(g);
}

static bool vm_over(struct gdb_server *g) { return atomic_load(&g->vm->stopping); }

/* Tells an attached client how the machine ended (a reset keeps the client). */
static void say_goodbye(struct gdb_server *g)
{
    int status = atomic_load(&g->vm->status);
    if (g->client_fd < 0 || status == VM_STATUS_RESET)
        return;
    char buf[8];
    snprintf(buf, sizeof(buf), "W%02x", status & 0xFF);
    send_packet(g, buf);
    close(g->client_fd);
    g->client_fd = -1;
}

static void attach_client(struct gdb_server *g)
{
    int fd = listen_accept(g->listen_fd, &g->warn_limit, "gdb");
    if (fd < 0)
        return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails harmlessly on unix */
    listen_client_timeout(fd);
    g->client_fd = fd;
    g->rx_len = 0;
    g->no_ack = false;
    if (!vm_hold(g->vm, HOLD_GDB))
        return;
    pthread_mutex_lock(&g->lock);
    g->stop_pending = false;
    g->stop_cpu = 0;
    g->stop_signal = SIGTRAP_NUM;
    pthread_mutex_unlock(&g->lock);
    g->cur_g = g->cur_c = 0;
    g->running = false;
    apply_debug(g, NULL, true);
    log_info("gdb attached; every CPU is stopped");
}

/* Reads what the client sent; returns false when it has gone. */
static bool receive(struct gdb_server *g)
{
    if (g->rx_len == sizeof(g->rx))
        g->rx_len = 0; /* a client that only sends garbage */
    ssize_t n = recv(g->client_fd, g->rx + g->rx_len, sizeof(g->rx) - g->rx_len, 0);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    g->rx_len += (size_t)n;
    return true;
}

static void serve_client_input(struct gdb_server *g)
{
    static char pkt[PACKET_MAX + 1];
    if (!receive(g)) {
        log_info("gdb detached");
        detach(g);
        return;
    }
    for (;;) {
        enum gdb_item item = next_item(g, pkt);
        if (item == GDB_ITEM_NONE || g->client_fd < 0)
            return;
        if (item == GDB_ITEM_DROPPED)
            continue;
        if (item == GDB_ITEM_INTERRUPT) {
            if (g->running && vm_hold(g->vm, HOLD_GDB)) {
                pthread_mutex_lock(&g->lock);
                if (!g->stop_pending) {
                    g->stop_pending = true;
                    g->stop_cpu = g->cur_c;
                    g->stop_signal = SIGINT_NUM;
                    g->watch_hit = false;
                }
                pthread_mutex_unlock(&g->lock);
                g->running = false;
                stop_reply(g);
            }
        } else if (!g->running) {
            handle_packet(g, pkt);
        }
    }
}

static void drop_if_lost(struct gdb_server *g)
{
    if (!g->lost)
        return;
    g->lost = false;
    log_info("gdb: the client left or stopped reading; detached, the machine runs on");
    detach(g);
}

static void *gdb_thread(void *arg)
{
    struct gdb_server *g = arg;
    if (g->client_fd >= 0) { /* attached across a reset: breakpoints and debug state again */
        if (vm_hold(g->vm, HOLD_GDB)) {
            for (int i = 0; i < SW_BPS_MAX; i++) {
                if (!g->sw[i].used)
                    continue;
                g->sw[i].used = false;
                insert_sw(g, g->sw[i].addr);
            }
            resume(g, NULL);
        }
    }
    while (!vm_over(g)) {
        struct pollfd fds[2] = {{.fd = g->notify_fd, .events = POLLIN},
                                {.fd = g->client_fd >= 0 ? g->client_fd : g->listen_fd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            eventfd_t ignored;
            eventfd_read(g->notify_fd, &ignored);
            if (vm_over(g))
                break;
            if (g->running && g->stop_pending && vm_hold(g->vm, HOLD_GDB))
                handle_stop(g);
            drop_if_lost(g);
        }
        if (!(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (g->client_fd < 0)
            attach_client(g);
        else
            serve_client_input(g);
        drop_if_lost(g);
    }
    drop_if_lost(g);
    say_goodbye(g);
    return NULL;
}

static int gdb_vm_start(void *opaque, struct vm *vm)
{
    struct gdb_server *g = opaque;
    g->vm = vm;
    g->tt = debug_room(vm)->timetravel; /* (a recording or a replay: reversible says when it runs) */
    pthread_mutex_lock(&g->lock);
    g->stop_pending = false;
    pthread_mutex_unlock(&g->lock);
    eventfd_t ignored;
    eventfd_read(g->notify_fd, &ignored);
    if (g->wait_first || g->client_fd >= 0) {
        vm_request_hold(vm, HOLD_GDB); /* the vCPUs park before their first instruction */
        if (g->wait_first)
            log_info("waiting for gdb on the --gdb address before the first instruction");
    }
    g->wait_first = false;
    int rc = pthread_create(&g->thread, NULL, gdb_thread, g);
    if (rc) {
        log_error("cannot start the gdb thread: %s", strerror(rc));
        return -1;
    }
    g->thread_started = true;
    return 0;
}

static void gdb_vm_end(void *opaque, int status)
{
    struct gdb_server *g = opaque;
    (void)status;
    if (g->thread_started) {
        eventfd_write(g->notify_fd, 1);
        pthread_join(g->thread, NULL);
        g->thread_started = false;
    }
    g->tt = NULL;
    g->vm = NULL;
}

int gdb_attach(struct gdb_server *g, struct vm *vm)
{
    if (vm_add_observer(vm, &(struct vm_observer){.start = gdb_vm_start, .stop = gdb_notify_stop,
                                                   .crash = gdb_notify_crash, .end = gdb_vm_end,
                                                   .opaque = g}) ||
        vm_add_debug_hook(vm, gdb_debug_exit, g) ||
        vm_add_hypercall(vm, &(struct hypercall){.function = SLATE_HC_DEBUG_BREAK,
                                                 .fn = gdb_break_hypercall, .opaque = g})) {
        log_error("internal: cannot attach the gdb server");
        return -1;
    }
    return 0;
}

/* ---- the listening socket ----------------------------------------------------------------------- */

struct gdb_server *gdb_server_open(const char *spec, bool wait)
{
    struct gdb_server *g = calloc(1, sizeof(*g));
    if (!g) {
        log_error("out of memory");
        return NULL;
    }
    g->client_fd = g->listen_fd = g->notify_fd = -1;
    g->warn_limit = (struct ratelimit)RATELIMIT_INIT;
    g->wait_first = wait;
    pthread_mutex_init(&g->lock, NULL);
    g->listen_fd = listen_start(spec, LISTEN_GDB, "--gdb", g->unix_path);
    g->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->listen_fd < 0 || g->notify_fd < 0) {
        gdb_server_close(g);
        return NULL;
    }
    gdb_probe_kvm(&g->int3_intercepted, &g->data_breakpoints);
    return g;
}

void gdb_server_close(struct gdb_server *g)
{
    if (!g)
        return;
    if (g->client_fd >= 0)
        close(g->client_fd);
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    if (g->unix_path[0])
        unlink(g->unix_path);
    if (g->notify_fd >= 0)
        close(g->notify_fd);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
