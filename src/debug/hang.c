/* hang.c - see hang.h. A hung kernel halts with nothing to wake it, spins, or waits for an
 * interrupt the local APIC will not deliver: the report reads what a person would check with a
 * debugger, for every CPU at once, and says what it sees. */
#include "hang.h"

#include "backtrace.h"
#include "cpu_state.h"
#include "exctrace.h"
#include "explain.h"
#include "inspect.h"
#include "symbols.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define APIC_TPR 0x80
#define APIC_SVR 0xF0
#define APIC_ISR 0x100
#define APIC_IRR 0x200
#define APIC_LVT_TIMER 0x320
#define APIC_TIMER_INIT 0x380
#define APIC_TIMER_CURRENT 0x390
#define SAMPLES 25
#define SAMPLE_GAP_NS 20000000 /* 25 samples over half a second */

struct cpu_view {
    bool ok, halted;
    struct kvm_regs r;
    struct kvm_sregs s;
    struct kvm_lapic_state apic;
    bool apic_ok;
};

static uint32_t apic_reg(const struct kvm_lapic_state *a, unsigned off)
{
    uint32_t v;
    memcpy(&v, a->regs + off, 4);
    return v;
}

/* The highest vector set in the 256-bit ISR or IRR at `base`, or -1. */
static int highest_vector(const struct kvm_lapic_state *a, unsigned base)
{
    for (int i = 7; i >= 0; i--) {
        uint32_t bits = apic_reg(a, base + 16 * (unsigned)i);
        if (bits)
            return i * 32 + 31 - __builtin_clz(bits);
    }
    return -1;
}

static bool vector_set(const struct kvm_lapic_state *a, unsigned base, unsigned vector)
{
    return (apic_reg(a, base + 16 * (vector / 32)) >> (vector % 32)) & 1;
}

/* Whether the local APIC of the CPU in v keeps `vector` from its handler, and why: an interrupt
 * of the same or a higher priority class in service, the TPR, or waiting in the IRR while the
 * CPU has interrupts off. */
static bool held_back(const struct cpu_view *v, unsigned vector, char *why, size_t len)
{
    if (!v->ok || !v->apic_ok)
        return false;
    int in_service = highest_vector(&v->apic, APIC_ISR);
    unsigned tpr = apic_reg(&v->apic, APIC_TPR) & 0xFF;
    if (in_service >= 0 && (unsigned)in_service >> 4 >= vector >> 4)
        snprintf(why, len, "behind vector %#x, in service and never EOI'd", in_service);
    else if (tpr >> 4 >= vector >> 4)
        snprintf(why, len, "by the TPR (%#x)", tpr);
    else if (vector_set(&v->apic, APIC_IRR, vector) && !(v->r.rflags & (1u << 9)))
        snprintf(why, len, "in the IRR: the CPU has interrupts off");
    else
        return false;
    return true;
}

static bool long_mode(const struct kvm_sregs *s) { return (s->efer & X86_EFER_LMA) && s->cs.l; }

static uint64_t rip_of(const struct cpu_view *v)
{
    return long_mode(&v->s) ? v->r.rip : (v->s.cs.base + v->r.rip) & 0xFFFFFFFF;
}

static void read_cpu(struct vcpu *cpu, struct cpu_view *v)
{
    *v = (struct cpu_view){0};
    struct cpu_state st = {0};
    v->ok = cpu_state_get(cpu, CPU_REGS | CPU_SREGS, &st, NULL) == 0;
    v->r = st.regs, v->s = st.sregs;
    v->halted = cpu_state_halted(cpu);
    v->apic_ok = cpu_state_get(cpu, CPU_LAPIC, &st, NULL) == 0;
    v->apic = st.lapic;
}

static const char *mode_name(const struct kvm_sregs *s)
{
    if (!(s->cr0 & X86_CR0_PE))
        return "real mode";
    if (long_mode(s))
        return "long mode";
    return s->efer & X86_EFER_LMA ? "compatibility mode" : "protected mode";
}

/* Follows the RBP chain (kernels built with frame pointers): [rbp] the caller's RBP, [rbp+8]
 * the return address. Stops at a frame that is unmapped or does not move up the stack. */
/* The callers of the code at RIP (the first line already names RIP itself). */
static void print_backtrace(FILE *out, struct vcpu *cpu, const struct cpu_view *v, struct symbols *syms)
{
    struct bt_frame frames[13];
    unsigned n = backtrace_of(cpu, &v->r, &v->s, syms, frames, 13);
    for (unsigned i = 1; i < n; i++) {
        char where[256];
        fprintf(out, "      #%u %#" PRIx64 " %s%s\n", i, frames[i].pc, backtrace_describe(syms, &frames[i], where, sizeof(where)),
                frames[i].activation ? " (interrupted here)" : "");
    }
}

/* Interrupt lines some device aims at this CPU with a vector (the guest enabled them). */
static unsigned lines_aimed_at(struct vm *vm, unsigned cpu)
{
    unsigned n = 0;
    for (unsigned d = 0; d < vm->device_count; d++)
        for (unsigned i = 0; i < vm->devices[d].ops->irq_count; i++)
            n += atomic_load(&vm->devices[d].irq[i].vector) && atomic_load(&vm->devices[d].irq[i].cpu) == cpu;
    return n;
}

static void print_diagnoses(FILE *out, struct vm *vm, unsigned index, const struct cpu_view *v)
{
    bool interrupts_on = v->r.rflags & (1u << 9);
    struct exc_record last;
    unsigned repeats;
    char name[24], where[256] = "";
    if (exc_trace_fault_loop(&vm->vcpus[index], &last, &repeats, where, sizeof(where))) {
        fprintf(out, "    diagnosis: a fault loop: %s at rip=%#" PRIx64 " %s",
                explain_vector_name(last.vector, name, sizeof(name)), last.rip, where);
        if (last.vector == 14)
            fprintf(out, " cr2=%#" PRIx64, last.cr2);
        fprintf(out, ", %u times in a row: its handler returns to the faulting instruction unchanged\n",
                repeats + 1);
    }
    if (v->halted && !interrupts_on)
        fprintf(out, "    diagnosis: halted with interrupts off (cli; hlt): only an NMI or INIT "
                     "can wake it\n");
    if (!v->apic_ok)
        return;
    int in_service = highest_vector(&v->apic, APIC_ISR);
    int requested = highest_vector(&v->apic, APIC_IRR);
    if (in_service >= 0)
        fprintf(out, "    diagnosis: vector %#x is in service and was never EOI'd: interrupts of "
                     "its priority and lower are held back%s\n", in_service,
                requested >= 0 ? " (some are waiting in the IRR)" : "");
    bool apic_on = apic_reg(&v->apic, APIC_SVR) & 0x100;
    if (v->halted && interrupts_on && !apic_on)
        fprintf(out, "    diagnosis: its local APIC is software-disabled (SVR bit 8 clear): no "
                     "interrupt reaches it\n");
    uint32_t lvt = apic_reg(&v->apic, APIC_LVT_TIMER);
    bool timer_armed = !(lvt & 0x10000) &&
                       (((lvt >> 17) & 3) == 2 || apic_reg(&v->apic, APIC_TIMER_CURRENT) != 0);
    if (v->halted && interrupts_on && apic_on && !timer_armed && in_service < 0 &&
        !lines_aimed_at(vm, index))
        fprintf(out, "    diagnosis: nothing can wake it: its APIC timer is %s and no device "
                     "interrupt is aimed at it\n", lvt & 0x10000 ? "masked" : "not running");
}

static void print_cpu(FILE *out, struct vm *vm, unsigned index, const struct cpu_view *v,
                      struct symbols *syms)
{
    if (!v->ok) {
        fprintf(out, "  cpu %u: registers unavailable: %s\n", index, strerror(errno));
        return;
    }
    char where[256];
    uint64_t rip = rip_of(v);
    if (rip >= SLATE_BOOT_TABLES && rip < SLATE_BOOT_TABLES + SLATE_BOOT_TABLES_SIZE)
        snprintf(where, sizeof(where), "(slate's park stub: the CPU's entry function returned)");
    else
        symbols_describe(syms, rip, where, sizeof(where));
    char state[128];
    fprintf(out, "  cpu %u: %s, interrupts %s, %s, rip=%#" PRIx64 " %s\n", index,
            vcpu_run_state(&vm->vcpus[index], state, sizeof(state)), v->r.rflags & (1u << 9) ? "on" : "off",
            mode_name(&v->s), rip, where);
    print_backtrace(out, &vm->vcpus[index], v, syms);
    if (v->apic_ok) {
        uint32_t lvt = apic_reg(&v->apic, APIC_LVT_TIMER);
        static const char *const modes[4] = {"one-shot", "periodic", "TSC-deadline", "?"};
        fprintf(out, "    lapic: %s, tpr=%#x, isr=%d, irr=%d, timer %s vector %#x%s\n",
                apic_reg(&v->apic, APIC_SVR) & 0x100 ? "enabled" : "disabled",
                apic_reg(&v->apic, APIC_TPR), highest_vector(&v->apic, APIC_ISR),
                highest_vector(&v->apic, APIC_IRR), modes[(lvt >> 17) & 3], lvt & 0xFF,
                lvt & 0x10000 ? " (masked)" : "");
    }
    print_diagnoses(out, vm, index, v);
}

/* What one sample of a CPU says about exceptions: inside the handler of exception `vector` (IDT
 * 0..31; -1: not in one), which interrupted `at` (0: the handler's frames could not be unwound) with
 * CR2 then; outside any handler, `at` is the sampled RIP itself. */
struct exception_sample {
    int vector;
    uint64_t at, cr2;
};

/* The exception vector whose IDT gate points at `fn` (a function's start), or -1. Long mode. */
static int handler_vector(struct vcpu *cpu, const struct kvm_sregs *s, uint64_t fn)
{
    for (unsigned v = 0; v < 32 && (uint64_t)v * 16 + 15 <= s->idt.limit; v++) {
        uint8_t g[16];
        if (vcpu_read_virtual(cpu, s->idt.base + (uint64_t)v * 16, g, sizeof(g)) != sizeof(g) || !(g[5] & 0x80))
            continue;
        uint64_t h = (uint64_t)g[0] | (uint64_t)g[1] << 8 | (uint64_t)g[6] << 16 | (uint64_t)g[7] << 24 |
                     (uint64_t)g[8] << 32 | (uint64_t)g[9] << 40 | (uint64_t)g[10] << 48 | (uint64_t)g[11] << 56;
        if (h == fn)
            return (int)v;
    }
    return -1;
}

static struct exception_sample sample_exception(struct vcpu *cpu, const struct cpu_view *v, struct symbols *syms)
{
    struct exception_sample e = {-1, rip_of(v), v->s.cr2};
    struct symbol_info fn;
    if (!long_mode(&v->s) || !symbols_lookup(syms, e.at, &fn) ||
        (e.vector = handler_vector(cpu, &v->s, fn.function_start)) < 0)
        return e;
    struct bt_frame frames[8];
    unsigned n = backtrace_of(cpu, &v->r, &v->s, syms, frames, 8);
    e.at = 0;
    for (unsigned i = 1; i < n; i++)
        if (frames[i].activation) {
            e.at = frames[i].pc; /* where the exception came from */
            break;
        }
    return e;
}

/* How far before a faulting instruction a sample still counts as the loop's own: the handler
 * returns to the faulting instruction or (a handler that moves RIP back) to the few instructions
 * that lead up to it in the same function, and a sample taken there is about to fault again. */
#define FAULT_LOOP_LEAD_IN 32

static bool leads_to(uint64_t rip, uint64_t at, struct symbols *syms)
{
    struct symbol_info a, b;
    if (rip > at || at - rip > FAULT_LOOP_LEAD_IN)
        return false;
    if (rip == at)
        return true;
    return symbols_lookup(syms, rip, &a) && symbols_lookup(syms, at, &b) && a.function_start == b.function_start;
}

/* A fault loop the samples show without --trace exc: most samples inside one exception's handler
 * (which interrupted one instruction, or could not be unwound), or at that instruction or just
 * before it (about to fault again). */
static void print_sampled_fault_loop(FILE *out, const struct exception_sample *s, unsigned taken,
                                     struct symbols *syms)
{
    for (unsigned i = 0; i < taken; i++) {
        if (s[i].vector < 0 || !s[i].at)
            continue;
        unsigned in_handler = 0, at = 0;
        for (unsigned j = 0; j < taken; j++) {
            if (s[j].vector == s[i].vector && (s[j].at == s[i].at || !s[j].at))
                in_handler++;
            else if (s[j].vector < 0 && leads_to(s[j].at, s[i].at, syms))
                at++;
        }
        if (in_handler < 2 || in_handler + at < (taken + 1) / 2)
            continue;
        char name[24], where[256];
        fprintf(out, "    diagnosis: a fault loop: %s at rip=%#" PRIx64 " %s",
                explain_vector_name((unsigned)s[i].vector, name, sizeof(name)), s[i].at,
                symbols_describe(syms, s[i].at, where, sizeof(where)));
        if (s[i].vector == 14)
            fprintf(out, " cr2=%#" PRIx64, s[i].cr2);
        fprintf(out, ": %u of %u samples in its handler or at the faulting instruction (seen without "
                     "--trace exc): the handler returns to it unchanged\n", in_handler + at, taken);
        return;
    }
}

/* Where each CPU spends its time: RIP sampled with short holds. Symbolized, most frequent first. */
static void print_samples(FILE *out, struct vm *vm, struct symbols *syms)
{
    unsigned n = vm->vcpu_count < 64 ? vm->vcpu_count : 64;
    static uint64_t rips[64][SAMPLES];
    static struct exception_sample exceptions[64][SAMPLES];
    unsigned taken = 0;
    for (; taken < SAMPLES && !atomic_load(&vm->stopping); taken++) {
        if (!vm_hold(vm, HOLD_REPORT))
            break;
        for (unsigned c = 0; c < n; c++) {
            struct cpu_view v;
            v.ok = cpu_state_regs(&vm->vcpus[c], &v.r, &v.s) == 0;
            bool halted = cpu_state_halted(&vm->vcpus[c]);
            rips[c][taken] = !v.ok ? 0 : halted ? 1 : rip_of(&v); /* 1: halted */
            exceptions[c][taken] = v.ok && !halted ? sample_exception(&vm->vcpus[c], &v, syms)
                                                   : (struct exception_sample){-1, 0, 0};
        }
        vm_release(vm, HOLD_REPORT);
        nanosleep(&(struct timespec){0, SAMPLE_GAP_NS}, NULL);
    }
    if (!taken)
        return;
    fprintf(out, "  where the CPUs spent the next %u ms (%u samples):\n", taken * SAMPLE_GAP_NS / 1000000, taken);
    for (unsigned c = 0; c < n; c++) {
        /* Count by function (or address when unknown), three most frequent. */
        char names[SAMPLES][128];
        unsigned counts[SAMPLES] = {0}, kinds = 0;
        for (unsigned i = 0; i < taken; i++) {
            char name[128];
            struct symbol_info fn;
            if (rips[c][i] == 1)
                snprintf(name, sizeof(name), "halted");
            else if (symbols_lookup(syms, rips[c][i], &fn))
                snprintf(name, sizeof(name), "%s", fn.function);
            else
                snprintf(name, sizeof(name), "%#" PRIx64, rips[c][i]);
            unsigned k = 0;
            while (k < kinds && strcmp(names[k], name))
                k++;
            if (k == kinds)
                snprintf(names[kinds++], sizeof(names[0]), "%s", name);
            counts[k]++;
        }
        fprintf(out, "    cpu %u:", c);
        for (unsigned shown = 0; shown < 3 && shown < kinds; shown++) {
            unsigned best = 0;
            for (unsigned k = 1; k < kinds; k++)
                best = counts[k] > counts[best] ? k : best;
            fprintf(out, " %s %u%%", names[best], counts[best] * 100 / taken);
            counts[best] = 0;
        }
        fputc('\n', out);
        if (!exc_trace_on(vm)) /* (--trace exc counts the loop itself: print_diagnoses) */
            print_sampled_fault_loop(out, exceptions[c], taken, syms);
    }
}

/* Devices whose interrupt status is still set while their line is enabled: a guest that never
 * acknowledges gets no new interrupt from them (the rule in docs/machine.md) - unless the CPU's
 * local APIC holds the interrupt back, and then that is what is said. Machine held; views[] are
 * the first `views` CPUs. */
static void print_device_diagnoses(FILE *out, struct vm *vm, const struct cpu_view *view, unsigned views)
{
    for (unsigned d = 0; d < vm->device_count; d++) {
        struct device *dev = &vm->devices[d];
        bool enabled = false, all_held = true;
        char why[96] = "";
        unsigned held_vector = 0, held_cpu = 0;
        for (unsigned i = 0; i < dev->ops->irq_count; i++) {
            unsigned vector = atomic_load(&dev->irq[i].vector), cpu = atomic_load(&dev->irq[i].cpu);
            if (!vector)
                continue;
            enabled = true;
            if (cpu < views && held_back(&view[cpu], vector, why, sizeof(why)))
                held_vector = vector, held_cpu = cpu;
            else
                all_held = false;
        }
        if (!dev->ops->irq_status_reg || !enabled)
            continue;
        struct bus_io io = {.offset = dev->ops->irq_status_reg, .width = 4};
        device_register_io(dev, &io);
        if (!(uint32_t)io.value)
            continue;
        if (all_held)
            fprintf(out, "  diagnosis: %s's IRQ_STATUS is %#x: its interrupt (vector %#x) is held back on cpu %u %s\n",
                    dev->name, (uint32_t)io.value, held_vector, held_cpu, why);
        else
            fprintf(out, "  diagnosis: %s's IRQ_STATUS is %#x, never acknowledged: it sends no new "
                         "interrupt until the guest writes those bits back\n", dev->name,
                    (uint32_t)io.value);
    }
}

void hang_report(struct vm *vm, FILE *out, const char *why)
{
    struct symbols *syms = symbols_open(config_symbols(vm->cfg));
    fprintf(out, "slate: hang report (%s):\n", why);
    if (!vm_hold(vm, HOLD_REPORT)) {
        symbols_close(syms);
        return;
    }
    unsigned views = vm->vcpu_count < 64 ? vm->vcpu_count : 64;
    struct cpu_view *view = calloc(views, sizeof(*view));
    for (unsigned c = 0; view && c < views; c++) {
        read_cpu(&vm->vcpus[c], &view[c]);
        print_cpu(out, vm, c, &view[c], syms);
    }
    if (vm->vcpu_count > views)
        fprintf(out, "  (and %u more CPUs)\n", vm->vcpu_count - views);
    print_device_diagnoses(out, vm, view, view ? views : 0);
    free(view);
    exc_trace_history(vm, out);
    inspect_flight(out, vm);
    vm_release(vm, HOLD_REPORT);
    print_samples(out, vm, syms);
    symbols_close(syms);
    fflush(out);
}
