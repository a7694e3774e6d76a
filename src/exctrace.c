/* exctrace.c - see exctrace.h. */
#include "exctrace.h"

#include "explain.h"
#include "symbols.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FAULT_LOOP 100 /* the same exception at the same place this often is a loop */

/* Vectors whose frame carries an error code. */
static bool has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

int exc_trace_parse(const char *list, uint32_t *vectors, char *err, size_t errlen)
{
    static const char *const names[32] = {"de", "db", "nmi", "bp", "of", "br", "ud", "nm", "df", NULL,
                                          "ts", "np", "ss", "gp", "pf", NULL, "mf", "ac", "mc", "xm",
                                          "ve", "cp"};
    *vectors = 0;
    if (!*list) {
        *vectors = 1u << 8 | 1u << 14 | 1u << 13 | 1u << 6;
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, "+,");
        int v = -1;
        for (int i = 0; i < 32; i++)
            if (names[i] && strlen(names[i]) == len && !strncasecmp(p, names[i], len))
                v = i;
        char *end;
        long n = strtol(p, &end, 0);
        if (v < 0 && end == p + len && n >= 0 && n < 32)
            v = (int)n;
        if (v < 0)
            return error_text(err, errlen, "--trace exc=%s: '%.*s' is not an exception (de, db, bp, ud, "
                              "df, gp, pf, ... or 0..31)", list, (int)len, p);
        *vectors |= 1u << v;
        p += len + (p[len] != 0);
    }
    if (__builtin_popcount(*vectors) > EXC_WATCHED)
        return error_text(err, errlen, "--trace exc=%s: at most %d exceptions (one debug register "
                          "each)", list, EXC_WATCHED);
    return 0;
}

/* Reads IDT[vector]'s handler as cpu sees its IDT; 0 when there is none (past the limit,
 * unmapped, not present). */
static uint64_t gate_handler(struct vcpu *cpu, const struct kvm_sregs *s, unsigned vector)
{
    bool lm = s->efer & X86_EFER_LMA;
    uint8_t g[16];
    unsigned size = lm ? 16 : 8;
    uint64_t at = s->idt.base + (uint64_t)vector * size;
    if (!(s->cr0 & X86_CR0_PE) || (uint64_t)vector * size + size - 1 > s->idt.limit)
        return 0;
    /* After every exit: read the page tables directly; only 32-bit paging takes KVM_TRANSLATE. */
    const void *gate = memory_linear_ptr(&cpu->vm->mem, s, at, size);
    if (gate)
        memcpy(g, gate, size);
    else if ((s->cr0 & X86_CR0_PG) && !(s->efer & X86_EFER_LMA) && vcpu_read_virtual(cpu, at, g, size) == size)
        gate = g;
    if (!gate || !(g[5] & 0x80))
        return 0;
    uint64_t h = (uint64_t)g[0] | (uint64_t)g[1] << 8 | (uint64_t)g[6] << 16 | (uint64_t)g[7] << 24;
    if (lm)
        h |= (uint64_t)g[8] << 32 | (uint64_t)g[9] << 40 | (uint64_t)g[10] << 48 | (uint64_t)g[11] << 56;
    return h;
}

/* Programs the debug registers with every watched handler, but `skip` (-1: none), and with a
 * single step when stepping past it. */
static void program(struct vcpu *cpu, int skip)
{
    struct kvm_guest_debug want = {0};
    for (int slot = 0; slot < EXC_WATCHED; slot++) {
        if (cpu->exc_vector[slot] < 0 || !cpu->exc_handler[slot] ||
            (skip >= 0 && cpu->exc_handler[slot] == cpu->exc_handler[skip]))
            continue; /* (every slot on the handler being stepped past) */
        want.arch.debugreg[slot] = cpu->exc_handler[slot];
        want.arch.debugreg[7] |= 1ULL << (2 * slot); /* local enable, execute, 1 byte */
    }
    if (want.arch.debugreg[7])
        want.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
    if (skip >= 0)
        want.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
    cpu->exc_stepping = skip;
    int rc = vcpu_set_debug(cpu, DEBUG_TRACER, &want);
    if (rc < 0)
        log_warn_limited(&cpu->vm->guest_limit, "--trace exc: cpu %u: KVM_SET_GUEST_DEBUG: %s", cpu->index,
                         strerror(-rc));
}

void exc_trace_check(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    const struct kvm_sregs *s = &cpu->run->s.regs.sregs; /* synced on every exit (KVM_SYNC_X86_SREGS) */
    unsigned slot = 0;
    bool changed = false;
    for (unsigned v = 0; v < 32 && slot < EXC_WATCHED; v++) {
        if (!(vm->exc_vectors & 1u << v))
            continue;
        uint64_t h = gate_handler(cpu, s, v);
        changed |= h != cpu->exc_handler[slot] || cpu->exc_vector[slot] != (int)v;
        cpu->exc_handler[slot] = h;
        cpu->exc_vector[slot] = (int)v;
        slot++;
    }
    if ((!changed && cpu->exc_armed) || cpu->exc_stepping >= 0)
        return;
    cpu->exc_armed = true;
    program(cpu, -1);
}

static void describe_error(char *buf, size_t len, unsigned vector, uint64_t error)
{
    if (vector == 14)
        snprintf(buf, len, "%#" PRIx64 "(%s,%s%s%s)", error, error & 2 ? "write" : "read",
                 error & 1 ? "protection" : "not-present", error & 4 ? ",user" : "",
                 error & 16 ? ",fetch" : "");
    else if (error & ~7ULL)
        snprintf(buf, len, "%#" PRIx64 "(selector %#" PRIx64 "%s)", error, (uint64_t)(error & ~(uint64_t)7),
                 error & 2 ? " in the IDT" : "");
    else
        snprintf(buf, len, "%#" PRIx64, error);
}

static void record(struct vm *vm, struct vcpu *cpu, const struct exc_record *e)
{
    uint64_t n = atomic_fetch_add(&vm->exc_next, 1);
    vm->exc_ring[n % EXC_HISTORY] = *e;
    flight_record(&vm->flight, FLIGHT_EXCEPTION, cpu->index, e->vector, e->rip, 0);
    /* The same exception at the same place again and again: one line for the loop. */
    bool same = cpu->exc_last.vector == e->vector && cpu->exc_last.rip == e->rip && cpu->exc_last.cr2 == e->cr2;
    cpu->exc_repeats = same ? cpu->exc_repeats + 1 : 0;
    cpu->exc_last = *e;
    char name[24], err[64] = "", where[256] = "";
    explain_vector_name(e->vector, name, sizeof(name));
    if (cpu->exc_repeats > FAULT_LOOP)
        return;
    pthread_mutex_lock(&vm->exc_lock);
    if (!vm->exc_syms)
        vm->exc_syms = symbols_open(config_symbols(vm->cfg));
    symbols_describe(vm->exc_syms, e->rip, where, sizeof(where));
    pthread_mutex_unlock(&vm->exc_lock);
    if (cpu->exc_repeats == FAULT_LOOP) {
        trace_event(vm, NULL, "exc cpu%u fault loop: %s at rip=%#" PRIx64 " %s%s%.0" PRIx64 " %d times; "
                    "no more lines for it", cpu->index, name, e->rip, where, e->vector == 14 ? " cr2=0x" : "",
                    e->vector == 14 ? e->cr2 : 0, FAULT_LOOP);
        return;
    }
    if (e->has_error)
        describe_error(err, sizeof(err), e->vector, e->error);
    char cr2[32] = "";
    if (e->vector == 14)
        snprintf(cr2, sizeof(cr2), " cr2=%#" PRIx64, e->cr2);
    trace_event(vm, NULL, "exc cpu%u %s%s%s%s rip=%#" PRIx64 " %s", cpu->index, name, e->has_error ? " err=" : "",
                err, cr2, e->rip, where);
}

/* A debug exit at one of our breakpoints: the handler of a watched vector is being entered, so
 * RSP points at the exception frame. */
static bool exc_debug_exit(void *opaque, struct vcpu *cpu)
{
    struct vm *vm = opaque;
    struct kvm_debug_exit_arch *dbg = &cpu->run->debug.arch;
    if (dbg->exception != 1 || vcpu_debug_wanted(cpu, DEBUG_GDB, KVM_GUESTDBG_USE_HW_BP))
        return false;
    if (cpu->exc_stepping >= 0 && !(dbg->dr6 & 0xF)) { /* past the handler's first instruction */
        program(cpu, -1);
        return true;
    }
    if (!(dbg->dr6 & 0xF))
        return false;
    int slot = __builtin_ctzll(dbg->dr6 & 0xF);
    if (cpu->exc_vector[slot] < 0 || dbg->pc != cpu->exc_handler[slot])
        return false;
    struct kvm_regs *r = &cpu->run->s.regs.regs;
    const struct kvm_sregs *s = &cpu->run->s.regs.sregs;
    unsigned vector = (unsigned)cpu->exc_vector[slot];
    /* (Vectors that share one handler cannot be told apart by its breakpoint: the lowest is named;
     * docs/debugging.md says so.) */
    struct exc_record e = {.ns = clock_now_ns(), .cpu = cpu->index, .vector = (uint8_t)vector,
                           .has_error = has_error_code(vector), .cr2 = s->cr2};
    unsigned width = (s->efer & X86_EFER_LMA) ? 8 : 4;
    uint64_t frame[2] = {0};
    size_t need = (e.has_error ? 2 : 1) * width;
    if (vcpu_read_virtual(cpu, r->rsp, frame, need) == need) {
        if (width == 4) { /* 32-bit frames: unpack the words */
            uint32_t w[4];
            memcpy(w, frame, sizeof(w));
            frame[0] = w[0], frame[1] = w[1];
        }
        e.error = e.has_error ? frame[0] : 0;
        e.rip = e.has_error ? frame[1] : frame[0];
    }
    record(vm, cpu, &e);
    /* Resume the handler: its first instruction runs as a single step with this breakpoint off
     * (RF alone is not honoured by every KVM), then the breakpoint is armed again. */
    program(cpu, slot);
    return true;
}

/* The kick: every 20 ms each vCPU exits once, so a new IDT is seen even by a guest that makes no
 * exits of its own. */
static void exc_kick(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    uint64_t n;
    (void)events;
    if (read(vm->exc_kick.fd, &n, sizeof(n)) <= 0)
        return;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
}

int exc_trace_start(struct vm *vm)
{
    if (vm_add_debug_hook(vm, exc_debug_exit, vm))
        return -1;
    pthread_mutex_init(&vm->exc_lock, NULL);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        vm->vcpus[i].run->kvm_valid_regs |= KVM_SYNC_X86_SREGS;
        for (int s = 0; s < EXC_WATCHED; s++)
            vm->vcpus[i].exc_vector[s] = -1;
        vm->vcpus[i].exc_stepping = -1;
    }
    struct itimerspec every = {{0, 20000000}, {0, 20000000}};
    vm->exc_kick = (struct event_source){.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
                                         .fn = exc_kick, .opaque = vm};
    if (vm->exc_kick.fd < 0 || timerfd_settime(vm->exc_kick.fd, 0, &every, NULL) < 0 ||
        event_add(&vm->loop, &vm->exc_kick, EPOLLIN)) {
        log_error("--trace exc: cannot start its timer: %s", strerror(errno));
        return -1;
    }
    return 0;
}

unsigned exc_trace_history(struct vm *vm, FILE *out)
{
    uint64_t next = atomic_load(&vm->exc_next), first = next > EXC_HISTORY ? next - EXC_HISTORY : 0;
    if (next == first)
        return 0;
    fprintf(out, "  the last exceptions, oldest first (--trace exc):\n");
    int64_t now = clock_now_ns();
    for (uint64_t i = first; i < next; i++) {
        const struct exc_record *e = &vm->exc_ring[i % EXC_HISTORY];
        char name[24], where[256] = "";
        pthread_mutex_lock(&vm->exc_lock);
        symbols_describe(vm->exc_syms, e->rip, where, sizeof(where));
        pthread_mutex_unlock(&vm->exc_lock);
        fprintf(out, "    -%.3f ms cpu%u %s", (double)(now - e->ns) / 1e6, e->cpu,
                explain_vector_name(e->vector, name, sizeof(name)));
        if (e->has_error)
            fprintf(out, " err=%#" PRIx64, e->error);
        if (e->vector == 14)
            fprintf(out, " cr2=%#" PRIx64, e->cr2);
        fprintf(out, " rip=%#" PRIx64 " %s\n", e->rip, where);
    }
    return (unsigned)(next - first);
}

int exc_trace_last_vector(struct vm *vm, unsigned cpu)
{
    uint64_t next = atomic_load(&vm->exc_next), first = next > EXC_HISTORY ? next - EXC_HISTORY : 0;
    for (uint64_t i = next; i-- > first;)
        if (vm->exc_ring[i % EXC_HISTORY].cpu == cpu)
            return vm->exc_ring[i % EXC_HISTORY].vector;
    return -1;
}
