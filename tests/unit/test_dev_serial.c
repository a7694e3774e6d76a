/* The serial device against the fake machine: output reaches the console, input is buffered
 * with one interrupt per arrival (never on an acknowledge), the end of input is reported once,
 * and a Ctrl-A command goes to machine control, not to the guest. Also the registers every
 * device shares (IRQ_VECTOR/IRQ_CPU), through the serial device's line. */
#include "unit.h"

#include "fake_host.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

extern const struct device_ops serial_device;

struct rig {
    struct vm *vm;
    struct device *dev;
    int to_guest, from_guest; /* the test's ends of the console's pipes */
};

static int setup(void **state)
{
    struct rig *r = calloc(1, sizeof(*r));
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC | O_NONBLOCK), 0);
    r->vm = fake_vm_new();
    close(r->vm->console.out_fd);
    r->vm->console.out_fd = out[1];
    r->vm->console.in_fd = in[0];
    r->to_guest = in[1], r->from_guest = out[0];
    r->dev = fake_add(r->vm, &serial_device, 0);
    assert_non_null(r->dev);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct rig *r = *state;
    fake_vm_free(r->vm); /* closes the console's ends */
    close(r->to_guest), close(r->from_guest);
    free(r);
    return 0;
}

static void type(struct rig *r, const char *text)
{
    assert_int_equal(write(r->to_guest, text, strlen(text)), (ssize_t)strlen(text));
    assert_true(fake_serve(r->vm, 1000) > 0);
}

static void output_reaches_the_console(void **state)
{
    struct rig *r = *state;
    for (const char *p = "hi\n"; *p; p++)
        fake_write(r->dev, SLATE_SERIAL_DATA, (uint32_t)(uint8_t)*p | 0xFFFFFF00u);
    char buf[8] = "";
    assert_int_equal(read(r->from_guest, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "hi\n");
    assert_true(fake_read(r->dev, SLATE_SERIAL_STATUS) & SLATE_SERIAL_TX_READY);
}

static void input_is_buffered_and_raises_once(void **state)
{
    struct rig *r = *state;
    fake_write(r->dev, SLATE_SERIAL_IRQ_REG + SLATE_IRQ_VECTOR, 0x40);
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 0xFFFFFFFF); /* nothing yet */
    type(r, "ab");
    assert_int_equal(fake_raised(r->dev, 0), 1);
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_IRQ_STATUS), SLATE_SERIAL_IRQ_RX);
    type(r, "c"); /* still pending: no second interrupt */
    assert_int_equal(fake_raised(r->dev, 0), 1);
    fake_write(r->dev, SLATE_SERIAL_IRQ_STATUS, SLATE_SERIAL_IRQ_RX);
    assert_int_equal(fake_raised(r->dev, 0), 1); /* an acknowledge never raises it */
    assert_true(fake_read(r->dev, SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_READY);
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 'a');
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 'b');
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 'c');
    assert_false(fake_read(r->dev, SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_READY);
    type(r, "d"); /* acknowledged, so new input raises it again */
    assert_int_equal(fake_raised(r->dev, 0), 2);
}

static void input_before_the_vector_is_delivered_when_enabled(void **state)
{
    struct rig *r = *state;
    type(r, "x");
    assert_int_equal(fake_raised(r->dev, 0), 0); /* the line is disabled: nothing sent */
    fake_write(r->dev, SLATE_SERIAL_IRQ_REG + SLATE_IRQ_VECTOR, 0x41);
    assert_int_equal(fake_raised(r->dev, 0), 1);
}

static void end_of_input_is_reported_once(void **state)
{
    struct rig *r = *state;
    fake_write(r->dev, SLATE_SERIAL_IRQ_REG + SLATE_IRQ_VECTOR, 0x40);
    type(r, "z");
    close(r->to_guest);
    r->to_guest = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fake_serve(r->vm, 1000);
    assert_true(fake_read(r->dev, SLATE_SERIAL_IRQ_STATUS) & SLATE_SERIAL_IRQ_CLOSED);
    assert_false(fake_read(r->dev, SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_CLOSED); /* 'z' waits */
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 'z');
    assert_true(fake_read(r->dev, SLATE_SERIAL_STATUS) & SLATE_SERIAL_RX_CLOSED);
    assert_int_equal(fake_serve(r->vm, 50), 0); /* no longer watched */
}

static enum console_command seen;
static void remember(void *opaque, enum console_command cmd)
{
    (void)opaque;
    seen = cmd;
}

static void escapes_go_to_machine_control(void **state)
{
    struct rig *r = *state;
    r->vm->console.command = remember;
    r->vm->console.in_is_tty = true; /* escapes are a terminal's */
    seen = CONSOLE_NONE;
    type(r, "\001x");
    assert_int_equal(seen, CONSOLE_QUIT);
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 0xFFFFFFFF); /* the guest sees none */
    type(r, "\001\001");
    assert_int_equal(fake_read(r->dev, SLATE_SERIAL_DATA), 1); /* Ctrl-A Ctrl-A sends one */
}

static void shared_irq_registers(void **state)
{
    struct rig *r = *state;
    const uint64_t vec = SLATE_SERIAL_IRQ_REG + SLATE_IRQ_VECTOR, cpu = SLATE_SERIAL_IRQ_REG + SLATE_IRQ_CPU;
    fake_write(r->dev, vec, 0x50);
    assert_int_equal(fake_read(r->dev, vec), 0x50);
    fake_write(r->dev, vec, 7); /* 1..31 are exceptions: refused, the line is disabled */
    assert_int_equal(fake_read(r->dev, vec), 0);
    assert_int_equal(atomic_load(&r->vm->warnings), 1);
    assert_contains(r->vm->last_warning, "IRQ vector 7 is invalid");
    r->vm->cpus = 4;
    fake_write(r->dev, cpu, 3);
    assert_int_equal(fake_read(r->dev, cpu), 3);
    fake_write(r->dev, cpu, 9); /* no CPU 9: CPU 0, as documented */
    assert_int_equal(fake_read(r->dev, cpu), 0);
    struct bus_io io = {.offset = SLATE_SERIAL_STATUS + 1, .width = 1};
    device_register_io(r->dev, &io); /* unaligned: all-ones and a warning */
    assert_int_equal(io.value, ~0ULL);
    assert_int_equal(atomic_load(&r->vm->warnings), 2);
    assert_int_equal(fake_read(r->dev, 0x1C), 0); /* reserved registers read as zero */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(output_reaches_the_console, setup, teardown),
        cmocka_unit_test_setup_teardown(input_is_buffered_and_raises_once, setup, teardown),
        cmocka_unit_test_setup_teardown(input_before_the_vector_is_delivered_when_enabled, setup, teardown),
        cmocka_unit_test_setup_teardown(end_of_input_is_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(escapes_go_to_machine_control, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_irq_registers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
