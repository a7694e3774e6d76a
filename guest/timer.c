/* timer.c - the scheduler tick, and the clocks.
 *
 * Timer 0 of slate's timer device fires TICK_HZ times a second on CPU 0; CPU 0 counts it and
 * passes it on to every other CPU with one IPI. (A kernel with a scheduler would switch tasks
 * here.) Reading the time costs no exit at all: the TSC is invariant, and the info block says
 * when it read 0 on the monotonic clock and how fast it runs.
 */
#include "kernel.h"

static const struct slate_device *timer;

static void timer_write64(unsigned reg, uint64_t v)
{
    uint16_t port = (uint16_t)(timer->port_base + SLATE_TIMER_BANK(0) + reg);
    slate_outl(port, (uint32_t)v);
    slate_outl(port + 4, (uint32_t)(v >> 32));
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *frame)
{
    (void)frame;
    slate_outl(timer->port_base + SLATE_TIMER_IRQ_STATUS, 1); /* acknowledge timer 0 */
    cpu_count_tick();
    if (cpus_started > 1)
        lapic_send_ipi_others(VEC_TICK_IPI);
    lapic_eoi();
}

void timer_init(void)
{
    timer = device_find(SLATE_DEV_TIMER);
    if (!timer) {
        kprintf("timer: none, so no ticks\n");
        return;
    }
    idt_set(VEC_TICK, on_tick);
    irq_route(timer, 0, VEC_TICK, 0);
    uint64_t period = 1000000000 / TICK_HZ;
    timer_write64(SLATE_TIMER_DELAY_LO, period);
    timer_write64(SLATE_TIMER_PERIOD_LO, period);
    slate_outl(timer->port_base + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
}

/* Nanoseconds since boot, from the TSC (see the timer section of slate.h). */
uint64_t clock_ns(void)
{
    uint64_t delta = rdtsc() - info->boot_tsc, khz = info->tsc_khz;
    return delta / khz * 1000000 + delta % khz * 1000000 / khz;
}

uint64_t wall_ns(void) { return info->boot_unix_ns + clock_ns(); }

/* Halts between ticks; the network keeps being served meanwhile. */
void sleep_ms(uint64_t ms)
{
    uint64_t deadline = clock_ns() + ms * 1000000;
    while (clock_ns() < deadline) {
        kernel_poll();
        __asm__ volatile("sti; hlt"); /* the next tick is at most 1/TICK_HZ away */
    }
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    uint64_t doe = (uint64_t)(z - era * 146097);
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    uint64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void print_time(void)
{
    uint64_t up = clock_ns(), wall = wall_ns() / 1000000000;
    int64_t year;
    unsigned month, day;
    civil_from_days((int64_t)(wall / 86400), &year, &month, &day);
    kprintf("uptime     %lu.%03lu s (%lu ticks on cpu0)\n", up / 1000000000, up / 1000000 % 1000,
            (uint64_t)cpus[0].ticks);
    kprintf("wall clock %ld-%02u-%02u %02lu:%02lu:%02lu UTC\n", year, month, day, wall / 3600 % 24,
            wall / 60 % 60, wall % 60);
    kprintf("TSC        %lu kHz\n", info->tsc_khz);
}
