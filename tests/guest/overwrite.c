/* "Who overwrote it" (tests/t/reverse.t, docs/debugging.md): a timer handler keeps a pointer to
 * its statistics after kmain has freed them, and the allocator hands that memory to the last node
 * of a list. The handler's next tick sets a flag in what is now the node's `next` pointer, and the
 * walk of the list that follows faults on it. Recorded once, the crash is taken apart under gdb
 * on the replay: watch the pointer, reverse-continue, and gdb stops on the handler's store. */
#include "guest.h"

#define VEC_TICK 0x50
#define STATS_SEEN (1ULL << 63)

struct stats { /* the timer handler's */
    uint64_t ticks;
    uint64_t flags;
};

struct node { /* kmain's list */
    uint64_t value;
    struct node *next;
};

/* A tiny allocator: a free list of equal slots, the last freed handed out first. */
union slot {
    struct stats stats;
    struct node node;
    union slot *free_next;
};
static union slot pool[8];
static union slot *free_list;

static void *alloc(void)
{
    union slot *s = free_list;
    free_list = s->free_next;
    return s;
}

static void release(void *p)
{
    union slot *s = p;
    s->free_next = free_list;
    free_list = s;
}

static uint16_t timer;
static struct stats *volatile tick_stats;
static volatile uint64_t ticks;
static struct node *list, *tail;

__attribute__((interrupt)) static void on_tick(struct interrupt_frame *f)
{
    (void)f;
    ticks++;
    tick_stats->ticks++;
    tick_stats->flags |= STATS_SEEN; /* the stale store */
    slate_outl(timer + SLATE_TIMER_IRQ_STATUS, 1);
    lapic_eoi();
}

static void wait_ticks(uint64_t n)
{
    uint64_t until = ticks + n;
    WAIT_FOR(ticks >= until);
}

static uint64_t walk(void)
{
    uint64_t sum = 0;
    for (struct node *n = list; n; n = n->next)
        sum += n->value; /* faults on the flagged pointer */
    return sum;
}

KMAIN kmain(const struct slate_info *info)
{
    const struct slate_device *t = slate_find_device(info, SLATE_DEV_TIMER, 0);
    timer = t->port_base;
    for (int i = 7; i >= 0; i--)
        release(&pool[i]);
    idt_set(VEC_TICK, on_tick);
    idt_load();
    lapic_enable();
    slate_outl(timer + t->irq_reg + SLATE_IRQ_CPU, 0);
    slate_outl(timer + t->irq_reg + SLATE_IRQ_VECTOR, VEC_TICK);
    tick_stats = alloc();
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_LO, 1000000); /* 1 kHz */
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_DELAY_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_LO, 1000000);
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_PERIOD_HI, 0);
    slate_outl(timer + SLATE_TIMER_BANK(0) + SLATE_TIMER_CTRL, SLATE_TIMER_START);
    wait_ticks(3);
    release(tick_stats); /* the bug: the timer still runs, and its handler still uses them */
    for (int i = 0; i < 4; i++) {
        struct node *n = alloc();
        n->value = (uint64_t)i + 1;
        n->next = 0;
        if (tail)
            tail->next = n;
        else
            list = n;
        tail = n;
    }
    wait_ticks(60); /* (long enough for the run to keep checkpoints of its own before the crash) */
    puts_hc("walking the list\n");
    uint64_t sum = walk();
    puts_hc("sum ");
    put_dec((int64_t)sum);
    puts_hc("\n");
    guest_exit(0);
}
