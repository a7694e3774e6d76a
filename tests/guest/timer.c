/* The timer and clock device, and the LAPIC timer beside it. Modes (the command line):
 *   periodic  a 1 kHz timer counted until a one-shot 1 s timer fires: prints the count
 *   oneshot   one-shot timers wake a halted CPU 0, and (with --smp 2) a halted CPU 1
 *   clock     the rdtsc clock against the register clock; prints the wall clock
 *   errors    bad timer numbers, refused periods and bits, bad vectors
 *   lapic     the LAPIC timer at the frequency CPUID gives, and TSC-deadline mode
 *   drift     the rdtsc clock and the register clock over 3 s: prints parts per million
 *   cpuid     the hypervisor leaves: signature bytes, frequencies, TSC-deadline bit
 *   latency   programmed deadline to handler, in ns, for the benchmark */
#include "guest.h"

#define VEC_TICK 0x60
#define VEC_END 0x61
#define VEC_CPU1 0x62
#define VEC_LAPIC 0x63
#define VEC_DONE 0x64

static const struct slate_info *info;
static uint16_t port;
static volatile uint32_t ticks, ended, cpu1_woke, lapic_fired;
static volatile uint64_t fired_tsc;
static uint8_t cpu1_stack[4096] __attribute__((aligned(16)));

static uint32_t reg(uint32_t off) { return slate_inl(port + off); }
static void set_reg(uint32_t off, uint32_t v) { slate_outl(port + off, v); }
static void set_reg64(uint32_t off, uint64_t v)
{
    set_reg(off, (uint32_t)v);
    set_reg(off + 4, (uint32_t)(v >> 32));
}

static uint64_t clock_ns(void)
{
    uint32_t lo = reg(SLATE_TIMER_CLOCK_LO);
    return ((uint64_t)reg(SLATE_TIMER_CLOCK_HI) << 32) | lo;
}

static uint64_t wall_ns(void)
{
    uint32_t lo = reg(SLATE_TIMER_WALL_LO);
    return ((uint64_t)reg(SLATE_TIMER_WALL_HI) << 32) | lo;
}

/* The exit-free clock, exactly as docs/machine.md gives the formula. */
static uint64_t tsc_clock_ns(void)
{
    uint64_t delta = rdtsc() - info->boot_tsc, khz = info->tsc_khz;
    return delta / khz * 1000000 + delta % khz * 1000000 / khz;
}

static void timer_irq(unsigned n, uint8_t vector, uint32_t cpu)
{
    const struct slate_device *d = slate_find_device(info, SLATE_DEV_TIMER, 0);
    set_reg(d->irq_reg + 8 * n + SLATE_IRQ_CPU, cpu);
    set_reg(d->irq_reg + 8 * n + SLATE_IRQ_VECTOR, vector);
}

static void timer_start(unsigned n, uint64_t delay, uint64_t period, uint32_t flags)
{
    set_reg64(SLATE_TIMER_BANK(n) + SLATE_TIMER_DELAY_LO, delay);
    set_reg64(SLATE_TIMER_BANK(n) + SLATE_TIMER_PERIOD_LO, period);
    set_reg(SLATE_TIMER_BANK(n) + SLATE_TIMER_CTRL, SLATE_TIMER_START | flags);
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    set_reg(SLATE_TIMER_IRQ_STATUS, 1u << 0);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_end(struct interrupt_frame *f)
{
    (void)f;
    fired_tsc = rdtsc();
    ended = 1;
    set_reg(SLATE_TIMER_IRQ_STATUS, 1u << 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_cpu1(struct interrupt_frame *f)
{
    (void)f;
    GUEST_ASSERT(cpu_index() == 1);
    cpu1_woke = 1;
    set_reg(SLATE_TIMER_IRQ_STATUS, 1u << 2);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_lapic(struct interrupt_frame *f)
{
    (void)f;
    fired_tsc = rdtsc();
    lapic_fired++;
    lapic_eoi();
}

__attribute__((interrupt)) static void on_done(struct interrupt_frame *f) { (void)f; lapic_eoi(); }

static void periodic(void)
{
    timer_irq(0, VEC_TICK, 0);
    timer_irq(1, VEC_END, 0);
    timer_start(1, 1000000000, 0, 0);  /* one second */
    timer_start(0, 1000000, 1000000, 0); /* 1 kHz */
    WAIT_FOR(ended);
    set_reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, 0);
    uint32_t expirations = reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_EXPIRATIONS);
    GUEST_ASSERT(!(reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL) & SLATE_TIMER_ARMED));
    GUEST_ASSERT(!(reg(SLATE_TIMER_BANK(1) + SLATE_TIMER_CTRL) & SLATE_TIMER_ARMED)); /* one-shot */
    GUEST_ASSERT(expirations >= ticks);
    puts_hc("ticks in one second: ");
    put_dec(ticks);
    puts_hc("\nexpirations: ");
    put_dec(expirations);
    puts_hc("\n");
}

static void cpu1_main(uint64_t arg)
{
    (void)arg;
    lapic_enable();
    timer_irq(2, VEC_CPU1, 1);
    timer_start(2, 20000000, 0, 0);
    uint64_t start = clock_ns();
    WAIT_FOR(cpu1_woke);
    GUEST_ASSERT(clock_ns() - start >= 20000000);
    send_ipi(0, VEC_DONE);
}

static void oneshot(void)
{
    timer_irq(1, VEC_END, 0);
    uint64_t start = clock_ns();
    timer_start(1, 20000000, 0, 0);
    WAIT_FOR(ended);
    uint64_t elapsed = clock_ns() - start;
    GUEST_ASSERT(elapsed >= 20000000);
    GUEST_ASSERT(elapsed < 500000000);
    puts_hc("cpu 0 woke after ms: ");
    put_dec((int64_t)(elapsed / 1000000));
    puts_hc("\n");
    /* an absolute deadline in the past fires at once */
    ended = 0;
    timer_start(1, clock_ns() - 1000, 0, SLATE_TIMER_ABSOLUTE);
    WAIT_FOR(ended);
    puts_hc("past deadline fired\n");
    if (info->cpu_count < 2)
        return;
    GUEST_ASSERT(slate_hypercall(SLATE_HC_START_CPU, 1, (uint64_t)cpu1_main,
                            (uint64_t)cpu1_stack + sizeof(cpu1_stack), 0) == 0);
    WAIT_FOR(cpu1_woke);
    puts_hc("cpu 1 woke by its own timer\n");
}


/* How far v lies outside [lo, hi]: 0 when inside. */
static uint64_t outside(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo - v : v > hi ? v - hi : 0;
}

/* Each register read is an exit; the TSC clock read just before and just after it brackets the
 * moment it happened, so the register's value must fall inside (within 1 ms), however long the
 * exit takes (under emulation, milliseconds). */
static void clock(void)
{
    uint64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t before = tsc_clock_ns(), r = clock_ns(), after = tsc_clock_ns();
        if (outside(r, before, after) > worst)
            worst = outside(r, before, after);
    }
    puts_hc("rdtsc vs register clock, worst ns: ");
    put_dec((int64_t)worst);
    GUEST_ASSERT(worst < 1000000);
    uint64_t before = info->boot_unix_ns + tsc_clock_ns();
    uint64_t wall = wall_ns();
    uint64_t after = info->boot_unix_ns + tsc_clock_ns();
    GUEST_ASSERT(outside(wall, before, after) < 1000000);
    puts_hc("\nwall clock s: ");
    put_dec((int64_t)(wall / 1000000000));
    puts_hc("\n");
    uint64_t a = clock_ns(), b = clock_ns();
    GUEST_ASSERT(b >= a);
}

/* The docs promise one clock: over several seconds of halting, the TSC-derived clock and the
 * CLOCK register must advance by the same amount, within 100 ppm (0.01%). */
static void drift(void)
{
    timer_irq(1, VEC_END, 0);
    uint64_t tsc0 = tsc_clock_ns(), reg0 = clock_ns();
    timer_start(1, 3000000000ULL, 0, 0);
    WAIT_FOR(ended);
    uint64_t tsc1 = tsc_clock_ns(), reg1 = clock_ns();
    uint64_t by_tsc = tsc1 - tsc0, by_reg = reg1 - reg0;
    int64_t ppm = ((int64_t)by_tsc - (int64_t)by_reg) * 1000000 / (int64_t)by_reg;
    puts_hc("clock drift over ms: ");
    put_dec((int64_t)(by_reg / 1000000));
    puts_hc(" ppm: ");
    put_dec(ppm);
    puts_hc("\n");
    GUEST_ASSERT(ppm > -100 && ppm < 100);
}

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d);

static void hypervisor_leaves(void)
{
    uint32_t a, sig[3];
    cpuid(0x40000000, &a, &sig[0], &sig[1], &sig[2]);
    const char *bytes = (const char *)sig, *want = "SlateMachine";
    for (int i = 0; i < 12; i++)
        GUEST_ASSERT(bytes[i] == want[i]);
    GUEST_ASSERT(a >= 0x40000010);
    puts_hc("cpuid signature: ");
    char text[13] = {0};
    for (int i = 0; i < 12; i++)
        text[i] = bytes[i];
    puts_hc(text);
    uint32_t khz, lapic_khz, c, d;
    cpuid(0x40000010, &khz, &lapic_khz, &c, &d);
    GUEST_ASSERT(khz == info->tsc_khz && lapic_khz == 1000000);
    cpuid(1, &a, &sig[0], &c, &d);
    GUEST_ASSERT(c & (1u << 31)); /* running under a hypervisor */
    puts_hc(c & (1u << 24) ? "\ntsc-deadline yes\n" : "\ntsc-deadline no\n");
}

static void errors(void)
{
    GUEST_ASSERT(reg(SLATE_TIMER_NUM_TIMERS) == SLATE_TIMER_COUNT);
    uint32_t min = reg(SLATE_TIMER_MIN_PERIOD);
    GUEST_ASSERT(min > 0);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(SLATE_TIMER_COUNT) + SLATE_TIMER_CTRL) == 0xFFFFFFFF);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(5) + SLATE_TIMER_EXPIRATIONS) == 0xFFFFFFFF);
    set_reg(SLATE_TIMER_BANK(5) + SLATE_TIMER_CTRL, SLATE_TIMER_START); /* ignored */
    timer_start(0, 1000, min - 1, 0);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL) == SLATE_TIMER_ERROR);
    set_reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, 0x100);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL) == SLATE_TIMER_ERROR);
    timer_start(0, 1000000000, min, 0);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL) == SLATE_TIMER_ARMED);
    set_reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, 0);
    GUEST_ASSERT(reg(SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL) == 0);
    const struct slate_device *d = slate_find_device(info, SLATE_DEV_TIMER, 0);
    set_reg(d->irq_reg + SLATE_IRQ_VECTOR, 5); /* below 32: refused */
    GUEST_ASSERT(reg(d->irq_reg + SLATE_IRQ_VECTOR) == 0);
    puts_hc("timer errors ok\n");
}

static void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static void lapic(void)
{
    uint32_t a, b, c, d;
    cpuid(0x40000010, &a, &b, &c, &d);
    GUEST_ASSERT(a == info->tsc_khz);
    uint64_t lapic_khz = b;
    /* one-shot LAPIC timer, divide by 1: 10 ms is 10 * lapic_khz * 1000 ticks, no calibration */
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_DIVIDE, 0xB);
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER, VEC_LAPIC);
    uint64_t start = clock_ns();
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_TIMER_INIT, (uint32_t)(10 * lapic_khz));
    WAIT_FOR(lapic_fired == 1);
    uint64_t elapsed = clock_ns() - start;
    puts_hc("lapic one-shot 10 ms took us: ");
    put_dec((int64_t)(elapsed / 1000));
    puts_hc("\n");
    GUEST_ASSERT(elapsed >= 9500000 && elapsed < 200000000);
    cpuid(1, &a, &b, &c, &d);
    GUEST_ASSERT(c & (1u << 24)); /* TSC-deadline */
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER, VEC_LAPIC | (2u << 17));
    start = clock_ns();
    uint64_t deadline = rdtsc() + 10 * info->tsc_khz;
    __asm__ volatile("wrmsr" ::"c"(0x6E0), "a"((uint32_t)deadline), "d"((uint32_t)(deadline >> 32)));
    WAIT_FOR(lapic_fired == 2);
    elapsed = clock_ns() - start;
    puts_hc("tsc-deadline 10 ms took us: ");
    put_dec((int64_t)(elapsed / 1000));
    puts_hc("\n");
    GUEST_ASSERT(elapsed >= 9500000 && elapsed < 200000000);
}

/* Deadline to handler: an absolute one-shot deadline on the monotonic clock, and the handler's
 * rdtsc turned into the same clock. */
static void latency(void)
{
    timer_irq(1, VEC_END, 0);
    uint64_t total = 0, worst = 0;
    const int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        ended = 0;
        uint64_t deadline = tsc_clock_ns() + 200000;
        timer_start(1, deadline, 0, SLATE_TIMER_ABSOLUTE);
        WAIT_FOR(ended);
        uint64_t delta = fired_tsc - info->boot_tsc, khz = info->tsc_khz;
        uint64_t at = delta / khz * 1000000 + delta % khz * 1000000 / khz;
        uint64_t late = at > deadline ? at - deadline : 0;
        total += late;
        if (late > worst)
            worst = late;
    }
    puts_hc("timer latency mean ns: ");
    put_dec((int64_t)(total / rounds));
    puts_hc("\ntimer latency worst ns: ");
    put_dec((int64_t)worst);
    /* The same with the in-kernel TSC-deadline timer: the floor for interrupt delivery. */
    mmio_write32(SLATE_LAPIC_ADDR + LAPIC_LVT_TIMER, VEC_LAPIC | (2u << 17));
    uint64_t lapic_total = 0;
    for (int i = 0; i < rounds; i++) {
        uint32_t before = lapic_fired;
        uint64_t deadline = rdtsc() + info->tsc_khz / 5; /* 200 us */
        __asm__ volatile("wrmsr" ::"c"(0x6E0), "a"((uint32_t)deadline), "d"((uint32_t)(deadline >> 32)));
        WAIT_FOR(lapic_fired != before);
        uint64_t late = fired_tsc > deadline ? fired_tsc - deadline : 0;
        lapic_total += late * 1000000 / info->tsc_khz;
    }
    puts_hc("\nlapic latency mean ns: ");
    put_dec((int64_t)(lapic_total / rounds));
    puts_hc("\n");
}

/* 10 ms ticks for 1.5 s; prints the longest gap between two ticks. A pause of the machine shows
 * as a gap, because the clock is the host's and keeps running. */
static void ticker(void)
{
    timer_irq(0, VEC_TICK, 0);
    timer_start(0, 10000000, 10000000, 0);
    uint64_t last = clock_ns(), longest = 0, end = last + 1500000000;
    puts_hc("ticking\n");
    while (last < end) {
        uint32_t seen = ticks;
        WAIT_FOR(ticks != seen);
        uint64_t now = clock_ns();
        if (now - last > longest)
            longest = now - last;
        last = now;
    }
    puts_hc("longest gap ms: ");
    put_dec((int64_t)(longest / 1000000));
    puts_hc("\n");
}

KMAIN kmain(const struct slate_info *boot_info)
{
    info = boot_info;
    const struct slate_device *d = slate_find_device(info, SLATE_DEV_TIMER, 0);
    GUEST_ASSERT(d && d->irq_count == SLATE_TIMER_COUNT);
    port = d->port_base;
    idt_set(VEC_TICK, on_tick);
    idt_set(VEC_END, on_end);
    idt_set(VEC_CPU1, on_cpu1);
    idt_set(VEC_LAPIC, on_lapic);
    idt_set(VEC_DONE, on_done);
    idt_load();
    lapic_enable();
    const char *mode = cmdline(info);
    if (str_eq(mode, "periodic"))
        periodic();
    else if (str_eq(mode, "oneshot"))
        oneshot();
    else if (str_eq(mode, "clock"))
        clock();
    else if (str_eq(mode, "errors"))
        errors();
    else if (str_eq(mode, "lapic"))
        lapic();
    else if (str_eq(mode, "drift"))
        drift();
    else if (str_eq(mode, "cpuid"))
        hypervisor_leaves();
    else if (str_eq(mode, "latency"))
        latency();
    else if (str_eq(mode, "ticker"))
        ticker();
    else
        GUEST_ASSERT(!"unknown mode");
    guest_exit(0);
}
