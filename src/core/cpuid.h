/* cpuid.h - what CPUID tells the guest (cpuid.c). */
#ifndef SLATE_CPUID_H
#define SLATE_CPUID_H

#include <linux/kvm.h>

struct vm;
struct vcpu;

/* KVM_GET_SUPPORTED_CPUID takes a few hundred microseconds (every host CPUID traps under nested
 * KVM): it runs on a thread of its own while the machine is set up (or now, if no thread
 * starts), and cpuid_fetch_finish joins it. NULL (logged) when KVM refused. */
void cpuid_fetch_start(struct vm *vm);
struct kvm_cpuid2 *cpuid_fetch_finish(struct vm *vm);

/* KVM_SET_CPUID2 for one vCPU: the supported set, "SlateMachine" and the TSC frequency leaves,
 * the CPU's APIC ID, the hypervisor bit and TSC-deadline where KVM has it. -1 (logged) on
 * failure. */
int cpuid_set(struct vm *vm, struct vcpu *cpu);

#endif
