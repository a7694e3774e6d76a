/* cpu_state.h - one home for a vCPU's architectural state: every KVM ioctl that reads or writes a
 * CPU's registers is here. A reader names the parts it wants (CPU_REGS | CPU_SREGS, ...) and gets
 * them in one struct; a writer puts parts back in the order KVM needs. Parts read while the CPU
 * does not run are kept (a cache per vCPU, dropped before its next KVM_RUN), so a report that
 * asks for the same registers five times costs one ioctl. */
#ifndef SLATE_CPU_STATE_H
#define SLATE_CPU_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct vcpu;

/* The parts of a CPU's state. */
enum cpu_part {
    CPU_REGS = 1 << 0,      /* general registers, RIP, RFLAGS (kvm_regs) */
    CPU_SREGS = 1 << 1,     /* segments, descriptor tables, CR0/2/3/4/8, EFER, APIC base */
    CPU_FPU = 1 << 2,       /* x87, SSE, AVX and the rest of XSAVE's area, and XCR0 */
    CPU_MSRS = 1 << 3,      /* the MSRs a kernel sets (cpu_state_msrs) */
    CPU_LAPIC = 1 << 4,     /* the local APIC's registers, its timer included */
    CPU_MP = 1 << 5,        /* running, halted, waiting for INIT/SIPI */
    CPU_EVENTS = 1 << 6,    /* a pending or injected exception, interrupt, NMI; SMM; shadows */
    CPU_DEBUGREGS = 1 << 7, /* DR0-3, DR6, DR7 */
    CPU_ALL = (1 << 8) - 1,
};

/* The MSRs a kernel uses, in the order they are put back. */
#define CPU_STATE_MSRS 16
struct cpu_msr {
    uint32_t index;
    uint64_t value;
};

/* KVM_GET_XSAVE's 4 KiB area (struct kvm_xsave without the flexible tail newer headers add,
 * which no struct may hold in its middle). */
struct cpu_xsave {
    uint32_t region[1024];
};

struct cpu_state {
    unsigned have; /* enum cpu_part bits filled in */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct cpu_xsave xsave; /* or the legacy area alone where KVM lacks XSAVE (fpu_legacy) */
    struct kvm_xcrs xcrs;
    bool fpu_legacy;        /* xsave holds a struct kvm_fpu: KVM without KVM_CAP_XSAVE */
    struct cpu_msr msrs[CPU_STATE_MSRS];
    unsigned msr_count;
    struct kvm_lapic_state lapic;
    struct kvm_mp_state mp;
    struct kvm_vcpu_events events;
    struct kvm_debugregs debugregs;
};

/* The MSRs CPU_MSRS reads and writes: TSC, TSC_DEADLINE, EFER, STAR, LSTAR, CSTAR, SFMASK,
 * KERNEL_GS_BASE, FS_BASE, GS_BASE, SYSENTER_CS/ESP/EIP, PAT, APIC_BASE, MISC_ENABLE. */
extern const uint32_t cpu_state_msrs[CPU_STATE_MSRS];

/* Reads `parts` of cpu's state into *st (adding to what *st has). Any thread; a CPU that runs is
 * read at its next exit. On its own thread between exits, CPU_REGS is the copy slate works on
 * (kvm_run's, with a hypercall's result already in RAX). 0, or -errno with the failing ioctl's
 * name in *failed (may be NULL). An MSR KVM refuses is left out (msr_count says how many came). */
int cpu_state_get(struct vcpu *cpu, unsigned parts, struct cpu_state *st, const char **failed);
/* Puts the parts of *st that `parts` names (and *st has) into cpu, in the order KVM needs
 * (regs, FPU, XCRs, sregs, MSRs, MP state, LAPIC, events, debug registers). The caller owns the
 * CPU: its own thread, or the CPU parked. 0, or -errno with the failing ioctl in *failed. */
int cpu_state_put(struct vcpu *cpu, unsigned parts, const struct cpu_state *st, const char **failed);

/* cpu_state_put of every part *st has, for a CPU parked outside KVM_RUN (--each's reset): the
 * parts `sync` (KVM_SYNC_X86_* bits KVM offers) names go in through kvm_run with the CPU's next
 * KVM_RUN, three ioctls fewer. A reader of this CPU before then must not rely on KVM's copy of
 * them (the cache is dropped). 0, or -errno with the failing ioctl in *failed. */
int cpu_state_put_parked(struct vcpu *cpu, const struct cpu_state *st, uint64_t sync, const char **failed);

/* The most common read: the general and segment registers. 0 or -errno (errno set too). */
int cpu_state_regs(struct vcpu *cpu, struct kvm_regs *regs, struct kvm_sregs *sregs);
/* The CPU's TSC, read alone (one MSR: its moment is known to within one ioctl). 0 or -errno. */
int cpu_state_tsc(struct vcpu *cpu, uint64_t *tsc);
/* Whether the CPU waits in HLT (its MP state), false when KVM would not say. */
bool cpu_state_halted(struct vcpu *cpu);

/* The same on a bare vCPU fd (a probe VM's), without a cache. */
int cpu_state_get_fd(int fd, unsigned parts, struct cpu_state *st, const char **failed);
int cpu_state_put_fd(int fd, unsigned parts, const struct cpu_state *st, const char **failed);

/* On cpu's own thread, before KVM_RUN: what was read is stale from now on. */
void cpu_state_running(struct vcpu *cpu);
/* On cpu's own thread, as it parks: registers changed in kvm_run (a hypercall's result) reach
 * KVM now rather than at the next KVM_RUN, so a debugger reading them sees the truth. */
void cpu_state_flush(struct vcpu *cpu);

/* The x87 and SSE state of *st (which has CPU_FPU) in KVM's struct kvm_fpu form: XSAVE's legacy
 * region (the FXSAVE layout) unpacked. */
void cpu_state_fpu(const struct cpu_state *st, struct kvm_fpu *out);

/* The value of MSR `index` in *st, or false when it was not read. */
bool cpu_state_msr(const struct cpu_state *st, uint32_t index, uint64_t *value);

/* Test support (SLATE_TEST_CPU_ROUNDTRIP): reads every part, puts a different state (zeros and
 * a reset-like CPU) into the CPU, then puts the saved state back but for the parts in `skip`;
 * the guest must not notice (and must, for a skipped part). Runs on cpu's own thread. 0, or
 * -errno (logged). */
int cpu_state_roundtrip(struct vcpu *cpu, unsigned skip);
/* The part named `name` ("regs", "sregs", "fpu", "msrs", "lapic", "mp", "events", "debugregs"),
 * or 0. */
unsigned cpu_state_part(const char *name);

#endif
