/* The timer and clock device against the fake machine: one-shot and periodic timers fire through
 * the event loop and raise their own lines, bad settings set ERROR and are refused, the clock
 * latches its high half per CPU, and a timer that does not exist reads as all-ones. */
#include "unit.h"

#include "fake_host.h"

#include <stdlib.h>

extern const struct device_ops timer_device;

struct rig {
    struct vm *vm;
    struct device *dev;
};

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    r->vm = fake_vm_new();
    r->vm->cpus = 2;
    r->dev = fake_add(r->vm, &timer_device, 0);
    assert_non_null(r->dev);
    for (unsigned n = 0; n < SLATE_TIMER_COUNT; n++)
        fake_write(r->dev, SLATE_TIMER_IRQ_REG + SLATE_IRQ_STRIDE * n, 0x30 + n);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm);
    free(r);
    return 0;
}

static uint64_t reg(unsigned timer, uint64_t offset) { return SLATE_TIMER_BANK(timer) + offset; }

static void arm(struct rig *r, unsigned timer, uint64_t delay_ns, uint64_t period_ns, uint32_t ctrl)
{
    fake_write(r->dev, reg(timer, SLATE_TIMER_DELAY_LO), (uint32_t)delay_ns);
    fake_write(r->dev, reg(timer, SLATE_TIMER_DELAY_HI), (uint32_t)(delay_ns >> 32));
    fake_write(r->dev, reg(timer, SLATE_TIMER_PERIOD_LO), (uint32_t)period_ns);
    fake_write(r->dev, reg(timer, SLATE_TIMER_PERIOD_HI), (uint32_t)(period_ns >> 32));
    fake_write(r->dev, reg(timer, SLATE_TIMER_CTRL), ctrl);
}

/* Serves the loop until timer n has expired `count` times, for at most 2 s. */
static void wait_expiries(struct rig *r, unsigned n, uint32_t count)
{
    for (int i = 0; i < 200 && fake_read(r->dev, reg(n, SLATE_TIMER_EXPIRATIONS)) < count; i++)
        fake_serve(r->vm, 10);
    assert_true(fake_read(r->dev, reg(n, SLATE_TIMER_EXPIRATIONS)) >= count);
}

static void a_one_shot_fires_once_on_its_own_line(void **state)
{
    struct rig *r = *state;
    arm(r, 2, 1000000, 0, SLATE_TIMER_START);
    assert_int_equal(fake_read(r->dev, reg(2, SLATE_TIMER_CTRL)), SLATE_TIMER_ARMED);
    wait_expiries(r, 2, 1);
    assert_int_equal(fake_read(r->dev, reg(2, SLATE_TIMER_CTRL)), 0); /* disarmed */
    assert_int_equal(fake_read(r->dev, SLATE_TIMER_IRQ_STATUS), 1u << 2);
    assert_int_equal(fake_raised(r->dev, 2), 1);
    assert_int_equal(fake_raised(r->dev, 0), 0);
    assert_int_equal(fake_serve(r->vm, 20), 0); /* nothing more */
}

static void a_periodic_timer_keeps_firing_and_counts(void **state)
{
    struct rig *r = *state;
    arm(r, 0, 100000, 100000, SLATE_TIMER_START);
    wait_expiries(r, 0, 5);
    assert_int_equal(fake_read(r->dev, reg(0, SLATE_TIMER_CTRL)), SLATE_TIMER_ARMED);
    assert_int_equal(fake_raised(r->dev, 0), 1); /* not acknowledged: one interrupt */
    fake_write(r->dev, SLATE_TIMER_IRQ_STATUS, 1);
    uint32_t before = fake_read(r->dev, reg(0, SLATE_TIMER_EXPIRATIONS));
    wait_expiries(r, 0, before + 1);
    assert_int_equal(fake_raised(r->dev, 0), 2);
    fake_write(r->dev, reg(0, SLATE_TIMER_CTRL), 0); /* stop: the count is kept */
    assert_true(fake_read(r->dev, reg(0, SLATE_TIMER_EXPIRATIONS)) >= before + 1);
}

static void an_absolute_deadline_in_the_past_fires_now(void **state)
{
    struct rig *r = *state;
    arm(r, 1, 1, 0, SLATE_TIMER_START | SLATE_TIMER_ABSOLUTE);
    wait_expiries(r, 1, 1);
}

static void bad_settings_are_refused(void **state)
{
    struct rig *r = *state;
    arm(r, 3, 1000, 5000, SLATE_TIMER_START); /* period below the 10 us floor */
    assert_int_equal(fake_read(r->dev, reg(3, SLATE_TIMER_CTRL)), SLATE_TIMER_ERROR);
    assert_contains(r->vm->last_warning, "below the minimum");
    arm(r, 3, 1000, 0, 0x80); /* unknown CTRL bits */
    assert_int_equal(fake_read(r->dev, reg(3, SLATE_TIMER_CTRL)), SLATE_TIMER_ERROR);
    assert_int_equal(fake_read(r->dev, SLATE_TIMER_MIN_PERIOD), 10000);
    assert_int_equal(fake_read(r->dev, SLATE_TIMER_NUM_TIMERS), SLATE_TIMER_COUNT);
    arm(r, 3, 1000000, 0, SLATE_TIMER_START); /* a good write clears ERROR */
    assert_int_equal(fake_read(r->dev, reg(3, SLATE_TIMER_CTRL)), SLATE_TIMER_ARMED);
}

static void a_timer_that_does_not_exist(void **state)
{
    struct rig *r = *state;
    assert_int_equal(fake_read(r->dev, reg(SLATE_TIMER_COUNT, SLATE_TIMER_CTRL)), 0xFFFFFFFF);
    assert_contains(r->vm->last_warning, "there is no timer 4");
}

static void the_clock_latches_per_cpu(void **state)
{
    struct rig *r = *state;
    uint64_t a = fake_read_on(r->dev, SLATE_TIMER_CLOCK_LO, 0);
    a |= (uint64_t)fake_read_on(r->dev, SLATE_TIMER_CLOCK_HI, 0) << 32;
    uint64_t w = fake_read_on(r->dev, SLATE_TIMER_WALL_LO, 1);
    w |= (uint64_t)fake_read_on(r->dev, SLATE_TIMER_WALL_HI, 1) << 32;
    uint64_t b = fake_read_on(r->dev, SLATE_TIMER_CLOCK_LO, 1);
    b |= (uint64_t)fake_read_on(r->dev, SLATE_TIMER_CLOCK_HI, 1) << 32;
    assert_true(b >= a);
    assert_true(w > 1700000000ULL * 1000000000ULL); /* Unix time in ns, after 2023 */
    /* No CPU 7: served with CPU 0's latch, never past the per-CPU array (ASan would say). */
    uint64_t c = fake_read_on(r->dev, SLATE_TIMER_CLOCK_LO, 7);
    c |= (uint64_t)fake_read_on(r->dev, SLATE_TIMER_CLOCK_HI, 0) << 32;
    assert_true(c >= b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_one_shot_fires_once_on_its_own_line, setup, teardown),
        cmocka_unit_test_setup_teardown(a_periodic_timer_keeps_firing_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(an_absolute_deadline_in_the_past_fires_now, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_settings_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(a_timer_that_does_not_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(the_clock_latches_per_cpu, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
