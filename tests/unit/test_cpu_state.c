/* cpu_state.c without KVM: what a reader gets from the cache while the CPU does not run, that the
 * cache is dropped when it runs again, and the MSR and part-name lookups. (The round trip through
 * KVM itself is tests/t/cpustate.t.) */
#include "unit.h"

#include "cpu_state.h"
#include "vcpu.h"

#include <errno.h>
#include <stdlib.h>

/* A vCPU whose fd is not KVM's: every ioctl fails, so whatever a read returns came from the cache. */
static struct vcpu *fake_vcpu(void)
{
    struct vcpu *cpu = calloc(1, sizeof(*cpu));
    cpu->fd = -1;
    pthread_mutex_init(&cpu->state_lock, NULL);
    return cpu;
}

static void free_vcpu(struct vcpu *cpu)
{
    free(cpu->cached);
    pthread_mutex_destroy(&cpu->state_lock);
    free(cpu);
}

static void a_stopped_cpu_is_read_from_the_cache(void **state)
{
    (void)state;
    struct vcpu *cpu = fake_vcpu();
    struct cpu_state put = {.have = CPU_REGS | CPU_SREGS};
    put.regs.rip = 0x100123, put.sregs.cr3 = 0x5000;
    const char *failed = NULL;
    /* The put itself fails (no KVM), and a failed put leaves nothing cached. */
    assert_int_equal(cpu_state_put(cpu, CPU_REGS, &put, &failed), -EBADF);
    assert_string_equal(failed, "KVM_SET_REGS");
    struct cpu_state got = {0};
    assert_int_equal(cpu_state_get(cpu, CPU_REGS, &got, &failed), -EBADF);
    assert_string_equal(failed, "KVM_GET_REGS");
    /* What was read while the CPU stood still: served again without an ioctl. */
    cpu->cached = calloc(1, sizeof(*cpu->cached));
    *cpu->cached = put;
    cpu->cached_gen = 0;
    memset(&got, 0, sizeof(got));
    assert_int_equal(cpu_state_get(cpu, CPU_REGS | CPU_SREGS, &got, &failed), 0);
    assert_int_equal(got.regs.rip, 0x100123);
    assert_int_equal(got.sregs.cr3, 0x5000);
    assert_int_equal(got.have, CPU_REGS | CPU_SREGS);
    /* A part the cache lacks needs KVM. */
    assert_int_equal(cpu_state_get(cpu, CPU_LAPIC, &got, &failed), -EBADF);
    assert_string_equal(failed, "KVM_GET_LAPIC");
    free_vcpu(cpu);
}

static void running_drops_the_cache(void **state)
{
    (void)state;
    struct vcpu *cpu = fake_vcpu();
    cpu->cached = calloc(1, sizeof(*cpu->cached));
    cpu->cached->have = CPU_REGS;
    struct cpu_state got = {0};
    assert_int_equal(cpu_state_get(cpu, CPU_REGS, &got, NULL), 0);
    cpu_state_running(cpu); /* its thread enters KVM_RUN */
    assert_int_equal(cpu_state_get(cpu, CPU_REGS, &got, NULL), -EBADF);
    free_vcpu(cpu);
}

static void msrs_and_part_names(void **state)
{
    (void)state;
    struct cpu_state st = {.msr_count = 2, .msrs = {{0xC0000082, 0xFFFF800000001000ULL}, {0x277, 7}}};
    uint64_t v = 0;
    assert_true(cpu_state_msr(&st, 0xC0000082, &v));
    assert_int_equal(v, 0xFFFF800000001000ULL);
    assert_false(cpu_state_msr(&st, 0x10, &v));
    assert_int_equal(cpu_state_part("fpu"), CPU_FPU);
    assert_int_equal(cpu_state_part("debugregs"), CPU_DEBUGREGS);
    assert_int_equal(cpu_state_part("nonsense"), 0);
    /* The MSR list a kernel needs, each once. */
    for (int i = 0; i < CPU_STATE_MSRS; i++)
        for (int j = i + 1; j < CPU_STATE_MSRS; j++)
            assert_int_not_equal(cpu_state_msrs[i], cpu_state_msrs[j]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_stopped_cpu_is_read_from_the_cache),
        cmocka_unit_test(running_drops_the_cache),
        cmocka_unit_test(msrs_and_part_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
