/* cpus.c - every CPU the machine has, started with one hypercall each.
 *
 * On a PC, starting a CPU means INIT and SIPI IPIs and a real-mode trampoline. slate offers that
 * too, but also SLATE_HC_START_CPU: the new CPU starts in the caller's mode (64-bit, with our page
 * tables, GDT and IDT), at a C function, on a stack we give it. Each CPU finds its own struct
 * percpu through the GS base, and counts the scheduler ticks it receives. With no other work,
 * a CPU halts: a halted vCPU costs the host nothing.
 */
#include "kernel.h"

#define MSR_GS_BASE 0xC0000101
#define AP_STACK_SIZE 8192

struct percpu cpus[MAX_CPUS];
unsigned cpus_started;
static uint8_t ap_stacks[MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));

static void set_this_cpu(struct percpu *cpu)
{
    uint64_t a = (uint64_t)cpu;
    __asm__ volatile("wrmsr" ::"c"(MSR_GS_BASE), "a"((uint32_t)a), "d"((uint32_t)(a >> 32)));
}

static struct percpu *this_cpu(void)
{
    struct percpu *cpu;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(cpu));
    return cpu;
}

void cpu_count_tick(void) { this_cpu()->ticks++; }

__attribute__((interrupt)) static void on_tick_ipi(struct interrupt_frame *frame)
{
    (void)frame;
    cpu_count_tick();
    lapic_eoi();
}

/* Where each started CPU begins: RDI holds the argument we passed, its index. */
static void ap_main(uint64_t index)
{
    struct percpu *me = &cpus[index];
    set_this_cpu(me);
    lapic_init();
    __atomic_store_n(&me->online, true, __ATOMIC_RELEASE);
    for (;;)
        __asm__ volatile("sti; hlt"); /* the idle loop: wake for a tick, count it, sleep */
}

static const struct slate_cpu *cpu_entry(unsigned i)
{
    return (const void *)((const uint8_t *)info + info->cpu_offset + i * info->cpu_entry_size);
}

/* The CPUs this kernel drives: all of them, up to MAX_CPUS. */
static unsigned usable_cpus(void) { return info->cpu_count < MAX_CPUS ? info->cpu_count : MAX_CPUS; }

void cpus_start_all(void)
{
    unsigned count = usable_cpus();
    for (unsigned i = 0; i < count; i++)
        cpus[i] = (struct percpu){&cpus[i], i, cpu_entry(i)->apic_id, 0, i == 0};
    set_this_cpu(&cpus[0]);
    idt_set(VEC_TICK_IPI, on_tick_ipi);
    cpus_started = 1;
    for (unsigned i = 1; i < count; i++) {
        int64_t err = slate_hypercall(SLATE_HC_START_CPU, i, (uint64_t)ap_main, (uint64_t)(ap_stacks[i] + AP_STACK_SIZE), i);
        if (err < 0) {
            kprintf("cpu%u: cannot start it (error %ld)\n", i, err);
            continue;
        }
        cpus_started++;
    }
    /* Wait (briefly: a start takes microseconds) until each started CPU says it is online. */
    uint64_t give_up = rdtsc() + info->tsc_khz * 1000;
    for (unsigned i = 1; i < count; i++)
        while (!__atomic_load_n(&cpus[i].online, __ATOMIC_ACQUIRE) && rdtsc() < give_up)
            pause();
    if (info->cpu_count > MAX_CPUS)
        kprintf("cpus: this kernel uses %u of the %u CPUs\n", MAX_CPUS, info->cpu_count);
}

void print_cpus(void)
{
    kprintf("CPU  APIC ID  STATE    TICKS\n");
    for (unsigned i = 0, count = usable_cpus(); i < count; i++)
        kprintf("%-4u %-8u %-8s %lu\n", i, cpus[i].apic_id,
                i == 0 ? "shell" : cpus[i].online ? "idle" : "offline", (uint64_t)cpus[i].ticks);
}
