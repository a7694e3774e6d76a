/* replay.h - a triple fault's state where KVM does not keep it.
 *
 * KVM on AMD (kvm_amd) answers a triple fault by resetting the CPU before the exit reaches user
 * space (Linux's svm.c, shutdown_interception): the registers slate then reads are the reset
 * state. Where that happens (vm->shutdown_resets), every vCPU remembers where it last resumed
 * after an exit, and a crash replays the CPU from there by single steps (interrupts blocked, at
 * most REPLAY_MAX_STEPS instructions) until it faults again: the state before that last
 * instruction is the crash's, and the CPU is left in it for the report, --dump-core, --report,
 * gdb and the monitor. Guest memory is not rolled back: the replayed instructions write again
 * what they wrote the first time. A replay that leaves the path (an exit to a device, or the
 * step budget) leaves the CPU where it last resumed, and the report says which. */
#ifndef SLATE_REPLAY_H
#define SLATE_REPLAY_H

#define REPLAY_MAX_STEPS 20000

struct vcpu;
struct kvm_regs;
struct kvm_sregs;

/* On the vCPU's thread, after an exit was handled: where the next KVM_RUN resumes. */
void replay_keep_resume_point(struct vcpu *cpu);

/* On the vCPU's thread, when its state was set without an exit (the entry state, a start
 * request): a kernel that faults before its first exit is replayed from there. */
void replay_set_resume_point(struct vcpu *cpu, const struct kvm_regs *regs, const struct kvm_sregs *sregs);

/* The same for the state KVM has now, if the CPU is running (before its first KVM_RUN). */
void replay_keep_entry_point(struct vcpu *cpu);

/* On the crashed vCPU's thread, before the crash report: puts the CPU back at its faulting
 * instruction if KVM reset it (sets cpu->crash_state). */
void replay_recover_crash(struct vcpu *cpu);

#endif
