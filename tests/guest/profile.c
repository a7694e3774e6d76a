/* A kernel that spends known shares of its time in named functions, for --profile: on every CPU,
 * for 1.5 s, slices of 10 ms: 7 ms in hot() (called from left() and right() in turn), 2 ms in
 * warm(), 1 ms halted (a TSC-deadline timer wakes it). With --smp N every CPU does the same. It is
 * built with -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer, so the stacks show callers. */
#include "guest.h"

#define VEC_WAKE 0x40
#define SLICE_MS 10
#define RUN_MS 1500
#define FP __attribute__((noinline)) /* (built with frame pointers: see the Makefile) */

static const struct slate_info *info;
static volatile uint64_t spins;
static volatile uint32_t finished;
static uint8_t ap_stacks[8][16384] __attribute__((aligned(16)));

static uint64_t ms_to_tsc(uint64_t ms) { return ms * info->tsc_khz; }

/* GCC keeps no frame in a leaf that needs no stack, even with -fno-omit-frame-pointer: a call
 * makes hot() and warm() keep theirs, so their callers appear in the stacks. */
FP static void start(void) { spins++; }

#ifdef LEAF_HOT /* profile-leaf.elf: hot() a leaf with no frame of its own, as gcc leaves it */
FP static void hot(uint64_t until)
{
    while (rdtsc() < until)
        spins++;
}
#else
FP static void hot(uint64_t until)
{
    start();
    while (rdtsc() < until)
        spins++;
}
#endif

FP static void warm(uint64_t until)
{
    start();
    while (rdtsc() < until)
        spins += 2;
}

FP static void left(uint64_t until) { hot(until); spins++; }
FP static void right(uint64_t until) { hot(until); spins += 3; } /* (not identical to left: no folding) */

__attribute__((interrupt)) static void on_wake(struct interrupt_frame *f)
{
    (void)f;
    lapic_eoi();
}

FP static void nap(uint64_t until)
{
    __asm__ volatile("wrmsr" ::"c"(0x6E0), "a"((uint32_t)until), "d"((uint32_t)(until >> 32)));
    while (rdtsc() < until)
        __asm__ volatile("sti; hlt; cli");
}

FP static void mix(void)
{
    idt_load();
    lapic_enable();
    mmio_write32(SLATE_LAPIC_ADDR + SLATE_LAPIC_LVT_TIMER, VEC_WAKE | 2u << 17); /* TSC-deadline */
    uint64_t end = rdtsc() + ms_to_tsc(RUN_MS);
    for (unsigned slice = 0; rdtsc() < end; slice++) {
        uint64_t t = rdtsc();
        if (slice & 1)
            right(t + ms_to_tsc(7));
        else
            left(t + ms_to_tsc(7));
        warm(t + ms_to_tsc(9));
        nap(t + ms_to_tsc(SLICE_MS));
    }
    __atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
}

static void ap_main(uint64_t index)
{
    (void)index;
    mix();
    for (;;)
        __asm__ volatile("cli; hlt");
}

KMAIN kmain(const struct slate_info *boot_info)
{
    info = boot_info;
    idt_set(VEC_WAKE, on_wake);
    unsigned cpus = info->cpu_count < 9 ? info->cpu_count : 9;
    for (unsigned i = 1; i < cpus; i++)
        GUEST_ASSERT(slate_hypercall(SLATE_HC_START_CPU, i, (uint64_t)ap_main,
                                     (uint64_t)(ap_stacks[i - 1] + sizeof(ap_stacks[0])), i) == 0);
    if (str_starts(cmdline(info), "work=")) { /* a fixed amount of work, for make bench */
        uint64_t n = cmdline_number(cmdline(info), "work=", 0);
        for (uint64_t i = 0; i < n; i++)
            spins++;
        guest_exit(0);
    }
    if (str_eq(cmdline(info), "forever")) /* until the monitor's quit, however slow the host */
        for (;;)
            mix();
    if (str_eq(cmdline(info), "phase")) { /* profile only the second half, from the guest */
        mix();
        GUEST_ASSERT(hypercall(SLATE_HC_PROFILE, 1, 0, 0) == 0);
        mix();
        GUEST_ASSERT(hypercall(SLATE_HC_PROFILE, 0, 0, 0) == 0);
    } else {
        mix();
    }
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) < cpus)
        __asm__ volatile("pause");
    puts_hc("profiled\n");
    guest_exit(0);
}
