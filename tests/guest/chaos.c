/* A hostile guest: random values to every register of every device (except the power device,
 * whose job is to end the machine), to the memory hole, to the devices' shared rings, random
 * hypercalls with hostile arguments, and CPUs started and stopped (INIT) in random order.
 * Interrupts stay off, so whatever the devices raise cannot hurt the guest itself. The command line is "seed=N ops=M";
 * the seed is printed first, so any failure can be replayed. At the end: a heartbeat line. */
#include "guest.h"

static uint64_t rng_state;
static uint8_t stacks[8][4096] __attribute__((aligned(16)));
static volatile uint32_t started_cpus;
static uint32_t stopped_cpus;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* An address that is interesting to a device: inside RAM, at its end, in the hole, huge. */
static uint64_t hostile_address(const struct slate_info *info)
{
    static const uint64_t specials[] = {0, 0xFFF, 0x1000 - 4, SLATE_INFO_ADDR, SLATE_HYPERCALL_PAGE,
                                        SLATE_LAPIC_ADDR, 0xFFFFFFFFULL, 0x100000000ULL,
                                        0x7FFFFFFFF000ULL, ~0ULL, ~0ULL - 4095};
    switch (rnd() % 4) {
    case 0: return specials[rnd() % (sizeof(specials) / sizeof(specials[0]))];
    case 1: return info->ram_total - (rnd() % 8192);
    case 2: return 0x200000 + rnd() % (info->ram_total - 0x400000); /* RAM, away from the kernel */
    default: return rnd();
    }
}

static void ap_entry(uint64_t arg)
{
    (void)arg;
    __atomic_add_fetch(&started_cpus, 1, __ATOMIC_SEQ_CST);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void poke_device(const struct slate_device *d)
{
    if (d->type == SLATE_DEV_POWER)
        return;
    uint32_t off = (uint32_t)(rnd() % (d->port_count + 16)) & ~3u; /* a little past the end too */
    if (d->type == SLATE_DEV_SERIAL && off == SLATE_SERIAL_DATA)
        return; /* output would only be noise on the test's console */
    uint16_t port = (uint16_t)(d->port_base + off);
    uint32_t value = (uint32_t)rnd();
    switch (rnd() % 4) {
    case 0: slate_outl(port, value); break;
    case 1: slate_outb(port, (uint8_t)value); break;
    case 2: (void)slate_inl(port); break;
    default: (void)slate_inb(port); break;
    }
}

/* Stops an application processor, started or not, with an INIT IPI: it waits for a SIPI that
 * never comes (KVM_RUN blocks, or returns EAGAIN, on its thread). A start request for it is
 * refused from then on, since it has run. */
static void stop_cpu(const struct slate_info *info)
{
    if (info->cpu_count > 1) {
        uint32_t cpu = 1 + (uint32_t)(rnd() % (info->cpu_count - 1));
        lapic_send(cpu, 0x4500); /* INIT, level assert */
        stopped_cpus++;
    }
}

/* Garbage in a device's shared window: ring indexes, lengths, buffer addresses. */
static void scribble_window(const struct slate_device *d, const struct slate_info *info)
{
    if (!d->window_base)
        return;
    uint64_t off = rnd() % (d->window_size < 0x10000 ? d->window_size : 0x10000) & ~7ULL;
    volatile uint64_t *p = (volatile uint64_t *)(d->window_base + off);
    *p = rnd() % 2 ? rnd() : hostile_address(info);
}

static void poke_hole(void)
{
    /* Skip the boot tables (this guest's own page tables) and the local APIC. */
    uint64_t addr = SLATE_HOLE_BASE + (rnd() % (SLATE_HOLE_END - SLATE_HOLE_BASE));
    addr &= ~3ULL;
    if ((addr >= SLATE_BOOT_TABLES && addr < SLATE_BOOT_TABLES + SLATE_BOOT_TABLES_SIZE) ||
        (addr >= SLATE_LAPIC_ADDR && addr < SLATE_LAPIC_ADDR + 0x1000))
        return;
    if (addr >= SLATE_DEVICE_WINDOWS && addr < SLATE_DEVICE_WINDOWS_END && rnd() % 4)
        return; /* windows are RAM: mostly leave them to scribble_window */
    if (rnd() % 2)
        mmio_write32(addr, (uint32_t)rnd());
    else
        (void)mmio_read32(addr);
}

static void random_hypercall(const struct slate_info *info)
{
    uint32_t fn = (uint32_t)(rnd() % 8);
    if (fn == SLATE_HC_EXIT)
        fn = 100 + (uint32_t)(rnd() % 1000);
    if (fn == SLATE_HC_START_CPU) {
        uint64_t cpu = rnd() % (info->cpu_count + 2);
        uint64_t stack = cpu < 8 ? (uint64_t)stacks[cpu] + sizeof(stacks[cpu]) : hostile_address(info);
        if (rnd() % 3 == 0)
            stack = hostile_address(info) & ~15ULL;
        slate_hypercall(fn, cpu, (uint64_t)ap_entry, stack, cpu);
        return;
    }
    uint64_t len = rnd() % 3 ? rnd() % 64 : rnd();
    if (fn == SLATE_HC_CONSOLE_WRITE) /* empty or too long: the errors, not noise on the console */
        len = rnd() % 2 ? 0 : SLATE_CONSOLE_WRITE_MAX + 1 + rnd() % 100000;
    if (rnd() % 2)
        slate_hypercall(fn, hostile_address(info), len, rnd(), rnd());
    else
        slate_hypercall_mmio(fn, hostile_address(info), len, 0, 0);
}

KMAIN kmain(const struct slate_info *info)
{
    const char *cmd = cmdline(info);
    uint64_t seed = cmdline_number(cmd, "seed=", 1), ops = cmdline_number(cmd, "ops=", 10000);
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    puts_hc("chaos seed ");
    put_dec((int64_t)seed);
    puts_hc("\n");
    const uint8_t *table = (const uint8_t *)info + info->device_offset;
    for (uint64_t i = 0; i < ops; i++) {
        const struct slate_device *d =
            (const void *)(table + (rnd() % info->device_count) * info->device_entry_size);
        switch (rnd() % 11) {
        case 0: case 1: case 2: case 3: poke_device(d); break;
        case 4: case 5: scribble_window(d, info); break;
        case 6: case 7: poke_hole(); break;
        case 8: stop_cpu(info); break;
        default: random_hypercall(info); break;
        }
    }
    puts_hc("chaos survived ");
    put_dec((int64_t)ops);
    puts_hc(" operations, cpus started ");
    put_dec(started_cpus);
    puts_hc(", INITs sent ");
    put_dec(stopped_cpus);
    puts_hc("\n");
    guest_exit(0);
}
