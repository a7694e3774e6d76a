/* record.c - see record.h. The log (little-endian):
 *
 *   header: "SLATEREC", u32 version, u32 bytes of command line, i64 boot Unix time, u64 boot TSC,
 *           then the command line (NUL-separated words)
 *   records, each a type byte and its struct:
 *     'E' struct rec_exit, then data_len bytes: exit N, where it was, what its reads returned
 *     'K' struct rec_kick: the vCPU was kicked out of KVM_RUN here (after exit N, with these
 *         registers, halted or not) and what follows happened there
 *     'W' struct rec_write, then len bytes: what a device wrote to guest memory at the exit or
 *         kick before it (a disk's reads and ring, received frames); the replay writes them there
 *     'I' struct rec_irq: an interrupt, entering right after the exit or kick before it
 *     'X' struct rec_end: how the machine ended
 */
#include "record.h"

#include "cpu_state.h"
#include "log.h"
#include "options.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REC_MAGIC "SLATEREC"
#define REC_VERSION 3
#define REC_PENDING 256
#define REC_DATA_MAX 4096
#define MSI_ADDRESS 0xFEE00000u

struct rec_header {
    char magic[8];
    uint32_t version, argv_bytes;
    int64_t boot_unix_ns;
    uint64_t boot_tsc;
};

struct rec_exit {
    uint64_t index;    /* 1 for the first exit */
    uint32_t reason;   /* KVM_EXIT_* */
    uint32_t data_len; /* bytes that follow: what the exit's reads returned */
    uint64_t rip, addr; /* the port or MMIO address */
    uint64_t state;    /* a hash of the general registers at the exit */
    uint64_t output;   /* a hash of everything the guest printed before it */
    uint64_t rax;      /* RAX as the guest resumes: a hypercall's result */
};

struct rec_irq {
    uint64_t index; /* after this many exits (where: the 'E' or 'K' record before it) */
    uint32_t vector, cpu;
};

struct rec_kick {
    uint64_t index; /* after this many exits */
    uint8_t halted; /* in a HLT */
    uint8_t pad[7];
    struct kvm_regs regs;
};

struct rec_write {
    uint64_t gpa;
    uint32_t len;
    uint32_t pad;
};
#define REC_WRITE_MAX (64u << 20) /* more in one record is a damaged log */

struct rec_end {
    int32_t status;
    uint32_t pad;
    uint64_t exits;
    uint64_t memory_hash; /* of all guest RAM when the machine ended */
};

/* Where the replay is in the log and in the run: all of it goes back with a checkpoint
 * (record_mark_save). */
struct reader {
    long offset;        /* in the log, after the record read ahead (record_mark_save sets it) */
    uint64_t exits;
    bool in_debug_exit; /* the exit being handled is KVM_EXIT_DEBUG: not counted */
    struct rec_exit cur;
    /* replay */
    int next_type; /* the record read ahead: 'E', 'K', 'W', 'I', 'X', or 0 at the end of the log */
    struct rec_exit next_exit;
    uint8_t next_data[REC_DATA_MAX];
    struct rec_irq next_irq;
    struct rec_kick next_kick;
    struct rec_write next_write; /* its bytes are still in the file */
    struct rec_end end;
    bool seeking;       /* looking for next_kick's registers */
    bool stepping_past; /* one single step past the breakpoint, whose registers were not those */
    bool diverged;
    bool read_ahead; /* a replay's mark: the record after `offset` is read ahead already */
    uint64_t last_rip;
    uint64_t output_hash, output_bytes; /* the console's (record_mark_save sets them) */
};

struct recorder {
    struct vm *vm;
    bool replay;
    bool turned; /* a recording that crashed, now replaying its own log (record_turn_to_replay) */
    FILE *log;
    struct reader rd;
    /* record: what devices wrote during the exit being handled, as 'W' records */
    uint8_t *writes;
    size_t writes_len, writes_cap;
    /* record: interrupts devices raised, waiting for the vCPU's next stop */
    pthread_mutex_t lock;
    struct pending_irq {
        uint32_t vector, cpu;
    } pending[REC_PENDING];
    unsigned pending_count;
    uint64_t vectors[4]; /* the vectors interrupts were delivered on, as a bit set */
    bool crashed;        /* the memory hash was taken at the crash, before the crash report */
    uint64_t crash_hash;
    /* replay */
    struct rec_end last; /* the log's end record, read when the replay starts */
    bool stepped;        /* time travel single-steps the CPU and looks for kicks itself */
    bool quiet;          /* time travel runs a crash again: a divergence only sets rd.diverged */
    _Atomic bool seek_kicks;
    _Atomic bool retry_kicks; /* record: interrupts wait for the CPU to enable them */
    pthread_t kicker;
    bool kicker_started;
    _Atomic bool stop;
};

static struct recorder *rec_of(struct vm *vm) { return vm->record; }

static uint64_t regs_hash(const struct kvm_regs *r)
{
    const uint8_t *p = (const uint8_t *)r;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < sizeof(*r); i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

static void deliver(struct vcpu *cpu, uint32_t vector, uint32_t dest)
{
    struct recorder *r = cpu->vm->record;
    r->vectors[(vector & 0xFF) / 64] |= 1ULL << (vector % 64);
    struct kvm_msi msi = {.address_lo = MSI_ADDRESS | ((dest & 0xFF) << 12), .data = vector};
    if (ioctl(cpu->vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
        log_warn("--record: KVM_SIGNAL_MSI: %s", strerror(errno));
}

/* ---- replay: the log read ahead ------------------------------------------------------------- */

static void read_next(struct recorder *r)
{
    uint8_t type;
    r->rd.next_type = 0;
    if (fread(&type, 1, 1, r->log) != 1)
        return;
    if (type == 'E' && fread(&r->rd.next_exit, sizeof(r->rd.next_exit), 1, r->log) == 1 &&
        r->rd.next_exit.data_len <= REC_DATA_MAX &&
        fread(r->rd.next_data, 1, r->rd.next_exit.data_len, r->log) == r->rd.next_exit.data_len)
        r->rd.next_type = 'E';
    else if (type == 'I' && fread(&r->rd.next_irq, sizeof(r->rd.next_irq), 1, r->log) == 1)
        r->rd.next_type = 'I';
    else if (type == 'K' && fread(&r->rd.next_kick, sizeof(r->rd.next_kick), 1, r->log) == 1)
        r->rd.next_type = 'K';
    else if (type == 'W' && fread(&r->rd.next_write, sizeof(r->rd.next_write), 1, r->log) == 1 &&
             r->rd.next_write.len <= REC_WRITE_MAX)
        r->rd.next_type = 'W';
    else if (type == 'X' && fread(&r->rd.end, sizeof(r->rd.end), 1, r->log) == 1)
        r->rd.next_type = 'X';
}

/* Host bytes of guest memory [gpa, gpa+len): RAM, or a device's window. NULL if it is neither. */
static uint8_t *guest_bytes(struct vm *vm, uint64_t gpa, uint64_t len)
{
    uint8_t *ram = memory_ram_ptr(&vm->mem, gpa, len);
    if (ram)
        return ram;
    for (unsigned i = 0; i < vm->device_count; i++) {
        struct device *dev = &vm->devices[i];
        if (dev->window && gpa >= dev->window_gpa && len <= dev->window_bytes &&
            gpa - dev->window_gpa <= dev->window_bytes - len)
            return (uint8_t *)dev->window + (gpa - dev->window_gpa);
    }
    return NULL;
}

static void diverged(struct vcpu *cpu, const char *what);

/* Replay: what devices wrote after this exit when recorded, written again. */
static void apply_writes(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    while (r->rd.next_type == 'W') {
        uint8_t *to = guest_bytes(cpu->vm, r->rd.next_write.gpa, r->rd.next_write.len);
        if (!to || fread(to, 1, r->rd.next_write.len, r->log) != r->rd.next_write.len) {
            diverged(cpu, to ? "the recording ends inside a device's write" : "the recording writes outside memory");
            return;
        }
        read_next(r);
    }
}

/* Somewhere between the last exit and this one the guest did something the log cannot give it
 * again. A RDTSC close before is the usual cause: say so. */
static void diverged(struct vcpu *cpu, const char *what)
{
    struct vm *vm = cpu->vm;
    struct recorder *r = rec_of(vm);
    if (r->rd.diverged)
        return;
    r->rd.diverged = true;
    if (r->quiet)
        return; /* (time travel looks, and puts the machine back) */
    uint64_t rip = cpu->run->s.regs.regs.rip;
    char cause[160] = "";
    uint64_t from = r->rd.last_rip < rip && rip - r->rd.last_rip < 4096 ? r->rd.last_rip : rip - (rip & 0xFFF);
    uint8_t code[4096 + 16];
    size_t n = vcpu_read_virtual(cpu, from, code, (size_t)(rip + 16 - from));
    for (size_t i = 0; i + 1 < n && !cause[0]; i++) {
        bool rdtsc = code[i] == 0x0F && code[i + 1] == 0x31;                           /* 0f 31 */
        bool rdtscp = code[i] == 0x0F && code[i + 1] == 0x01 && i + 2 < n && code[i + 2] == 0xF9; /* 0f 01 f9 */
        if (rdtsc || rdtscp)
            snprintf(cause, sizeof(cause), ": %s at %#" PRIx64 " - the TSC is not recorded",
                     rdtsc ? "rdtsc" : "rdtscp", from + i);
    }
    if (!cause[0])
        snprintf(cause, sizeof(cause), " (what the recording cannot give again: the TSC, the LAPIC timer, "
                 "another CPU?)");
    log_error("replay diverged at exit %" PRIu64 ", rip=%#" PRIx64 ": %s%s", r->rd.exits, rip, what, cause);
    snprintf(vm->end_reason, sizeof(vm->end_reason), "replay diverged at exit %" PRIu64, r->rd.exits);
    vm_request_stop(vm, EXIT_FAILURE_SLATE);
}

/* An execution breakpoint (DR0) on the RIP where the next interrupt entered. */
static void arm_breakpoint(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    struct kvm_guest_debug bp = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP};
    bp.arch.debugreg[0] = r->rd.next_kick.regs.rip;
    bp.arch.debugreg[7] = 0x1; /* L0, execution, one byte */
    r->rd.stepping_past = false;
    vcpu_set_debug(cpu, DEBUG_RECORD, &bp);
}

/* Delivers every interrupt the log has at this point (right after an exit, or at a kick just
 * reached), and starts looking for the next kick if the log has one after this exit. */
static void replay_interrupts(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    while (r->rd.next_type == 'I') {
        deliver(cpu, r->rd.next_irq.vector, r->rd.next_irq.cpu);
        read_next(r);
    }
    if (r->rd.next_type == 'K' && r->rd.next_kick.index == r->rd.exits && !r->rd.seeking) {
        r->rd.seeking = true;
        if (r->stepped)
            return; /* time travel looks at every instruction itself (record_step_point) */
        if (r->rd.next_kick.halted) {
            /* No interrupt reaches a replayed guest but from the log, so the first HLT it gets to
             * it stays in, as the recorded one did: look there, kicking it now and then. */
            atomic_store(&r->seek_kicks, true);
            return;
        }
        /* Kicked while it ran: a breakpoint on the recorded RIP, and at each hit the registers
         * compared (a loop passes it many times). The recording may have kicked it before a
         * single instruction ran: look once first. */
        arm_breakpoint(cpu);
        __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    }
}

/* While seeking: is the CPU where it was kicked when recorded? Then what happened there happens:
 * devices' writes, then interrupts. */
static bool reached(struct vcpu *cpu, bool check_halted)
{
    struct recorder *r = rec_of(cpu->vm);
    const struct kvm_regs *now = &cpu->run->s.regs.regs;
    if (regs_hash(now) != regs_hash(&r->rd.next_kick.regs))
        return false;
    if (check_halted) { /* it must have got to the HLT, not only past a kick with these registers */
        struct cpu_state mp = {0};
        if (cpu_state_get(cpu, CPU_MP, &mp, NULL) || mp.mp.mp_state != KVM_MP_STATE_HALTED)
            return false;
    }
    r->rd.seeking = false;
    atomic_store(&r->seek_kicks, false);
    if (!check_halted && !r->stepped)
        vcpu_set_debug(cpu, DEBUG_RECORD, NULL);
    /* Kicks recorded one after another at this very point (a halted CPU kicked twice before it
     * woke) are this point too: all they brought arrives now, as it did then. */
    struct rec_kick here = r->rd.next_kick;
    do {
        read_next(r); /* past the 'K' */
        apply_writes(cpu);
        while (r->rd.next_type == 'I') {
            deliver(cpu, r->rd.next_irq.vector, r->rd.next_irq.cpu);
            read_next(r);
        }
    } while (r->rd.next_type == 'K' && r->rd.next_kick.index == here.index && r->rd.next_kick.halted == here.halted &&
             regs_hash(&r->rd.next_kick.regs) == regs_hash(&here.regs));
    replay_interrupts(cpu); /* (and another kick after this exit: seek on) */
    return true;
}

static bool on_debug_exit(void *opaque, struct vcpu *cpu)
{
    struct recorder *r = opaque;
    if (!r->rd.seeking || r->rd.next_kick.halted)
        return false;
    if (r->rd.stepping_past) { /* past the breakpoint's instruction: arm it again */
        arm_breakpoint(cpu);
        return true;
    }
    if (!reached(cpu, false)) { /* not this pass: one instruction with the breakpoint off */
        struct kvm_guest_debug step = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP |
                                                  KVM_GUESTDBG_BLOCKIRQ};
        r->rd.stepping_past = true;
        vcpu_set_debug(cpu, DEBUG_RECORD, &step);
    }
    return true; /* a breakpoint or step of ours */
}

/* Replaying, a halted CPU in a single step waits in KVM: kick it now and then to look.
 * Recording, interrupts wait for a CPU that has them disabled: kick it now and then to see if it
 * can take them. */
static void *kicker(void *arg)
{
    struct recorder *r = arg;
    while (!atomic_load(&r->stop)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        if (atomic_load(&r->seek_kicks) || atomic_load(&r->retry_kicks))
            vcpu_kick(&r->vm->vcpus[0]);
    }
    return NULL;
}

/* ---- the vCPU's hooks ------------------------------------------------------------------------ */

static uint32_t exit_data(struct kvm_run *run, size_t run_size, uint8_t **data)
{
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_IN &&
        run->io.data_offset < run_size && (uint64_t)run->io.count * run->io.size <= run_size - run->io.data_offset &&
        run->io.count * run->io.size <= REC_DATA_MAX) {
        *data = (uint8_t *)run + run->io.data_offset;
        return run->io.count * run->io.size;
    }
    if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write && run->mmio.len <= 8) {
        *data = run->mmio.data;
        return run->mmio.len;
    }
    return 0;
}

static void take_pending(struct vcpu *cpu, bool kicked);
static void sync_devices(struct vm *vm);

void record_exit_before(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    struct kvm_run *run = cpu->run;
    r->rd.in_debug_exit = run->exit_reason == KVM_EXIT_DEBUG;
    if (r->rd.in_debug_exit)
        return;
    r->rd.exits++;
    pthread_mutex_lock(&cpu->vm->console->lock);
    uint64_t output = cpu->vm->console->output_hash;
    pthread_mutex_unlock(&cpu->vm->console->lock);
    r->rd.cur = (struct rec_exit){.index = r->rd.exits, .reason = run->exit_reason, .rip = run->s.regs.regs.rip,
                               .state = regs_hash(&run->s.regs.regs), .output = output};
    if (run->exit_reason == KVM_EXIT_IO)
        r->rd.cur.addr = run->io.port;
    else if (run->exit_reason == KVM_EXIT_MMIO)
        r->rd.cur.addr = run->mmio.phys_addr;
    if (!r->replay)
        return;
    if (r->rd.seeking) {
        diverged(cpu, "an exit came before the point where an interrupt entered the recording");
        return;
    }
    if (r->rd.next_type == 'X' && r->rd.exits == r->rd.end.exits)
        return; /* the exit the recording ended with (a crash): the replay ends there too */
    if (r->rd.next_type != 'E') {
        diverged(cpu, r->rd.next_type == 'X' ? "the recording ended before this exit"
                                          : "the recording has an interrupt here, the replay an exit");
        return;
    }
    const struct rec_exit *want = &r->rd.next_exit;
    char what[200];
    if (want->reason != r->rd.cur.reason || want->addr != r->rd.cur.addr) {
        snprintf(what, sizeof(what), "exit reason %u at %#" PRIx64 ", recorded %u at %#" PRIx64 " (rip %#" PRIx64 ")",
                 r->rd.cur.reason, r->rd.cur.addr, want->reason, want->addr, want->rip);
        diverged(cpu, what);
    } else if (want->output != r->rd.cur.output) {
        snprintf(what, sizeof(what), "the guest printed other bytes than when recorded, before this exit");
        diverged(cpu, what);
    } else if (want->state != r->rd.cur.state) {
        snprintf(what, sizeof(what), "the registers differ from the recording's (rip %#" PRIx64 " there)",
                 want->rip);
        diverged(cpu, what);
    }
}

void record_exit_after(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    struct recorder *r = rec_of(vm);
    struct kvm_run *run = cpu->run;
    if (r->rd.in_debug_exit || r->rd.diverged)
        return;
    uint8_t *data = NULL;
    uint32_t len = exit_data(run, vm->run_size, &data);
    r->rd.last_rip = r->rd.cur.rip;
    if (!r->replay) {
        r->rd.cur.data_len = len;
        r->rd.cur.rax = run->s.regs.regs.rax;
        fputc('E', r->log);
        fwrite(&r->rd.cur, sizeof(r->rd.cur), 1, r->log);
        if (len)
            fwrite(data, 1, len, r->log);
        sync_devices(vm);
        take_pending(cpu, false); /* what devices did meanwhile happens right after this exit */
        return;
    }
    /* The guest gets what it got when recorded. */
    if (len != r->rd.next_exit.data_len) {
        diverged(cpu, "a read of another size than recorded");
        return;
    }
    if (len)
        memcpy(data, r->rd.next_data, len);
    if (run->s.regs.regs.rax != r->rd.next_exit.rax) {
        run->s.regs.regs.rax = r->rd.next_exit.rax;
        run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    }
    read_next(r);
    apply_writes(cpu);
    replay_interrupts(cpu);
}

void record_wrote(struct vm *vm, uint64_t gpa, const void *host, uint64_t len)
{
    struct recorder *r = rec_of(vm);
    if (r->replay || !len)
        return;
    size_t need = r->writes_len + 1 + sizeof(struct rec_write) + len;
    if (need > r->writes_cap) {
        size_t cap = need * 2;
        uint8_t *grown = realloc(r->writes, cap);
        if (!grown) {
            log_error("--record: out of memory for a device's write of %" PRIu64 " bytes", len);
            vm_request_stop(vm, EXIT_FAILURE_SLATE);
            return;
        }
        r->writes = grown, r->writes_cap = cap;
    }
    struct rec_write w = {.gpa = gpa, .len = (uint32_t)len};
    r->writes[r->writes_len++] = 'W';
    memcpy(r->writes + r->writes_len, &w, sizeof(w));
    memcpy(r->writes + r->writes_len + sizeof(w), host, len);
    r->writes_len += sizeof(w) + len;
}

/* Record: devices put into guest memory what arrived for it while the vCPU ran (received
 * frames), at this stop, where the log can place it. */
static void sync_devices(struct vm *vm)
{
    for (unsigned i = 0; i < vm->device_count; i++)
        if (vm->devices[i].ops->record_sync)
            vm->devices[i].ops->record_sync(&vm->devices[i]);
}

/* Whether an interrupt signalled now enters when the CPU next runs: interrupts enabled, no STI or
 * MOV SS shadow. Otherwise KVM would inject it whenever it next enters the guest after an exit
 * of its own, which on nested KVM (PVM) may be any host interrupt, a point no log can name. */
static bool can_take_interrupt(struct vcpu *cpu)
{
    if (!(cpu->run->s.regs.regs.rflags & X86_RFLAGS_IF))
        return false;
    struct cpu_state st = {0};
    return cpu_state_get(cpu, CPU_EVENTS, &st, NULL) != 0 || !(st.events.interrupt.shadow & 3);
}

/* Record: what devices wrote and the interrupts they raised since the last stop happen now, and
 * the log says where: right after the exit just logged, or (kicked) at these registers, which
 * a 'K' record gives first. */
static void take_pending(struct vcpu *cpu, bool kicked)
{
    struct recorder *r = rec_of(cpu->vm);
    pthread_mutex_lock(&r->lock);
    bool any = r->pending_count > 0;
    pthread_mutex_unlock(&r->lock);
    /* Interrupts the CPU cannot take yet wait in the recorder: it kicks the CPU until it can. And
     * one at a time: a second one would wait in the LAPIC while the first one's handler runs,
     * and enter whenever KVM next enters the guest after that. */
    bool ready = !any || can_take_interrupt(cpu);
    pthread_mutex_lock(&r->lock);
    unsigned count = ready && r->pending_count ? 1 : 0;
    struct rec_irq irqs[1];
    if (count) {
        irqs[0] = (struct rec_irq){.index = r->rd.exits, .vector = r->pending[0].vector, .cpu = r->pending[0].cpu};
        memmove(r->pending, r->pending + 1, (r->pending_count - 1) * sizeof(r->pending[0]));
        r->pending_count--;
    }
    atomic_store(&r->retry_kicks, r->pending_count > 0);
    pthread_mutex_unlock(&r->lock);
    if (!count && !r->writes_len)
        return;
    if (kicked) {
        struct cpu_state st = {0};
        struct rec_kick k = {.index = r->rd.exits, .regs = cpu->run->s.regs.regs};
        k.halted = cpu_state_get(cpu, CPU_MP, &st, NULL) == 0 && st.mp.mp_state == KVM_MP_STATE_HALTED;
        fputc('K', r->log);
        fwrite(&k, sizeof(k), 1, r->log);
    }
    if (r->writes_len)
        fwrite(r->writes, 1, r->writes_len, r->log);
    r->writes_len = 0;
    for (unsigned i = 0; i < count; i++) {
        fputc('I', r->log);
        fwrite(&irqs[i], sizeof(irqs[i]), 1, r->log);
        deliver(cpu, irqs[i].vector, irqs[i].cpu);
    }
}

void record_kicked(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    if (!r->replay) {
        sync_devices(cpu->vm);
        take_pending(cpu, true);
    } else if (r->rd.seeking) /* a kick to look at a halted CPU, or the look before any step */
        reached(cpu, r->rd.next_kick.halted != 0);
}

bool record_raise(struct irq_line *line)
{
    struct vm *vm = line->vm;
    struct recorder *r = rec_of(vm);
    if (!r)
        return false;
    if (r->replay)
        return true; /* the log has the interrupts */
    pthread_mutex_lock(&r->lock);
    if (r->pending_count < REC_PENDING)
        r->pending[r->pending_count++] = (struct pending_irq){atomic_load(&line->vector), atomic_load(&line->cpu)};
    /* The kicker goes on kicking until they are taken: a kick that lands while the CPU is parked
     * (gdb, the monitor, a pause) is spent by the time it runs again, and a CPU halted in KVM
     * would wait for ever. */
    atomic_store(&r->retry_kicks, true);
    pthread_mutex_unlock(&r->lock);
    vcpu_kick(&vm->vcpus[0]); /* it takes them at its next stop */
    return true;
}

static uint64_t memory_hash(const struct vm *vm);

void record_crashed(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    if (!r || r->crashed)
        return;
    r->crashed = true;
    r->crash_hash = memory_hash(vm);
}

/* The hash of memory the run ends with: taken at the crash, if it crashed (record_crashed). */
static uint64_t final_hash(struct recorder *r) { return r->crashed ? r->crash_hash : memory_hash(r->vm); }

/* Recording: the log's end record, written. */
static struct rec_end write_end(struct recorder *r, int status)
{
    struct rec_end end = {.status = status, .exits = r->rd.exits, .memory_hash = final_hash(r)};
    fputc('X', r->log);
    fwrite(&end, sizeof(end), 1, r->log);
    return end;
}

unsigned record_vectors(struct vm *vm, uint8_t *out, unsigned max)
{
    struct recorder *r = rec_of(vm);
    unsigned n = 0;
    for (unsigned v = 0; r && v < 256 && n < max; v++)
        if (r->vectors[v / 64] & (1ULL << (v % 64)))
            out[n++] = (uint8_t)v;
    return n;
}

/* ---- time travel (timetravel.c) --------------------------------------------------------------- */

size_t record_mark_size(void) { return sizeof(struct reader); }

void record_mark_save(struct vm *vm, void *mark)
{
    struct recorder *r = rec_of(vm);
    r->rd.offset = ftell(r->log);
    pthread_mutex_lock(&vm->console->lock);
    r->rd.output_hash = vm->console->output_hash;
    r->rd.output_bytes = vm->console->output_bytes;
    pthread_mutex_unlock(&vm->console->lock);
    r->rd.read_ahead = r->replay;
    memcpy(mark, &r->rd, sizeof(r->rd));
}

int record_mark_restore(struct vm *vm, const void *mark)
{
    struct recorder *r = rec_of(vm);
    memcpy(&r->rd, mark, sizeof(r->rd));
    pthread_mutex_lock(&vm->console->lock);
    vm->console->output_hash = r->rd.output_hash;
    vm->console->output_bytes = r->rd.output_bytes;
    pthread_mutex_unlock(&vm->console->lock);
    if (fseek(r->log, r->rd.offset, SEEK_SET) < 0)
        return -1;
    if (!r->rd.read_ahead && r->replay) {
        /* A mark taken while recording, at an exit whose records were all written: what comes
         * next is read now, as a replay would have read it after that exit. */
        r->rd.read_ahead = true;
        read_next(r);
        replay_interrupts(&vm->vcpus[0]);
    }
    return 0;
}

uint64_t record_mark_exits(const void *mark)
{
    const struct reader *rd = mark;
    return rd->exits;
}

uint64_t record_exit_count(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    return r ? r->rd.exits : 0;
}

int record_turn_to_replay(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    if (!r || r->replay)
        return r ? 0 : -1;
    const char *path = vm->cfg->record_path;
    /* The crash ends the recording: interrupts and writes still waiting never happened. */
    atomic_store(&r->retry_kicks, false);
    pthread_mutex_lock(&r->lock);
    r->pending_count = 0;
    pthread_mutex_unlock(&r->lock);
    r->writes_len = 0;
    struct rec_end end = write_end(r, EXIT_CRASH);
    FILE *in = NULL;
    if (fflush(r->log) != 0 || !(in = fopen(path, "rbe"))) {
        log_error("--record %s: cannot read the log back for time travel: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(in, NULL, _IOFBF, 1 << 20);
    if (fclose(r->log) != 0)
        log_error("--record: writing the log failed: %s", strerror(errno));
    r->log = in;
    r->replay = r->turned = true;
    r->last = r->rd.end = end;
    return 0;
}

void record_set_stepped(struct vcpu *cpu, bool stepped)
{
    struct recorder *r = rec_of(cpu->vm);
    if (!r || !r->replay || r->stepped == stepped)
        return;
    r->stepped = stepped;
    r->rd.stepping_past = false;
    atomic_store(&r->seek_kicks, false);
    vcpu_set_debug(cpu, DEBUG_RECORD, NULL);
    if (!stepped && r->rd.seeking) { /* the replay runs on by itself: seek as replay_interrupts does */
        if (r->rd.next_kick.halted)
            atomic_store(&r->seek_kicks, true);
        else {
            arm_breakpoint(cpu);
            __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        }
    }
}

bool record_step_point(struct vcpu *cpu)
{
    struct recorder *r = rec_of(cpu->vm);
    if (!r || !r->replay || !r->rd.seeking || r->rd.diverged)
        return false;
    return reached(cpu, r->rd.next_kick.halted != 0);
}

bool record_exit_ends_log(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    return r && r->replay && r->rd.exits + 1 >= r->last.exits;
}

void record_set_quiet(struct vm *vm, bool quiet)
{
    struct recorder *r = rec_of(vm);
    if (r)
        r->quiet = quiet;
}

bool record_diverged(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    return r && r->rd.diverged;
}

bool record_replaying(struct vm *vm)
{
    struct recorder *r = rec_of(vm);
    return r && r->replay;
}

/* ---- the log --------------------------------------------------------------------------------- */

/* What record mode cannot give a replay, refused by name. */
static int record_check(const struct slate_config *cfg, const char *option)
{
    const char *why = cfg->smp > 1 ? "--smp: one CPU only (the order of several CPUs is not recorded)"
                      : cfg->each || cfg->snapshot_path ? "not with --each or --snapshot" : NULL;
    if (why)
        log_error("%s: %s", option, why);
    return why ? -1 : 0;
}

/* The log's end record, read ahead: where the recording ended (its last exit). A log cut short
 * has none: its end is unknown. */
static void read_last(struct recorder *r)
{
    long here = ftell(r->log);
    uint8_t type = 0;
    struct rec_end end;
    r->last = (struct rec_end){.exits = UINT64_MAX};
    if (here >= 0 && fseek(r->log, -(long)(1 + sizeof(end)), SEEK_END) == 0 && fread(&type, 1, 1, r->log) == 1 &&
        type == 'X' && fread(&end, sizeof(end), 1, r->log) == 1)
        r->last = end;
    if (here >= 0)
        fseek(r->log, here, SEEK_SET);
}

int record_attach(struct vm *vm)
{
    const struct slate_config *cfg = vm->cfg;
    const char *path = cfg->record_path ? cfg->record_path : cfg->replay_path;
    if (!path)
        return 0;
    bool replay = cfg->replay_path != NULL;
    if (record_check(cfg, replay ? "--replay" : "--record"))
        return -1;
    struct recorder *r = calloc(1, sizeof(*r));
    if (!r) {
        log_error("out of memory");
        return -1;
    }
    r->vm = vm;
    r->replay = replay;
    pthread_mutex_init(&r->lock, NULL);
    vm->record = r;
    vm->console->hash_output = true; /* (the same on both sides: every exit compares it) */
    r->log = fopen(path, replay ? "rbe" : "wbe");
    if (!r->log) {
        log_error("%s %s: %s", replay ? "--replay" : "--record", path, strerror(errno));
        return -1;
    }
    setvbuf(r->log, NULL, _IOFBF, 1 << 20);
    struct rec_header h = {.magic = REC_MAGIC, .version = REC_VERSION};
    if (!replay) {
        h.boot_unix_ns = vm->boot_unix_ns, h.boot_tsc = vm->boot_tsc;
        for (int i = 1; i < cfg->argc; i++)
            h.argv_bytes += (uint32_t)strlen(cfg->argv[i]) + 1;
        fwrite(&h, sizeof(h), 1, r->log);
        for (int i = 1; i < cfg->argc; i++)
            fwrite(cfg->argv[i], 1, strlen(cfg->argv[i]) + 1, r->log);
        if (pthread_create(&r->kicker, NULL, kicker, r) == 0)
            r->kicker_started = true;
        return 0;
    }
    if (fread(&h, sizeof(h), 1, r->log) != 1 || memcmp(h.magic, REC_MAGIC, 8) || h.version != REC_VERSION ||
        fseek(r->log, h.argv_bytes, SEEK_CUR) < 0) {
        log_error("--replay %s: not a slate recording", path);
        return -1;
    }
    /* The info block says what it said when recorded. */
    vm->boot_unix_ns = h.boot_unix_ns, vm->boot_tsc = h.boot_tsc;
    read_last(r);
    read_next(r);
    if (vm_add_debug_hook(vm, on_debug_exit, r)) {
        log_error("internal: too many debug hooks");
        return -1;
    }
    if (pthread_create(&r->kicker, NULL, kicker, r) == 0)
        r->kicker_started = true;
    return 0;
}

/* A hash of all guest RAM: a replay that ends with other memory than the recording did is not
 * the same run, whatever it printed. */
static uint64_t memory_hash(const struct vm *vm)
{
    uint64_t h = 14695981039346656037ULL;
    for (unsigned i = 0; i < vm->mem.ram_count; i++) {
        const uint64_t *w = (const uint64_t *)vm->mem.ram[i].host;
        for (uint64_t n = vm->mem.ram[i].size / 8; w && n--; w++) {
            h = (h ^ *w) * 0x9E3779B97F4A7C15ULL;
            h ^= h >> 29;
        }
    }
    return h;
}

int record_detach(struct vm *vm, int status)
{
    struct recorder *r = rec_of(vm);
    int verdict = 0;
    if (!r)
        return 0;
    atomic_store(&r->stop, true);
    if (r->kicker_started)
        pthread_join(r->kicker, NULL);
    if (r->log && r->turned) {
        fclose(r->log); /* (its end was written when it turned) */
    } else if (r->log && !r->replay) {
        write_end(r, status);
        if (fclose(r->log) != 0)
            log_error("--record: writing the log failed: %s", strerror(errno));
        r->log = NULL;
    } else if (r->log) {
        if (!r->rd.diverged && status != VM_STATUS_RESET && r->rd.next_type == 'X' && r->rd.end.status != status)
            log_warn("replay: the machine ended with status %d; the recording with %d", status, r->rd.end.status);
        else if (!r->rd.diverged && r->rd.next_type != 'X' && status >= 0)
            log_warn("replay: the machine ended before the recording did (exit %" PRIu64 ")", r->rd.exits);
        else if (!r->rd.diverged && r->rd.next_type == 'X' && r->rd.end.status == status && status != VM_STATUS_RESET &&
                 r->rd.end.memory_hash != final_hash(r)) {
            log_error("replay diverged: the guest's memory at the end differs from the recording's (what "
                      "the recording cannot give again: the TSC, the LAPIC timer?)");
            verdict = EXIT_FAILURE_SLATE;
        }
        fclose(r->log);
    }
    pthread_mutex_destroy(&r->lock);
    vm->record = NULL;
    free(r->writes);
    free(r);
    return verdict;
}

/* The recorded command line, which the configuration points into until slate exits. */
static char *replay_text;
static char **replay_argv;

int record_replay_config(const char *path, const struct slate_config *given, struct slate_config *out)
{
    FILE *f = fopen(path, "rbe");
    struct rec_header h;
    if (!f || fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, REC_MAGIC, 8) || h.version != REC_VERSION ||
        h.argv_bytes > (1u << 20)) {
        log_error("--replay %s: %s", path, !f ? strerror(errno) : "not a slate recording");
        if (f)
            fclose(f);
        return -1;
    }
    char *text = malloc(h.argv_bytes + 1);
    char **argv = calloc(h.argv_bytes + 2, sizeof(char *));
    if (!text || !argv || fread(text, 1, h.argv_bytes, f) != h.argv_bytes || (h.argv_bytes && text[h.argv_bytes - 1])) {
        log_error("--replay %s: the recorded command line is truncated", path);
        fclose(f);
        free(text);
        free(argv);
        return -1;
    }
    fclose(f);
    free(replay_text);
    free(replay_argv);
    replay_text = text, replay_argv = argv;
    int argc = 0;
    argv[argc++] = "slate";
    for (uint32_t at = 0; at < h.argv_bytes; at += (uint32_t)strlen(text + at) + 1)
        argv[argc++] = text + at;
    char err[512];
    if (options_parse(argc, argv, out, err, sizeof(err)) != OPTIONS_RUN || !out->record_path) {
        log_error("--replay %s: the recorded command line does not parse", path);
        return -1;
    }
    /* The machine is the recording's; how this run is watched is the user's. */
    out->record_path = NULL;
    out->replay_path = given->replay_path;
    out->serial = given->serial == SERIAL_STDIO ? SERIAL_STDIO : given->serial;
    out->serial_path = given->serial_path;
    out->gdb = given->gdb, out->gdb_wait = given->gdb_wait, out->monitor = given->monitor;
    out->timeout_s = given->timeout_s, out->trace = given->trace, out->trace_file = given->trace_file;
    out->exc_vectors = given->exc_vectors, out->report = given->report, out->dump_core = given->dump_core;
    out->dump_dir = given->dump_dir, out->stats = given->stats, out->on_crash_pause = given->on_crash_pause;
    out->vnc_host[0] = out->web_host[0] = 0, out->sdl = false, out->screenshot = given->screenshot;
    out->argc = argc, out->argv = argv; /* (kept: the strings live until exit) */
    return 0;
}
