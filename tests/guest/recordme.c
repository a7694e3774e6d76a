/* A kernel whose run depends on timing and input (tests/t/record.t): a 1 kHz timer interrupt
 * stirs a table for 200 ms, the CLOCK register is read as it goes, and serial input arrives by
 * interrupt. What it prints (ticks, where the clock was, a hash of the table, the input) and its
 * exit status differ from run to run, and a replay of one recorded run must give them exactly. */
#include "guest.h"

#define VEC_TICK 0x50
#define VEC_END 0x51
#define VEC_SERIAL 0x52

static uint16_t timer, serial;
static volatile uint32_t ticks, ended;
static uint64_t table[64], clock_sum;
static char input[64];
static volatile unsigned input_len;

static uint64_t clock_ns(void)
{
    uint32_t lo = slate_inl(timer + SLATE_TIMER_CLOCK_LO);
    return ((uint64_t)slate_inl(timer + SLATE_TIMER_CLOCK_HI) << 32) | lo;
}

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    table[ticks % 64] = table[(ticks * 7) % 64] * 31 + ticks;
    if (ticks % 16 == 0)
        clock_sum += clock_ns() / 1000000; /* where the clock was, to the millisecond */
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_end(struct interrupt_frame *f)
{
    (void)f;
    ended = 1;
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 2);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_serial(struct interrupt_frame *f)
{
    (void)f;
    slate_outl(serial + SLATE_SERIAL_IRQ_STATUS, SLATE_SERIAL_IRQ_RX);
    uint32_t c;
    while ((c = slate_inl(serial + SLATE_SERIAL_DATA)) != 0xFFFFFFFF)
        if (c != '\n' && input_len < sizeof(input) - 1)
            input[input_len++] = (char)c;
    lapic_eoi();
}

static void line(unsigned irq_reg, uint16_t port, unsigned n, uint8_t vector)
{
    slate_outl(port + irq_reg + SLATE_IRQ_STRIDE * n + SLATE_IRQ_CPU, 0);
    slate_outl(port + irq_reg + SLATE_IRQ_STRIDE * n + SLATE_IRQ_VECTOR, vector);
}

static void timer_start(unsigned n, uint32_t delay, uint32_t period)
{
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_DELAY_LO, delay);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_DELAY_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_PERIOD_LO, period);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_PERIOD_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(n) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *t = slate_find_device(info, SLATE_DEV_TIMER, 0);
    const struct slate_device *s = slate_find_device(info, SLATE_DEV_SERIAL, 0);
    timer = t->port_base, serial = s->port_base;
    idt_set(VEC_TICK, on_tick);
    idt_set(VEC_END, on_end);
    idt_set(VEC_SERIAL, on_serial);
    idt_load();
    lapic_enable();
    line(t->irq_reg, timer, 0, VEC_TICK);
    line(t->irq_reg, timer, 1, VEC_END);
    line(s->irq_reg, serial, 0, VEC_SERIAL);
    for (int i = 0; i < 64; i++)
        table[i] = (uint64_t)i;
    timer_start(1, 200000000, 0);      /* 200 ms */
    timer_start(0, 1000000, 1000000);  /* 1 kHz */
    WAIT_FOR(ended);
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, 0);
    __asm__ volatile("cli");
    uint64_t hash = 14695981039346656037ULL;
    for (int i = 0; i < 64; i++)
        hash = (hash ^ table[i]) * 1099511628211ULL;
    input[input_len] = 0;
    puts_hc("ticks: ");
    put_dec(ticks);
    puts_hc("\nclock sum: ");
    put_dec((int64_t)clock_sum);
    puts_hc("\ntable hash: ");
    put_hex(hash);
    puts_hc("\ninput: ");
    puts_hc(input);
    puts_hc("\n");
    guest_exit(ticks % 100);
}
