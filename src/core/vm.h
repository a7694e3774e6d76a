/* vm.h - one running machine: KVM VM, memory, vCPUs, buses, devices, event loop (vm.c). Private
 * to the core and the debugging room: devices use device.h. It includes the headers of the core's
 * other files (vcpu.h, control.h, smp.h, hypercall.h), each declaring its own file's functions. */
#ifndef SLATE_VM_H
#define SLATE_VM_H

#include "bus.h"
#include "console.h"
#include "control.h"
#include "device.h"
#include "event.h"
#include "flight.h"
#include "hypercall.h"
#include "irq.h"
#include "loader.h"
#include "log.h"
#include "memory.h"
#include "options.h"
#include "pc_legacy.h"
#include "smp.h"
#include "trace.h"
#include "vcpu.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* vm_run's result besides the process exit statuses 0..255. */
#define VM_STATUS_RESET (-2)

#define VM_MAX_DEVICES DEVICE_MAX
#define VM_WARNED_MMIO 256
#define VM_MAX_HYPERCALLS 16
#define VM_MAX_OBSERVERS 8
#define VM_MAX_DEBUG_HOOKS 4

/* Someone who follows the machine's life (gdb, the monitor, the debugging room): each hook may be
 * NULL. Hooks run in the order observers were added; `end` and `destroy` in reverse. */
struct vm_observer {
    int (*start)(void *opaque, struct vm *vm); /* before the first instruction; -1 aborts */
    void (*stop)(void *opaque);                /* a stop was requested (any thread) */
    /* A CPU crashed (a triple fault, a KVM internal error, a --strict violation): on its own
     * thread, before the machine stops or pauses (--on-crash pause). `what` names it. */
    void (*crash)(void *opaque, struct vcpu *cpu, const char *what);
    /* Someone asks how the machine is doing (SIGQUIT, --timeout): a report to `out`. */
    void (*report)(void *opaque, FILE *out, const char *why);
    void (*end)(void *opaque, int status);     /* every vCPU has stopped; status is final */
    void (*destroy)(void *opaque);             /* the machine is taken apart */
    void *opaque;
};

/* A KVM_EXIT_DEBUG on cpu's own thread; returns true if it was the hook's (its breakpoint or
 * step). Hooks are asked in the order they were added. */
typedef bool (*debug_hook_fn)(void *opaque, struct vcpu *cpu);

/* Where a vCPU hook runs, on the vCPU's own thread: before its first instruction (or when a
 * start request gave it a state without an exit), after each exit the machine goes on from, and
 * after a kick out of KVM_RUN. Unused, hooks cost one predictable branch per exit. */
enum vcpu_hook_point { VCPU_HOOK_FIRST, VCPU_HOOK_EXIT, VCPU_HOOK_KICK };
typedef void (*vcpu_hook_fn)(void *opaque, struct vcpu *cpu, enum vcpu_hook_point at);
#define VM_MAX_VCPU_HOOKS 4

struct debug_room; /* the debugging room's state for this machine (debug.h) */

struct vm {
    const struct slate_config *cfg;
    unsigned trace;         /* TRACE_* mask from --trace */
    FILE *trace_out;        /* --trace-file, or NULL for stderr */
    struct console *console;
    int kvm_fd;
    int vm_fd;
    size_t run_size;
    struct guest_memory mem;
    void *info;        /* host mapping of the info block (read-only to the guest) */
    void *boot_tables; /* host mapping of SLATE_BOOT_TABLES */
    struct boot_plan plan;
    uint64_t tsc_khz;
    _Atomic uint64_t routing_updates; /* KVM_SET_GSI_ROUTING calls, for --stats */
    bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER: CPUID.1:ECX[24] is set */
    uint64_t sync_regs; /* KVM_CAP_SYNC_REGS: the KVM_SYNC_X86_* parts kvm_run can carry */
    /* SLATE_TEST_CPU_ROUNDTRIP=1 (or =PART to leave one part out): a debug-break hypercall with no
     * debugger takes the CPU's state out and puts it back (cpu_state_roundtrip) and returns 2. */
    bool test_roundtrip;
    unsigned test_roundtrip_skip;
    /* The monotonic clock's zero: host CLOCK_MONOTONIC, the guest TSC and Unix time, read
     * together before the first instruction. */
    int64_t boot_mono_ns;
    uint64_t boot_tsc;
    int64_t boot_unix_ns;
    struct kvm_cpuid2 *cpuid;
    /* KVM_GET_SUPPORTED_CPUID takes a few hundred microseconds (every host CPUID traps under nested
     * KVM): it runs on its own thread while the machine is set up, joined before the first vCPU
     * needs it. */
    pthread_t cpuid_thread;
    bool cpuid_fetching;
    unsigned slot_count;

    struct vcpu *vcpus;
    unsigned vcpu_count;

    struct bus pio;
    struct bus mmio;
    struct device devices[VM_MAX_DEVICES];
    unsigned device_count;

    struct event_loop loop;
    struct event_source signal_source;
    struct event_source timeout_source;

    pthread_mutex_t irq_lock; /* guards the routing table and next_gsi */
    struct kvm_irq_routing *routes;
    unsigned next_gsi;
    bool x2apic_ids; /* MSI routes carry 32-bit destination IDs */

    _Atomic bool stopping;
    /* Holds: every vCPU thread parks outside KVM_RUN while anyone holds the machine. */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    unsigned holds;   /* enum vm_holder bits */
    unsigned parked;  /* vCPU threads parked or finished */
    _Atomic int status; /* -1 until the first stop request decides it */

    /* Unclaimed accesses are reported once per address. */
    _Atomic uint8_t warned_ports[65536 / 8];
    _Atomic uint64_t warned_mmio[VM_WARNED_MMIO];
    struct ratelimit unclaimed_limit;
    struct com1 com1;             /* protocol boots only (pc_legacy.c) */
    struct cmos cmos;             /* protocol boots only (pc_legacy.c) */
    _Atomic unsigned legacy_hints; /* legacy_port_hint bits already said */
    struct ratelimit guest_limit; /* for warnings about guest mistakes in general */

    /* Registries: what the rooms outside the core plug in. The core never names them. */
    struct hypercall hypercalls[VM_MAX_HYPERCALLS];
    unsigned hypercall_count;
    _Atomic uint64_t user_hypercalls; /* SLATE_HC_USER_HYPERCALLS: what CPL > 0 may call */
    struct vm_observer observers[VM_MAX_OBSERVERS];
    unsigned observer_count;
    unsigned observers_started; /* the first ones, whose start succeeded: they see the end */
    struct {
        debug_hook_fn fn;
        void *opaque;
    } debug_hooks[VM_MAX_DEBUG_HOOKS];
    unsigned debug_hook_count;
    struct {
        vcpu_hook_fn fn;
        void *opaque;
    } vcpu_hooks[VM_MAX_VCPU_HOOKS];
    unsigned vcpu_hook_count;
    struct debug_room *debug; /* set by the debugging room (debug.c); the core never looks inside */

    /* The machine's own log of its last events (port, MMIO, hypercall, interrupt, exception),
     * which crash and hang reports print. */
    struct flight_recorder flight;
    /* Where crash reports go: NULL for stderr; --each gives each case its own. */
    FILE *report_out;
    /* How the machine ended: set by whoever decided it (a crash, --timeout, a signal). */
    char end_reason[128];
    int crash_cpu;        /* -1: none */

    /* Snapshots (snapshot.c) and --each (each.c). */
    struct event_source snapshot_wake; /* eventfd: a save or a case's end for the event thread */
    _Atomic int snapshot_caller;       /* the CPU whose SLATE_HC_SNAPSHOT waits to be saved, or -1 */
    struct each *each;                 /* --each's runner, or NULL */
    bool ram_from_file;                /* --restore PATH,lazy: RAM pages map the file */
    const struct snapshot *restore_from; /* --restore: the file the machine is built from */
    struct recorder *record;           /* --record or --replay (record.c), or NULL */

    /* Input sinks and the screen, as devices offered them (device_host.c). */
    struct input_sinks inputs;
    struct device *screen;
    device_screenshot_fn screenshot;
};

/* Registries, filled before vm_run (not thread-safe). Each returns 0, or -1 when full. The
 * hypercall registry is hypercall.h's. */
int vm_add_observer(struct vm *vm, const struct vm_observer *observer);
int vm_add_debug_hook(struct vm *vm, debug_hook_fn fn, void *opaque);
int vm_add_vcpu_hook(struct vm *vm, vcpu_hook_fn fn, void *opaque);
/* Runs the vCPU hooks for `at` on cpu's own thread. */
void vm_vcpu_hooks(struct vcpu *cpu, enum vcpu_hook_point at);
/* Tells the observers a CPU crashed (vcpu.c), or asks them for a report (SIGQUIT, --timeout). */
void vm_notify_crash(struct vm *vm, struct vcpu *cpu, const char *what);
void vm_report(struct vm *vm, FILE *out, const char *why);

/* The screen as a PNG named `name` in dirfd (the monitor's screendump). -ENODEV without a display. */
int vm_screenshot_at(struct vm *vm, int dirfd, const char *name, bool replace);

/* Builds the whole machine from cfg: KVM VM, RAM, images, info block, devices, vCPUs. On failure
 * logs one line and returns -1 (everything acquired is released). */
int vm_create(const struct slate_config *cfg, struct console *console, struct vm **out);
/* The same for a machine restored from a snapshot file (snapshot.h) instead of booted. */
struct snapshot;
int vm_create_restored(const struct slate_config *cfg, struct console *console, const struct snapshot *from,
                       struct vm **out);

/* Starts the vCPU threads, serves events on this thread until the machine stops, joins the vCPUs.
 * deadline_ns: CLOCK_MONOTONIC time for --timeout (0: none). Returns the exit status (0..255)
 * or VM_STATUS_RESET. */
int vm_run(struct vm *vm, int64_t deadline_ns);

void vm_destroy(struct vm *vm);

/* Asks the machine to stop with `status`; the first request wins. Any thread. */
void vm_request_stop(struct vm *vm, int status);

/* Inside the core (vm.c, vm_devices.c): a memory slot for [gpa, gpa + size) at host (flags:
 * KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES), and anonymous memory for one. -1 / NULL, logged. */
int vm_add_slot(struct vm *vm, uint64_t gpa, uint64_t size, void *host, uint32_t flags, const char *what);
void *vm_map_anonymous(uint64_t size);
/* The devices the configuration asks for, set up (vm_devices.c); their table in the info block;
 * their teardown, last device first. */
int vm_setup_devices(struct vm *vm);
int vm_write_info(struct vm *vm);
void vm_teardown_devices(struct vm *vm);

/* Nanoseconds on the guest's monotonic clock, and the host CLOCK_MONOTONIC time of guest ns. */
int64_t vm_clock_ns(const struct vm *vm);
int64_t vm_host_time(const struct vm *vm, int64_t guest_ns);

#endif
