/* replay.h - a triple fault's state where KVM does not keep it.
 *
 * KVM on AMD (kvm_amd) answers a triple fault by resetting the CPU before the exit reaches user
 * space (Linux's svm.c, shutdown_interception): the registers slate then reads are the reset
 * state. Where that happens (replay_attach looks), every vCPU remembers where it last resumed
 * after an exit, and a crash replays the CPU from there by single steps (interrupts blocked, at
 * most REPLAY_MAX_STEPS instructions) until it faults again: the state before that last
 * instruction is the crash's, and the CPU is left in it for the report, --dump-core, --report,
 * gdb and the monitor. Guest memory is not rolled back: the replayed instructions write again
 * what they wrote the first time. A replay that leaves the path (an exit to a device, or the
 * step budget) leaves the CPU where it last resumed, and the report says which. */
#ifndef SLATE_REPLAY_H
#define SLATE_REPLAY_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#define REPLAY_MAX_STEPS 20000

struct vm;
struct vcpu;

/* Where a crashed CPU's registers in reports come from. */
enum crash_state {
    CRASH_STATE_KVM,      /* KVM's, at the crash */
    CRASH_STATE_REPLAYED, /* KVM reset the CPU; slate replayed it to the faulting instruction */
    CRASH_STATE_RESUMED,  /* KVM reset the CPU and no replay reached the fault: its last exit */
};

/* How a crashed CPU's state was found, for the reports. */
struct replay_crash {
    enum crash_state state;
    bool from_entry;  /* the replay began at the CPU's start, not at an exit */
    unsigned steps;   /* instructions replayed (CRASH_STATE_REPLAYED) */
    int64_t after_ns; /* how long after the resume point the crash came */
};

/* Where KVM resets a triple-faulted CPU (kvm_amd), or SLATE_TEST_CRASH_REPLAY is set: every vCPU
 * keeps where it resumed (vCPU hooks), and the debugging room's crash observer calls
 * replay_recover_crash. Elsewhere nothing. 0, or -1 (logged). */
int replay_attach(struct vm *vm);
void replay_detach(struct vm *vm);

/* On the crashed vCPU's thread, before the crash report: puts the CPU back at its faulting
 * instruction if KVM reset it. */
void replay_recover_crash(struct vcpu *cpu);

/* How cpu's crash state was found (CRASH_STATE_KVM without a replay). */
struct replay_crash replay_crash_of(const struct vcpu *cpu);

/* The CPU was put in a state without an exit (time travel went back): a crash is replayed from
 * there. */
void replay_keep_point(struct vcpu *cpu);

/* Someone changed cpu's registers (gdb): a replay from before would not be its path. */
void replay_forget(struct vcpu *cpu);

#endif
