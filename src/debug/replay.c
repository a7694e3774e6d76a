/* replay.c - see replay.h. */
#include "replay.h"

#include "cpu_state.h"
#include "debug_room.h"
#include "log.h"
#include "vm.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Where a CPU resumed after an exit: its registers as slate handed them back to KVM, and the
 * input the resumed instruction (an IN or an MMIO read, completed by that KVM_RUN) received. */
struct resume_point {
    bool valid;
    bool entry; /* set without an exit: the entry state or a start request */
    int64_t ns; /* CLOCK_MONOTONIC */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint32_t exit_reason;
    uint32_t input_len;
    uint8_t input[64];
};

struct replay_cpu {
    struct resume_point resume;
    struct replay_crash crash;
};

struct replay {
    bool forced; /* SLATE_TEST_CRASH_REPLAY: replay every triple fault (tests, any KVM) */
    struct replay_cpu *cpus;
};

static struct replay_cpu *of(const struct vcpu *cpu)
{
    struct replay *r = debug_room(cpu->vm)->replay;
    return r ? &r->cpus[cpu->index] : NULL;
}

/* After an exit was handled: where the next KVM_RUN resumes. */
static void keep_resume_point(struct vcpu *cpu)
{
    const struct kvm_run *run = cpu->run;
    struct resume_point *p = &of(cpu)->resume;
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

/* A state set without an exit (the entry state, a start request): a kernel that faults before
 * its first exit is replayed from there, if the CPU is running. */
static void keep_entry_point(struct vcpu *cpu)
{
    struct cpu_state st = {0};
    /* KVM copies the segments and tables into kvm_run at each exit: keep_resume_point's. */
    cpu->run->kvm_valid_regs |= KVM_SYNC_X86_SREGS;
    if (cpu_state_get(cpu, CPU_MP | CPU_REGS | CPU_SREGS, &st, NULL) == 0 &&
        st.mp.mp_state == KVM_MP_STATE_RUNNABLE)
        of(cpu)->resume = (struct resume_point){.valid = true, .entry = true, .ns = clock_now_ns(),
                                                .regs = st.regs, .sregs = st.sregs};
}

static void on_vcpu(void *opaque, struct vcpu *cpu, enum vcpu_hook_point at)
{
    (void)opaque;
    if (at == VCPU_HOOK_FIRST)
        keep_entry_point(cpu);
    else if (at == VCPU_HOOK_EXIT)
        keep_resume_point(cpu);
}

int replay_attach(struct vm *vm)
{
    bool forced = getenv("SLATE_TEST_CRASH_REPLAY") != NULL;
    if (!forced && access("/sys/module/kvm_amd", F_OK) != 0)
        return 0; /* KVM keeps a triple fault's state: nothing to replay */
    struct replay *r = calloc(1, sizeof(*r));
    if (!r || !(r->cpus = calloc(vm->vcpu_count, sizeof(*r->cpus)))) {
        free(r);
        log_error("out of memory");
        return -1;
    }
    r->forced = forced;
    debug_room(vm)->replay = r;
    if (vm_add_vcpu_hook(vm, on_vcpu, r)) {
        log_error("internal: too many vCPU hooks");
        return -1;
    }
    return 0;
}

void replay_detach(struct vm *vm)
{
    struct replay *r = debug_room(vm)->replay;
    if (r)
        free(r->cpus);
    free(r);
    debug_room(vm)->replay = NULL;
}

struct replay_crash replay_crash_of(const struct vcpu *cpu)
{
    const struct replay_cpu *rc = of(cpu);
    return rc ? rc->crash : (struct replay_crash){CRASH_STATE_KVM, false, 0, 0};
}

void replay_keep_point(struct vcpu *cpu)
{
    if (of(cpu))
        keep_entry_point(cpu);
}

void replay_forget(struct vcpu *cpu)
{
    struct replay_cpu *rc = of(cpu);
    if (rc)
        rc->resume.valid = false;
}

/* The instruction the CPU resumed at completes an exit (an IN or MMIO read receives what it
 * received the first time; an OUT or a write goes nowhere). */
static void complete_resumed_exit(struct vcpu *cpu)
{
    struct kvm_run *run = cpu->run;
    const struct resume_point *p = &of(cpu)->resume;
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
    const struct resume_point *from = &of(cpu)->resume;
    if (!put_state(cpu, &from->regs, &from->sregs))
        return false;
    const struct kvm_guest_debug step = {
        .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ};
    if (vcpu_set_debug(cpu, DEBUG_REPLAY, &step) < 0)
        return false;
    *regs = from->regs;
    *sregs = from->sregs;
    *steps = 0;
    bool at_resume_point = true, faulted = false;
    for (unsigned budget = REPLAY_MAX_STEPS; budget > 0; budget--) {
        __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        cpu_state_running(cpu);
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
    struct replay *r = debug_room(cpu->vm)->replay;
    struct replay_cpu *rc = of(cpu);
    struct kvm_run *run = cpu->run;
    uint32_t reason = run->exit_reason;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (!r || (reason != KVM_EXIT_SHUTDOWN && !(r->forced && reason == KVM_EXIT_INTERNAL_ERROR)))
        return;
    if (cpu_state_regs(cpu, &regs, &sregs) < 0)
        return;
    if (!rc->resume.valid || (!r->forced && !vcpu_is_reset_state(&regs, &sregs)))
        return; /* KVM kept the crash's state, or there is nothing to go back to */
    /* The exit that ended the machine is what the report describes, whatever the replay met. */
    uint8_t exit[offsetof(struct kvm_run, kvm_valid_regs)];
    memcpy(exit, run, sizeof(exit));
    unsigned steps = 0;
    rc->crash.after_ns = clock_now_ns() - rc->resume.ns;
    rc->crash.from_entry = rc->resume.entry;
    bool replayed = replay_to_fault(cpu, &regs, &sregs, &steps);
    if (!replayed) {
        regs = rc->resume.regs;
        sregs = rc->resume.sregs;
    }
    if (!put_state(cpu, &regs, &sregs)) {
        log_warn("cpu %u: cannot restore the state before the crash: %s", cpu->index, strerror(errno));
        return;
    }
    memcpy(run, exit, sizeof(exit));
    rc->crash.state = replayed ? CRASH_STATE_REPLAYED : CRASH_STATE_RESUMED;
    rc->crash.steps = steps;
}
