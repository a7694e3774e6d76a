/* vcpu.c - the vCPU thread: KVM_RUN, then one switch over what the exit asks for. */
#include "vm.h"
#include "record.h"

#include "cpu_state.h"
#include "pagewalk.h"
#include "pc_legacy.h"
#include "x86.h"

#include "exits.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static void report_unclaimed(struct vm *vm, struct vcpu *cpu, bool is_mmio, uint64_t addr,
                             struct bus_io *io);

static void vcpu_pio(struct vcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    struct vm *vm = cpu->vm;
    unsigned size = run->io.size;
    if (size == 0 || size > 4 || run->io.data_offset > vm->run_size ||
        (uint64_t)run->io.count * size > vm->run_size - run->io.data_offset) {
        log_warn("cpu %u: malformed KVM_EXIT_IO (size %u, count %u); ignored", cpu->index, size,
                 run->io.count);
        return;
    }
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    bool out = run->io.direction == KVM_EXIT_IO_OUT;
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        struct bus_io io = {.width = size, .is_write = out, .cpu = cpu,
                             .cpu_index = cpu->index};
        if (out)
            memcpy(&io.value, data, size);
        if (!bus_dispatch(&vm->pio, run->io.port, &io))
            report_unclaimed(vm, cpu, false, run->io.port, &io);
        if (!out)
            memcpy(data, &io.value, size);
        if (run->io.port != SLATE_HYPERCALL_PORT) /* (the hypercall itself is recorded) */
            flight_record(&vm->flight, out ? FLIGHT_OUT : FLIGHT_IN, cpu->index, run->io.port,
                          io.value, (uint8_t)size);
        if (vm->trace & TRACE_IO)
            trace_event(vm, cpu, "%s port %#x, %u bytes: %#llx", out ? "out" : "in", run->io.port,
                        size, (unsigned long long)io.value);
    }
}

static void vcpu_mmio(struct vcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    unsigned len = run->mmio.len;
    if (len == 0 || len > 8) {
        log_warn("cpu %u: malformed KVM_EXIT_MMIO (len %u); ignored", cpu->index, len);
        return;
    }
    struct bus_io io = {.width = len, .is_write = run->mmio.is_write, .cpu = cpu,
                      .cpu_index = cpu->index};
    if (io.is_write)
        memcpy(&io.value, run->mmio.data, len);
    if (!bus_dispatch(&cpu->vm->mmio, run->mmio.phys_addr, &io))
        report_unclaimed(cpu->vm, cpu, true, run->mmio.phys_addr, &io);
    if (!io.is_write)
        memcpy(run->mmio.data, &io.value, len);
    if (run->mmio.phys_addr - SLATE_HYPERCALL_PAGE >= 0x1000)
        flight_record(&cpu->vm->flight, io.is_write ? FLIGHT_MMIO_WRITE : FLIGHT_MMIO_READ, cpu->index,
                      run->mmio.phys_addr, io.value, (uint8_t)len);
    if (cpu->vm->trace & TRACE_MMIO)
        trace_event(cpu->vm, cpu, "%s %#llx, %u bytes: %#llx", io.is_write ? "write" : "read",
                    (unsigned long long)run->mmio.phys_addr, len, (unsigned long long)io.value);
}

/* An MSR KVM does not know: only reaches user space if asked for, and slate refuses it. */
static void vcpu_msr(struct vcpu *cpu)
{
    cpu->run->msr.error = 1; /* the guest gets #GP, as on hardware without the MSR */
}

const char *vcpu_run_state(struct vcpu *cpu, char *buf, size_t len)
{
    if (cpu->crashed[0]) {
        snprintf(buf, len, "crashed (%s)", cpu->crashed);
        return buf;
    }
    if (!atomic_load(&cpu->started))
        return "never started";
    struct cpu_state st;
    st.have = 0;
    if (cpu_state_get(cpu, CPU_MP, &st, NULL))
        return "running";
    switch (st.mp.mp_state) {
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED: return "waiting for start";
    case KVM_MP_STATE_HALTED: return "halted";
    default: return "running";
    }
}

static void vcpu_crash(struct vcpu *cpu, const char *what)
{
    struct vm *vm = cpu->vm;
    snprintf(cpu->crashed, sizeof(cpu->crashed), "%s", what);
    if (atomic_load(&vm->stopping))
        return; /* another CPU already decided how this ends */
    pthread_mutex_lock(&vm->pause_lock);
    bool first = vm->crash_cpu < 0; /* with --on-crash pause, the first crash is the one reported */
    if (first) {
        vm->crash_cpu = (int)cpu->index;
        snprintf(vm->end_reason, sizeof(vm->end_reason), "crash: %s", what);
    }
    pthread_mutex_unlock(&vm->pause_lock);
    if (!first)
        return;
    if (vm->record)
        record_crashed(vm);
    vm_notify_crash(vm, cpu, what); /* the crash report, and what helps it (replay.h) */
    if (!vm->cfg->on_crash_pause) {
        vm_request_stop(vm, EXIT_CRASH);
        return;
    }
    /* Every other CPU stops where it is; this one is done. gdb and the monitor can look at all of
     * them; slate exits with 126 however the user ends it. */
    vm_request_hold(vm, HOLD_CRASH);
    log_info("--on-crash pause: the machine is stopped for gdb and the monitor; quit (or Ctrl-C) "
             "ends it with status 126");
}

/* --stats: the exit's reason, its time, and which device range it went to. */
static void vcpu_count_exit(struct vcpu *cpu, int64_t started)
{
    struct kvm_run *run = cpu->run;
    struct vcpu_stats *st = cpu->stats;
    uint64_t ns = (uint64_t)(clock_now_ns() - started);
    unsigned reason = run->exit_reason < STATS_REASONS ? run->exit_reason : STATS_REASONS - 1;
    st->exits[reason]++;
    st->exit_ns[reason] += ns;
    const struct bus *bus = NULL;
    uint64_t addr = 0;
    if (run->exit_reason == KVM_EXIT_IO)
        bus = &cpu->vm->pio, addr = run->io.port;
    else if (run->exit_reason == KVM_EXIT_MMIO)
        bus = &cpu->vm->mmio, addr = run->mmio.phys_addr;
    if (!bus)
        return;
    const struct bus_range *r = bus_find(bus, addr);
    int kind = bus == &cpu->vm->mmio;
    if (!r) {
        st->unclaimed++;
        return;
    }
    st->range_count[kind][r - bus->ranges]++;
    st->range_ns[kind][r - bus->ranges] += ns;
}

/* A breakpoint, watchpoint or step: the first debug hook that claims it handles it. A step of the
 * monitor's is claimed by none: the CPU parks at its next look at the holds. */
static void vcpu_debug_exit(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    for (unsigned i = 0; i < vm->debug_hook_count; i++)
        if (vm->debug_hooks[i].fn(vm->debug_hooks[i].opaque, cpu))
            return;
}

/* A single step whose instruction exited to slate has completed (KVM_RUN with immediate_exit
 * finished it): reported to the debug hooks as the debug exception KVM would have given. */
static void report_step(struct vcpu *cpu)
{
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_REGS, &st, NULL))
        return;
    struct kvm_run *run = cpu->run;
    run->exit_reason = KVM_EXIT_DEBUG;
    run->debug.arch = (struct kvm_debug_exit_arch){.exception = 1, .dr6 = 0xFFFF4FF0 /* BS */,
                                                   .dr7 = 0x400, .pc = st.regs.rip};
    vcpu_debug_exit(cpu);
}

/* Returns false when this vCPU should stop running. */
static bool vcpu_handle_exit(struct vcpu *cpu)
{
    const char *what;
    switch (exit_classify(cpu->run, &what)) {
    case EXIT_ACTION_RESUME: return true;
    case EXIT_ACTION_PIO: vcpu_pio(cpu); return true;
    case EXIT_ACTION_MMIO: vcpu_mmio(cpu); return true;
    case EXIT_ACTION_MSR: vcpu_msr(cpu); return true;
    case EXIT_ACTION_SHUTDOWN: vm_request_stop(cpu->vm, 0); return false;
    case EXIT_ACTION_RESET: vm_request_stop(cpu->vm, VM_STATUS_RESET); return false;
    case EXIT_ACTION_DEBUG: vcpu_debug_exit(cpu); return true;
    case EXIT_ACTION_CRASH: vcpu_crash(cpu, what); return false;
    }
    return false;
}

bool vcpu_process_exit(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    atomic_store(&cpu->started, true); /* it ran guest code: INIT/SIPI if nothing else */
    /* relaxed: its readers look under pause_lock, which this thread takes before it parks */
    atomic_store_explicit(&cpu->exit_pending, true, memory_order_relaxed);
    int64_t started = cpu->stats ? clock_now_ns() : 0;
    if (vm->record)
        record_exit_before(cpu);
    bool go_on = vcpu_handle_exit(cpu);
    if (vm->record && go_on)
        record_exit_after(cpu);
    if (cpu->stats)
        vcpu_count_exit(cpu, started);
    return go_on;
}

bool vcpu_is_reset_state(const struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
    return regs->rip == 0xFFF0 && sregs->cs.selector == 0xF000 && !(sregs->cr0 & X86_CR0_PE);
}

void *vcpu_thread(void *arg)
{
    struct vcpu *cpu = arg;
    struct vm *vm = cpu->vm;
    sigset_t kick;
    sigemptyset(&kick);
    sigaddset(&kick, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
    vcpu_thread_init(cpu);
    if (vm->vcpu_hook_count)
        vm_vcpu_hooks(cpu, VCPU_HOOK_FIRST);
    while (!atomic_load(&vm->stopping)) {
        vcpu_service_requests(cpu);
        if (atomic_load(&vm->stopping))
            break;
        cpu_state_running(cpu);
        if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
            /* EINTR: kicked. EAGAIN: an AP still waiting for INIT/SIPI woke up. */
            if (errno == EINTR || errno == EAGAIN) {
                atomic_store_explicit(&cpu->exit_pending, false, memory_order_relaxed);
                __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                if (cpu->step_completing) { /* the stepped instruction is done: that is the step */
                    cpu->step_completing = false;
                    report_step(cpu);
                    continue;
                }
                if (vm->record)
                    record_kicked(cpu);
                if (vm->vcpu_hook_count) /* (a kick from the profiler's timer, say) */
                    vm_vcpu_hooks(cpu, VCPU_HOOK_KICK);
                continue;
            }
            log_error("cpu %u: KVM_RUN: %s", cpu->index, strerror(errno));
            vm_request_stop(vm, EXIT_CRASH);
            break;
        }
        bool stepped_exit = cpu->run->exit_reason != KVM_EXIT_DEBUG && cpu->run->exit_reason != KVM_EXIT_INTR;
        cpu->step_completing = false;
        bool go_on = vcpu_process_exit(cpu);
        if (!go_on && (!vm->each || atomic_load(&vm->stopping)))
            break; /* (--each: a case ended, the CPU parks until the next) */
        if (vm->vcpu_hook_count)
            vm_vcpu_hooks(cpu, VCPU_HOOK_EXIT);
        if (go_on && stepped_exit && vcpu_single_stepping(cpu)) {
            /* KVM should report the step once the instruction that exited completes; nested
             * KVM (PVM) does not, and the CPU would run on. Complete it alone, then report. */
            cpu->step_completing = true;
            __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        }
    }
    if (cpu->crashed[0] && vm->cfg->on_crash_pause && !atomic_load(&vm->stopping)) {
        vcpu_stay_after_crash(cpu);
        return NULL;
    }
    pthread_mutex_lock(&vm->pause_lock);
    cpu->exit_pending = false; /* nothing of it is left to complete */
    pthread_mutex_unlock(&vm->pause_lock);
    vm_count_parked(vm); /* a finished thread counts as parked: a pause never waits for it */
    return NULL;
}

static bool warn_once_port(struct vm *vm, uint16_t port)
{
    uint8_t bit = (uint8_t)(1u << (port & 7));
    return !(atomic_fetch_or(&vm->warned_ports[port >> 3], bit) & bit);
}

/* An open-addressed set of reported addresses; when it is full, the rate limit takes over. */
static bool warn_once_mmio(struct vm *vm, uint64_t addr)
{
    uint64_t key = addr + 1; /* 0 marks an empty slot */
    unsigned start = (unsigned)((addr >> 2) * 0x9E3779B1u) % VM_WARNED_MMIO;
    for (unsigned i = 0; i < VM_WARNED_MMIO; i++) {
        _Atomic uint64_t *slot = &vm->warned_mmio[(start + i) % VM_WARNED_MMIO];
        uint64_t seen = 0;
        if (atomic_compare_exchange_strong(slot, &seen, key))
            return true;
        if (seen == key)
            return false;
    }
    return true;
}

/* Reports an access nobody claims: a warning once per address, or with --strict a stop.
 * Reads return all-ones. */
static void report_unclaimed(struct vm *vm, struct vcpu *cpu, bool is_mmio, uint64_t addr,
                             struct bus_io *io)
{
    if (!io->is_write)
        io->value = ~0ULL;
    char what[128];
    snprintf(what, sizeof(what), "%s %u-byte %s %s %#" PRIx64 " (unclaimed)",
             io->is_write ? "write:" : "read:", io->width, is_mmio ? "MMIO" : "port",
             io->is_write ? "to" : "from", addr);
    if (vm->cfg->strict) {
        if (!atomic_load(&vm->stopping)) {
            char reason[160];
            snprintf(reason, sizeof(reason), "--strict: %s", what);
            snprintf(cpu->crashed, sizeof(cpu->crashed), "%s", reason);
            if (vm->record)
                record_crashed(vm);
            vm_notify_crash(vm, cpu, reason);
            vm_request_stop(vm, EXIT_CRASH);
        }
        return;
    }
    bool first = is_mmio ? warn_once_mmio(vm, addr) : warn_once_port(vm, (uint16_t)addr);
    unsigned bit;
    const char *legacy = is_mmio ? NULL : legacy_port_hint((uint16_t)addr, &bit);
    if (first && legacy && !(atomic_fetch_or(&vm->legacy_hints, 1u << bit) & (1u << bit)))
        log_warn("cpu %u: %s; %s: the kernel looks for %s", cpu ? cpu->index : 0, what,
                 io->is_write ? "ignored" : "reads as all-ones", legacy);
    else if (first)
        log_warn_limited(&vm->unclaimed_limit, "cpu %u: %s; %s (reported once per address)",
                         cpu ? cpu->index : 0, what,
                         io->is_write ? "ignored" : "reads as all-ones");
}

/* The guest-physical address of linear address gva as `cpu` sees it, for len bytes within one
 * page. */
static bool vcpu_translate(struct vcpu *cpu, uint64_t gva, uint64_t len, uint64_t *gpa)
{
    struct kvm_translation tr = {.linear_address = gva};
    if (len == 0 || (gva & 0xFFF) + len > 0x1000)
        return false;
    if (ioctl(cpu->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
        return false;
    *gpa = tr.physical_address;
    return true;
}

const void *vcpu_gva_to_host(struct vcpu *cpu, uint64_t gva, uint64_t len)
{
    uint64_t gpa;
    return vcpu_translate(cpu, gva, len, &gpa) ? memory_readable_ptr(&cpu->vm->mem, gpa, len) : NULL;
}

void *vcpu_gva_to_ram(struct vcpu *cpu, uint64_t gva, uint64_t len)
{
    uint64_t gpa;
    return vcpu_translate(cpu, gva, len, &gpa) ? memory_ram_ptr(&cpu->vm->mem, gpa, len) : NULL;
}

size_t vcpu_map_virtual(struct vcpu *cpu, uint64_t gva, size_t len, bool for_write,
                        struct guest_piece *pieces, unsigned max, unsigned *count)
{
    size_t done = 0;
    *count = 0;
    while (done < len && *count < max) {
        size_t n = 0x1000 - ((gva + done) & 0xFFF);
        if (n > len - done)
            n = len - done;
        void *host = for_write ? vcpu_gva_to_ram(cpu, gva + done, n)
                               : (void *)vcpu_gva_to_host(cpu, gva + done, n);
        if (!host)
            break;
        pieces[(*count)++] = (struct guest_piece){host, n};
        done += n;
    }
    return done;
}

bool vcpu_caller_view(struct vcpu *cpu, struct caller_view *view)
{
    struct cpu_state st;
    st.have = 0;
    if (cpu_state_get(cpu, CPU_SREGS, &st, NULL))
        return false;
    view->sregs = st.sregs;
    view->rflags = cpu->run->s.regs.regs.rflags; /* synced on every exit (KVM_SYNC_X86_REGS) */
    view->cpl = pagewalk_cpl(&view->sregs, view->rflags);
    return true;
}

static bool read_guest_physical(void *ctx, uint64_t gpa, void *buf, size_t len)
{
    const void *p = memory_readable_ptr(ctx, gpa, len);
    if (p)
        memcpy(buf, p, len);
    return p != NULL;
}

size_t vcpu_map_as_caller(struct vcpu *cpu, const struct caller_view *view, uint64_t gva, size_t len,
                          bool for_write, struct guest_piece *pieces, unsigned max, unsigned *count)
{
    const struct pagewalk_memory mem = {read_guest_physical, &cpu->vm->mem};
    size_t done = 0;
    *count = 0;
    while (done < len && *count < max) {
        size_t n = 0x1000 - ((gva + done) & 0xFFF);
        if (n > len - done)
            n = len - done;
        struct page_rights page;
        if (!pagewalk(&mem, &view->sregs, gva + done, &page) ||
            !pagewalk_allows(&page, &view->sregs, view->rflags, view->cpl, for_write))
            break;
        void *host = for_write ? memory_ram_ptr(&cpu->vm->mem, page.pa, n)
                               : (void *)memory_readable_ptr(&cpu->vm->mem, page.pa, n);
        if (!host)
            break;
        pieces[(*count)++] = (struct guest_piece){host, n};
        done += n;
    }
    return done;
}

size_t vcpu_read_virtual(struct vcpu *cpu, uint64_t gva, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) { /* a page at a time: a read may be of any length */
        struct guest_piece piece;
        unsigned count;
        if (!vcpu_map_virtual(cpu, gva + done, len - done, false, &piece, 1, &count))
            break;
        memcpy((uint8_t *)buf + done, piece.host, piece.len);
        done += piece.len;
    }
    return done;
}

bool vcpu_write_virtual(struct vcpu *cpu, uint64_t gva, const void *buf, size_t len)
{
    struct guest_piece pieces[VCPU_WRITE_MAX / 0x1000 + 2];
    unsigned count;
    if (len > VCPU_WRITE_MAX ||
        vcpu_map_virtual(cpu, gva, len, true, pieces, sizeof(pieces) / sizeof(pieces[0]), &count) < len)
        return false;
    for (unsigned i = 0; i < count; buf = (const uint8_t *)buf + pieces[i].len, i++)
        memcpy(pieces[i].host, buf, pieces[i].len);
    return true;
}

void vcpu_kick(struct vcpu *cpu)
{
    if (!cpu->run)
        return;
    /* immediate_exit covers the window before KVM_RUN; the signal covers KVM_RUN itself. */
    __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&cpu->kick_lock);
    if (cpu->kickable)
        pthread_kill(cpu->self, SIGUSR1);
    pthread_mutex_unlock(&cpu->kick_lock);
}

const void *memory_linear_ptr(const struct guest_memory *mem, const struct kvm_sregs *s, uint64_t va,
                              size_t len)
{
    const uint64_t addr = 0x000FFFFFFFFFF000ULL;
    if ((va & 0xFFF) + len > 0x1000)
        return NULL;
    if (!(s->cr0 & X86_CR0_PG))
        return memory_readable_ptr(mem, va, len);
    if (!(s->efer & X86_EFER_LMA))
        return NULL;
    uint64_t table = s->cr3 & addr;
    for (int level = 0; level < 4; level++) {
        const uint64_t *e = memory_readable_ptr(mem, table + ((va >> (39 - 9 * level)) & 511) * 8, 8);
        if (!e || !(*e & 1))
            return NULL;
        if ((level == 1 || level == 2) && (*e & (1u << 7))) {
            uint64_t size = level == 1 ? 1ULL << 30 : 1ULL << 21;
            return memory_readable_ptr(mem, ((*e & addr) & ~(size - 1)) | (va & (size - 1)), len);
        }
        table = *e & addr;
    }
    return memory_readable_ptr(mem, table | (va & 0xFFF), len);
}
