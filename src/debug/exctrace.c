/* exctrace.c - see exctrace.h. */
#include "exctrace.h"

#include "debug_room.h"
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

/* A CPU's handlers watched in the debug registers, and its last exception. */
struct exc_cpu {
    uint64_t handler[EXC_WATCHED];
    int vector[EXC_WATCHED]; /* -1: slot unused */
    bool armed;
    int stepping; /* the slot stepped past, its breakpoint off for one instruction; -1: none */
    struct exc_record last;
    unsigned repeats;
};

struct exc_tracer {
    uint32_t vectors;
    struct exc_record ring[EXC_HISTORY];
    _Atomic uint64_t next;
    pthread_mutex_t lock; /* guards syms */
    struct symbols *syms;
    struct event_source kick;
    struct exc_cpu *cpus;
};

static struct exc_tracer *tracer(const struct vm *vm) { return debug_room(vm)->exc; }
static struct exc_cpu *tc(const struct vcpu *cpu) { return &tracer(cpu->vm)->cpus[cpu->index]; }

/* Vectors whose frame carries an error code. */
static bool has_error_code(unsigned v)
{
    return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
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
        if (tc(cpu)->vector[slot] < 0 || !tc(cpu)->handler[slot] ||
            (skip >= 0 && tc(cpu)->handler[slot] == tc(cpu)->handler[skip]))
            continue; /* (every slot on the handler being stepped past) */
        want.arch.debugreg[slot] = tc(cpu)->handler[slot];
        want.arch.debugreg[7] |= 1ULL << (2 * slot); /* local enable, execute, 1 byte */
    }
    if (want.arch.debugreg[7])
        want.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
    if (skip >= 0)
        want.control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ;
    tc(cpu)->stepping = skip;
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
        if (!(tracer(vm)->vectors & 1u << v))
            continue;
        uint64_t h = gate_handler(cpu, s, v);
        changed |= h != tc(cpu)->handler[slot] || tc(cpu)->vector[slot] != (int)v;
        tc(cpu)->handler[slot] = h;
        tc(cpu)->vector[slot] = (int)v;
        slot++;
    }
    if ((!changed && tc(cpu)->armed) || tc(cpu)->stepping >= 0)
        return;
    tc(cpu)->armed = true;
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
    uint64_t n = atomic_fetch_add(&tracer(vm)->next, 1);
    tracer(vm)->ring[n % EXC_HISTORY] = *e;
    flight_record(&vm->flight, FLIGHT_EXCEPTION, cpu->index, e->vector, e->rip, 0);
    /* The same exception at the same place again and again: one line for the loop, whatever moves
     * between repeats (a #PF loop's CR2, an error code). */
    bool same = tc(cpu)->last.vector == e->vector && tc(cpu)->last.rip == e->rip;
    tc(cpu)->repeats = same ? tc(cpu)->repeats + 1 : 0;
    tc(cpu)->last = *e;
    char name[24], err[64] = "", where[256] = "";
    explain_vector_name(e->vector, name, sizeof(name));
    if (tc(cpu)->repeats > FAULT_LOOP)
        return;
    pthread_mutex_lock(&tracer(vm)->lock);
    if (!tracer(vm)->syms)
        tracer(vm)->syms = symbols_open(config_symbols(vm->cfg));
    symbols_describe(tracer(vm)->syms, e->rip, where, sizeof(where));
    pthread_mutex_unlock(&tracer(vm)->lock);
    if (tc(cpu)->repeats == FAULT_LOOP) {
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
    if (tc(cpu)->stepping >= 0 && !(dbg->dr6 & 0xF)) { /* past the handler's first instruction */
        program(cpu, -1);
        return true;
    }
    if (!(dbg->dr6 & 0xF))
        return false;
    int slot = __builtin_ctzll(dbg->dr6 & 0xF);
    if (tc(cpu)->vector[slot] < 0 || dbg->pc != tc(cpu)->handler[slot])
        return false;
    struct kvm_regs *r = &cpu->run->s.regs.regs;
    const struct kvm_sregs *s = &cpu->run->s.regs.sregs;
    unsigned vector = (unsigned)tc(cpu)->vector[slot];
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
    if (read(tracer(vm)->kick.fd, &n, sizeof(n)) <= 0)
        return;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
}

static void on_vcpu(void *opaque, struct vcpu *cpu, enum vcpu_hook_point at)
{
    (void)opaque;
    if (at != VCPU_HOOK_KICK) /* before the first instruction too: an IDT set up by the entry */
        exc_trace_check(cpu); /* the IDT may have moved since the last exit */
}

/* Once, at start: which exceptions are watched, and which cannot be, and why. */
static void say_what_is_watched(uint32_t vectors)
{
    char watched[160] = "", unwatched[256] = "", name[24];
    for (unsigned v = 0; v < 32; v++) {
        if (v == 9 || v == 15 || (v >= 22 && v <= 27) || v == 31)
            continue; /* reserved: no CPU raises them */
        char *into = vectors & 1u << v ? watched : unwatched;
        size_t used = strlen(into), room = (vectors & 1u << v ? sizeof(watched) : sizeof(unwatched)) - used;
        snprintf(into + used, room, "%s%s", used ? " " : "", explain_vector_name(v, name, sizeof(name)));
    }
    log_info("--trace exc watches %s (a hardware breakpoint on each handler); not watched: %s (a CPU "
             "has %d debug registers: name others with exc=..., e.g. exc=df+pf)", watched, unwatched,
             EXC_WATCHED);
}

int exc_trace_start(struct vm *vm)
{
    struct exc_tracer *t = calloc(1, sizeof(*t));
    if (!t || !(t->cpus = calloc(vm->vcpu_count, sizeof(*t->cpus)))) {
        free(t);
        log_error("out of memory");
        return -1;
    }
    debug_room(vm)->exc = t;
    t->vectors = vm->cfg->exc_vectors;
    say_what_is_watched(t->vectors);
    t->kick.fd = -1;
    pthread_mutex_init(&t->lock, NULL);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        vm->vcpus[i].run->kvm_valid_regs |= KVM_SYNC_X86_SREGS;
        for (int s = 0; s < EXC_WATCHED; s++)
            t->cpus[i].vector[s] = -1;
        t->cpus[i].stepping = -1;
    }
    if (vm_add_debug_hook(vm, exc_debug_exit, vm) || vm_add_vcpu_hook(vm, on_vcpu, t)) {
        log_error("internal: too many debug hooks");
        return -1;
    }
    struct itimerspec every = {{0, 20000000}, {0, 20000000}};
    t->kick = (struct event_source){.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
                                    .fn = exc_kick, .opaque = vm};
    if (t->kick.fd < 0 || timerfd_settime(t->kick.fd, 0, &every, NULL) < 0 ||
        event_add(&vm->loop, &t->kick, EPOLLIN)) {
        log_error("--trace exc: cannot start its timer: %s", strerror(errno));
        return -1;
    }
    return 0;
}

bool exc_trace_on(struct vm *vm) { return tracer(vm) != NULL; }

void exc_trace_stop(struct vm *vm)
{
    struct exc_tracer *t = tracer(vm);
    if (!t)
        return;
    if (t->kick.fd >= 0)
        close(t->kick.fd);
    symbols_close(t->syms);
    pthread_mutex_destroy(&t->lock);
    free(t->cpus);
    free(t);
    debug_room(vm)->exc = NULL;
}

bool exc_trace_fault_loop(struct vcpu *cpu, struct exc_record *last, unsigned *repeats, char *where,
                          size_t len)
{
    struct exc_tracer *t = tracer(cpu->vm);
    if (!t || tc(cpu)->repeats < 10)
        return false;
    *last = tc(cpu)->last;
    *repeats = tc(cpu)->repeats;
    pthread_mutex_lock(&t->lock);
    symbols_describe(t->syms, last->rip, where, len);
    pthread_mutex_unlock(&t->lock);
    return true;
}

unsigned exc_trace_history(struct vm *vm, FILE *out)
{
    if (!tracer(vm))
        return 0;
    uint64_t next = atomic_load(&tracer(vm)->next), first = next > EXC_HISTORY ? next - EXC_HISTORY : 0;
    if (next == first)
        return 0;
    fprintf(out, "  the last exceptions, oldest first (--trace exc):\n");
    int64_t now = clock_now_ns();
    for (uint64_t i = first; i < next; i++) {
        const struct exc_record *e = &tracer(vm)->ring[i % EXC_HISTORY];
        char name[24], where[256] = "";
        pthread_mutex_lock(&tracer(vm)->lock);
        symbols_describe(tracer(vm)->syms, e->rip, where, sizeof(where));
        pthread_mutex_unlock(&tracer(vm)->lock);
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
    if (!tracer(vm))
        return -1;
    uint64_t next = atomic_load(&tracer(vm)->next), first = next > EXC_HISTORY ? next - EXC_HISTORY : 0;
    for (uint64_t i = next; i-- > first;)
        if (tracer(vm)->ring[i % EXC_HISTORY].cpu == cpu)
            return tracer(vm)->ring[i % EXC_HISTORY].vector;
    return -1;
}
