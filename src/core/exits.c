/* exits.c - one explicit case for every KVM exit reason an x86 VM can produce. */
#include "exits.h"

#include <stddef.h>

static enum exit_action classify_system_event(const struct kvm_run *run, const char **what)
{
    switch (run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN: *what = "system event: shutdown"; return EXIT_ACTION_SHUTDOWN;
    case KVM_SYSTEM_EVENT_RESET: *what = "system event: reset"; return EXIT_ACTION_RESET;
    case KVM_SYSTEM_EVENT_CRASH: *what = "system event: crash"; return EXIT_ACTION_CRASH;
    default: *what = "system event: unknown type"; return EXIT_ACTION_CRASH;
    }
}

enum exit_action exit_classify(const struct kvm_run *run, const char **what)
{
    switch (run->exit_reason) {
    case KVM_EXIT_IO: *what = "port I/O"; return EXIT_ACTION_PIO;
    case KVM_EXIT_MMIO: *what = "MMIO"; return EXIT_ACTION_MMIO;
    case KVM_EXIT_INTR: *what = "interrupted by a signal"; return EXIT_ACTION_RESUME;
    /* With the in-kernel LAPIC, HLT waits inside KVM; an HLT exit just resumes. */
    case KVM_EXIT_HLT: *what = "HLT"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_IRQ_WINDOW_OPEN: *what = "interrupt window open"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_SET_TPR: *what = "TPR write"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_TPR_ACCESS: *what = "TPR access"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_NMI: *what = "NMI"; return EXIT_ACTION_RESUME;
    /* Split irqchip: EOIs for level-triggered IOAPIC pins; slate has no IOAPIC pins. */
    case KVM_EXIT_IOAPIC_EOI: *what = "IOAPIC EOI"; return EXIT_ACTION_RESUME;
    /* Only with KVM_SET_GUEST_DEBUG, which only the gdb stub enables. */
    case KVM_EXIT_DEBUG: *what = "debug exception"; return EXIT_ACTION_DEBUG;
    /* vmcall with KVM_CAP_EXIT_HYPERCALL, which slate does not enable. */
    case KVM_EXIT_HYPERCALL: *what = "KVM hypercall"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_HYPERV: *what = "Hyper-V exit"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_X86_RDMSR: *what = "RDMSR"; return EXIT_ACTION_MSR;
    case KVM_EXIT_X86_WRMSR: *what = "WRMSR"; return EXIT_ACTION_MSR;
    case KVM_EXIT_AP_RESET_HOLD: *what = "AP reset hold"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_X86_BUS_LOCK: *what = "bus lock"; return EXIT_ACTION_RESUME;
    case KVM_EXIT_SYSTEM_EVENT: return classify_system_event(run, what);
    case KVM_EXIT_SHUTDOWN: *what = "triple fault (shutdown)"; return EXIT_ACTION_CRASH;
    /* Nested KVM (PVM) reports a triple fault as an internal error. */
    case KVM_EXIT_INTERNAL_ERROR: *what = "KVM internal error"; return EXIT_ACTION_CRASH;
    case KVM_EXIT_FAIL_ENTRY: *what = "VM entry failed"; return EXIT_ACTION_CRASH;
    case KVM_EXIT_EXCEPTION: *what = "unhandled exception"; return EXIT_ACTION_CRASH;
    case KVM_EXIT_UNKNOWN: *what = "unknown hardware exit"; return EXIT_ACTION_CRASH;
    case KVM_EXIT_DIRTY_RING_FULL: *what = "dirty ring full"; return EXIT_ACTION_CRASH;
#ifdef KVM_EXIT_NOTIFY
    case KVM_EXIT_NOTIFY:
        *what = "notify window exceeded";
        return run->notify.flags & KVM_NOTIFY_CONTEXT_INVALID ? EXIT_ACTION_CRASH
                                                              : EXIT_ACTION_RESUME;
#endif
#ifdef KVM_EXIT_MEMORY_FAULT
    case KVM_EXIT_MEMORY_FAULT: *what = "memory fault"; return EXIT_ACTION_CRASH;
#endif
    case KVM_EXIT_XEN: *what = "Xen exit"; return EXIT_ACTION_CRASH;
    default:
        /* s390, PowerPC, ARM, RISC-V and LoongArch reasons cannot occur on x86. */
        *what = "exit reason not possible on x86";
        return EXIT_ACTION_CRASH;
    }
}
