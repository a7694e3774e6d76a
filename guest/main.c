/* main.c - where C begins: check the info block, bring up each device, start the CPUs, run the
 * shell. Everything the kernel knows about the machine it reads from the info block that slate
 * wrote before the first instruction: no port or address below is guessed.
 */
#include "kernel.h"

const struct slate_info *info;

static const char *device_type_name(uint16_t type)
{
    static const char *const names[] = {
        [SLATE_DEV_NET] = "network", [SLATE_DEV_DISPLAY] = "display", [SLATE_DEV_SERIAL] = "serial",
        [SLATE_DEV_TIMER] = "timer", [SLATE_DEV_KEYBOARD] = "keyboard", [SLATE_DEV_POINTER] = "pointer",
        [SLATE_DEV_BLOCK] = "block", [SLATE_DEV_POWER] = "power",
    };
    return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "unknown";
}

static const struct slate_device *device_at(uint32_t i)
{
    return (const void *)((const uint8_t *)info + info->device_offset + i * info->device_entry_size);
}

/* The first device of a type. */
const struct slate_device *device_find(uint16_t type) { return slate_find_device(info, type, 0); }

/* "key=value" on the command line: a pointer to the value, or NULL. */
const char *cmdline_option(const char *key)
{
    const char *s = (const char *)info + info->cmdline_offset;
    size_t len = strlen(key);
    for (; *s; s++)
        if ((s == (const char *)info + info->cmdline_offset || s[-1] == ' ') && !strncmp(s, key, len))
            return s + len;
    return NULL;
}

void print_devices(void)
{
    kprintf("NAME        TYPE      PORTS          WINDOW                   IRQS\n");
    for (uint32_t i = 0; i < info->device_count; i++) {
        const struct slate_device *d = device_at(i);
        char window[32] = "-";
        if (d->window_size)
            snprintf(window, sizeof(window), "0x%lx +%lu KiB", d->window_base, d->window_size / 1024);
        kprintf("%-11s %-9s 0x%04x-0x%04x  %-24s %u\n", d->name, device_type_name(d->type), d->port_base,
                d->port_base + d->port_count - 1, window, d->irq_count);
    }
}

void print_memory(void)
{
    extern char __kernel_end[];
    kprintf("RAM: %lu MiB in %u region(s)\n", info->ram_total >> 20, info->ram_count);
    for (uint32_t i = 0; i < info->ram_count; i++) {
        const struct slate_ram_region *r =
            (const void *)((const uint8_t *)info + info->ram_offset + i * info->ram_entry_size);
        kprintf("  0x%012lx - 0x%012lx  %lu MiB\n", r->base, r->base + r->size - 1, r->size >> 20);
    }
    kprintf("kernel: 0 - %p (%lu KiB with its stacks and page tables)\n", (void *)__kernel_end,
            (uint64_t)__kernel_end / 1024);
}

void power_off(uint32_t code)
{
    const struct slate_device *power = device_find(SLATE_DEV_POWER);
    if (power)
        slate_outl(power->port_base + SLATE_POWER_EXIT, code);
    slate_hypercall(SLATE_HC_EXIT, code, 0, 0, 0); /* the same, should there be no power device */
    for (;;)
        __asm__ volatile("cli; hlt");
}

void power_reset(void)
{
    const struct slate_device *power = device_find(SLATE_DEV_POWER);
    if (power)
        slate_outl(power->port_base + SLATE_POWER_RESET, 1);
    kprintf("reboot: no power device\n");
    power_off(1);
}

/* The status line on the screen, once a second: uptime and every CPU's ticks. */
static void update_status(void)
{
    static uint64_t shown;
    uint64_t seconds = clock_ns() / 1000000000;
    if (seconds == shown && shown)
        return;
    shown = seconds;
    char line[96];
    int n = snprintf(line, sizeof(line), " slate demo OS   up %lu:%02lu:%02lu  ", seconds / 3600, seconds / 60 % 60,
                     seconds % 60);
    for (unsigned i = 0; i < cpus_started && n < 72; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " cpu%u %lu", i, (uint64_t)cpus[i].ticks);
    screen_status(line);
}

void kernel_poll(void)
{
    net_poll();
    update_status();
}

static const char *cmdline_text(void) { return (const char *)info + info->cmdline_offset; }

void kmain(const struct slate_info *boot_info)
{
    info = boot_info;
    if (memcmp(info->magic, SLATE_INFO_MAGIC, 8) != 0 || info->version < 1)
        power_off(1); /* not the machine this kernel was written for */
    idt_init();
    lapic_init();
    serial_init();
    bool screen = screen_init();
    kprintf("slate demo OS: %u CPU(s), %lu MiB of RAM, TSC at %lu MHz\n", info->cpu_count, info->ram_total >> 20,
            info->tsc_khz / 1000);
    kprintf("command line: %s\n", *cmdline_text() ? cmdline_text() : "(none)");
    print_devices();
    cpus_start_all();
    timer_init();
    sti();
    keyboard_init();
    bool pointer = pointer_init();
    disk_init();
    net_init();
    kprintf("%u CPU(s) running%s%s\n", cpus_started, screen ? "; the shell is also on the screen" : "",
            pointer ? " (try draw)" : "");
    shell_run();
}
