/* What slate does with each way KVM_RUN can return, including the ones this host produces
 * (a triple fault as KVM_EXIT_INTERNAL_ERROR). */
#include "unit.h"

#include "exits.h"

static enum exit_action classify(uint32_t reason, const char **what)
{
    static struct kvm_run run;
    memset(&run, 0, sizeof(run));
    run.exit_reason = reason;
    return exit_classify(&run, what);
}

static void every_reason_has_an_action(void **state)
{
    (void)state;
    const char *what = NULL;
    static const struct {
        uint32_t reason;
        enum exit_action action;
    } cases[] = {
        {KVM_EXIT_IO, EXIT_ACTION_PIO},
        {KVM_EXIT_MMIO, EXIT_ACTION_MMIO},
        {KVM_EXIT_INTR, EXIT_ACTION_RESUME},
        {KVM_EXIT_DEBUG, EXIT_ACTION_DEBUG},
        {KVM_EXIT_SHUTDOWN, EXIT_ACTION_CRASH},
        {KVM_EXIT_INTERNAL_ERROR, EXIT_ACTION_CRASH},
        {KVM_EXIT_FAIL_ENTRY, EXIT_ACTION_CRASH},
        {KVM_EXIT_UNKNOWN, EXIT_ACTION_CRASH},
        {KVM_EXIT_X86_RDMSR, EXIT_ACTION_MSR},
        {KVM_EXIT_X86_WRMSR, EXIT_ACTION_MSR},
        {0xDEAD, EXIT_ACTION_CRASH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        what = NULL;
        enum exit_action got = classify(cases[i].reason, &what);
        if (got != cases[i].action)
            fail_msg("exit reason %u: action %d, want %d", cases[i].reason, got, cases[i].action);
        assert_non_null(what);
        assert_true(what[0] != 0);
    }
}

static void a_triple_fault_is_named(void **state)
{
    (void)state;
    const char *shutdown, *internal;
    classify(KVM_EXIT_SHUTDOWN, &shutdown);
    classify(KVM_EXIT_INTERNAL_ERROR, &internal);
    assert_contains(shutdown, "triple fault");
    assert_non_null(internal);
}

static void system_events(void **state)
{
    (void)state;
    static struct kvm_run run;
    const char *what;
    run.exit_reason = KVM_EXIT_SYSTEM_EVENT;
    run.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
    assert_int_equal(exit_classify(&run, &what), EXIT_ACTION_SHUTDOWN);
    run.system_event.type = KVM_SYSTEM_EVENT_RESET;
    assert_int_equal(exit_classify(&run, &what), EXIT_ACTION_RESET);
    run.system_event.type = KVM_SYSTEM_EVENT_CRASH;
    assert_int_equal(exit_classify(&run, &what), EXIT_ACTION_CRASH);
    run.system_event.type = 999;
    assert_int_equal(exit_classify(&run, &what), EXIT_ACTION_CRASH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_reason_has_an_action),
        cmocka_unit_test(a_triple_fault_is_named),
        cmocka_unit_test(system_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
