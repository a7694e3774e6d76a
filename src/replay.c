/* replay.c - see replay.h. */
#include "replay.h"

#include "cpu_state.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

void replay_keep_resume_point(struct vcpu *cpu)
{
    const struct kvm_run *run = cpu->run;
    struct vcpu_snapshot *p = &cpu->resume;
    if (!(run->kvm_valid_regs & KVM_SYNC_X86_SREGS))
        return;
    p->regs = run->s.regs.regs; /* with what slate changed in it (a hypercall's result) */
    p->sregs = run->s.regs.sregs;
    p->exit_reason = run->exit_reason;
    p->input_len = 0;
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_IN) {
        uint64_t len = (uint64_t)run->io.size * run->io.count;
        if (len > sizeof(p->input) || run->io.data_offset > cpu->vm->run_size ||
            len > cpu->vm->run_size - run->io.data_offset) {
            p->valid = false; /* a long string input: not kept, so no replay from here */
            return;
        }
        memcpy(p->input, (const uint8_t *)run + run->io.data_offset, len);
        p->input_len = (uint32_t)len;
    } else if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write) {
        memcpy(p->input, run->mmio.data, sizeof(run->mmio.data));
        p->input_len = sizeof(run->mmio.data);
    }
    p->ns = clock_now_ns();
    p->entry = false;
    p->valid = true;
}

void replay_set_resume_point(struct vcpu *cpu, const struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
    cpu->resume = (struct vcpu_snapshot){.valid = true, .entry = true, .ns = clock_now_ns(), .regs = *regs,
                                         .sregs = *sregs};
}

void replay_keep_entry_point(struct vcpu *cpu)
{
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_MP | CPU_REGS | CPU_SREGS, &st, NULL) == 0 &&
        st.mp.mp_state == KVM_MP_STATE_RUNNABLE)
        replay_set_resume_point(cpu, &st.regs, &st.sregs);
}

/* The instruction the CPU resumed at completes an exit (an IN or MMIO read receives what it
 * received the first time; an OUT or a write goes nowhere). */
static void complete_resumed_exit(struct vcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    const struct vcpu_snapshot *p = &cpu->resume;
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_IN &&
        (uint64_t)run->io.size * run->io.count == p->input_len &&
        run->io.data_offset <= cpu->vm->run_size - p->input_len)
        memcpy((uint8_t *)run + run->io.data_offset, p->input, p->input_len);
    else if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write && p->input_len == sizeof(run->mmio.data))
        memcpy(run->mmio.data, p->input, sizeof(run->mmio.data));
}

/* Makes the CPU runnable in the given state, which the next KVM_RUN takes as it is. */
static bool put_state(struct vcpu *cpu, const struct kvm_regs *regs, const struct kvm_sregs *sregs)
{
    struct cpu_state st = {.have = CPU_MP | CPU_SREGS | CPU_REGS, .regs = *regs, .sregs = *sregs,
                           .mp = {.mp_state = KVM_MP_STATE_RUNNABLE}};
    return cpu_state_put(cpu, st.have, &st, NULL) == 0;
}

/* Single-steps from the resume point until the CPU faults again. True when it did: *regs and
 * *sregs are then the state before the instruction that faulted. */
static bool replay_to_fault(struct vcpu *cpu, struct kvm_regs *regs, struct kvm_sregs *sregs, unsigned *steps)
{
    struct kvm_run *run = cpu->run;
    if (!put_state(cpu, &cpu->resume.regs, &cpu->resume.sregs))
        return false;
    const struct kvm_guest_debug step = {
        .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ};
    if (vcpu_set_debug(cpu, DEBUG_REPLAY, &step) < 0)
        return false;
    *regs = cpu->resume.regs;
    *sregs = cpu->resume.sregs;
    *steps = 0;
    bool at_resume_point = true, faulted = false;
    for (unsigned budget = REPLAY_MAX_STEPS; budget > 0; budget--) {
        __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue; /* a kick (it counts against the budget) */
            break;
        }
        uint32_t reason = run->exit_reason;
        if (reason == KVM_EXIT_DEBUG) {
            *regs = run->s.regs.regs;
            *sregs = run->s.regs.sregs;
            ++*steps;
            at_resume_point = false;
        } else if (at_resume_point && (reason == KVM_EXIT_IO || reason == KVM_EXIT_MMIO)) {
            complete_resumed_exit(cpu);
            at_resume_point = false;
        } else {
            faulted = reason == KVM_EXIT_SHUTDOWN || reason == KVM_EXIT_INTERNAL_ERROR;
            break;
        }
    }
    vcpu_set_debug(cpu, DEBUG_REPLAY, NULL);
    return faulted;
}

void replay_recover_crash(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    struct kvm_run *run = cpu->run;
    uint32_t reason = run->exit_reason;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (reason != KVM_EXIT_SHUTDOWN && !(vm->replay_forced && reason == KVM_EXIT_INTERNAL_ERROR))
        return;
    if (cpu_state_regs(cpu, &regs, &sregs) < 0)
        return;
    if (!cpu->resume.valid || (!vm->replay_forced && !vcpu_is_reset_state(&regs, &sregs)))
        return; /* KVM kept the crash's state, or there is nothing to go back to */
    /* The exit that ended the machine is what the report describes, whatever the replay met. */
    uint8_t exit[offsetof(struct kvm_run, kvm_valid_regs)];
    memcpy(exit, run, sizeof(exit));
    unsigned steps = 0;
    cpu->crash_after_ns = clock_now_ns() - cpu->resume.ns;
    bool replayed = replay_to_fault(cpu, &regs, &sregs, &steps);
    if (!replayed) {
        regs = cpu->resume.regs;
        sregs = cpu->resume.sregs;
    }
    if (!put_state(cpu, &regs, &sregs)) {
        log_warn("cpu %u: cannot restore the state before the crash: %s", cpu->index, strerror(errno));
        return;
    }
    memcpy(run, exit, sizeof(exit));
    cpu->crash_state = replayed ? CRASH_STATE_REPLAYED : CRASH_STATE_RESUMED;
    cpu->crash_steps = steps;
}
