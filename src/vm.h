/* vm.h - one running machine: KVM VM, memory, vCPUs, buses, devices, event loop. */
#ifndef SLATE_VM_H
#define SLATE_VM_H

#include "bus.h"
#include "console.h"
#include "device.h"
#include "event.h"
#include "loader.h"
#include "log.h"
#include "memory.h"
#include "options.h"
#include "trace.h"

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* vm_run's result besides the process exit statuses 0..255. */
#define VM_STATUS_RESET (-2)

/* Who wants a vCPU's guest-debug state (KVM_SET_GUEST_DEBUG); the arbiter programs the union. */
enum debug_owner { DEBUG_GDB, DEBUG_MONITOR, DEBUG_OWNERS };

/* A request from another CPU's start hypercall, applied by this vCPU's own thread (vCPU ioctls
 * wait for KVM_RUN to return, so only the owner can change its registers promptly). */
struct start_request {
    bool pending;
    bool done;
    int64_t result;
    struct kvm_sregs sregs; /* the caller's mode: control registers, segments, GDT, IDT */
    uint64_t rip, rsp, arg;
};

struct vcpu {
    struct vm *vm;
    unsigned index;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    /* Set once pthread_create has filled in `thread`: other vCPUs may kick this one while the
     * main thread is still starting it. */
    _Atomic bool thread_started;
    /* Guards pthread_kill of this vCPU's thread against its start and its join: the thread
     * itself sets `kickable` (and `self`) before its first KVM_RUN, the main thread clears it
     * just before the join, so a signal only ever goes to a live thread. A kick before that
     * relies on immediate_exit alone, which the first KVM_RUN honours. */
    pthread_mutex_t kick_lock;
    bool kickable;
    pthread_t self;
    /* Set once this CPU has run guest code (the boot CPU, a start hypercall, or INIT/SIPI
     * followed by its first exit); a start request for it is refused from then on. */
    _Atomic bool started;
    pthread_mutex_t lock; /* guards start */
    pthread_cond_t cond;
    struct start_request start;
    _Atomic bool start_posted; /* a start request waits in `start` (read without `lock`) */
    /* Set by a debugger to let this one CPU run (a single step) while the machine is held. */
    bool step_release;
    /* Each owner's wish for this CPU's guest-debug state, and what KVM was given (debug_lock). */
    struct kvm_guest_debug debug_wish[DEBUG_OWNERS];
    pthread_mutex_t debug_lock;
    struct vcpu_stats *stats; /* --stats only */
};

#define VM_MAX_DEVICES DEVICE_MAX
#define VM_WARNED_MMIO 256
#define VM_MAX_HYPERCALLS 16
#define VM_MAX_OBSERVERS 8
#define VM_MAX_DEBUG_HOOKS 4

/* A hypercall served outside the core: by a front end (fn) or a device (device_fn, with the
 * device as opaque). */
typedef int64_t (*hypercall_fn)(void *opaque, struct vcpu *cpu, const uint64_t args[4]);
struct hypercall {
    uint64_t function; /* SLATE_HC_* */
    hypercall_fn fn;
    device_hypercall_fn device_fn;
    void *opaque;
};

/* Someone who follows the machine's life (gdb, the monitor): each hook may be NULL. */
struct vm_observer {
    int (*start)(void *opaque, struct vm *vm); /* before the first instruction; -1 aborts */
    void (*stop)(void *opaque);                /* a stop was requested (any thread) */
    void (*end)(void *opaque, int status);     /* every vCPU has stopped */
    void *opaque;
};

/* A KVM_EXIT_DEBUG on cpu's own thread; returns true if it was the hook's (its breakpoint or
 * step). Hooks are asked in the order they were added. */
typedef bool (*debug_hook_fn)(void *opaque, struct vcpu *cpu);

/* Who holds the machine stopped. It runs when nobody does: each holder releases only its own
 * hold, so the monitor's `cont` cannot let the guest run behind gdb's back. */
enum vm_holder {
    HOLD_CONSOLE = 1 << 0, /* Ctrl-A p */
    HOLD_MONITOR = 1 << 1, /* the monitor's stop */
    HOLD_GDB = 1 << 2,     /* gdb's stop */
    HOLD_PEEK = 1 << 3,    /* a monitor command that reads the CPUs, for its duration */
};


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
    /* The monotonic clock's zero: host CLOCK_MONOTONIC, the guest TSC and Unix time, read
     * together before the first instruction. */
    int64_t boot_mono_ns;
    uint64_t boot_tsc;
    int64_t boot_unix_ns;
    struct kvm_cpuid2 *cpuid;
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
    struct ratelimit guest_limit; /* for warnings about guest mistakes in general */

    /* Registries: what the rooms outside the core plug in. The core never names them. */
    struct hypercall hypercalls[VM_MAX_HYPERCALLS];
    unsigned hypercall_count;
    struct vm_observer observers[VM_MAX_OBSERVERS];
    unsigned observer_count;
    struct {
        debug_hook_fn fn;
        void *opaque;
    } debug_hooks[VM_MAX_DEBUG_HOOKS];
    unsigned debug_hook_count;

    /* Input sinks and the screen, as devices offered them (device_host.c). */
    pthread_mutex_t input_lock;
    struct device *key_sink, *pointer_sink;
    const struct input_sink *key_ops, *pointer_ops;
    struct device *screen;
    device_screenshot_fn screenshot;
};

/* Registries, filled before vm_run (not thread-safe). Each returns 0 or -1 when full (-EEXIST
 * for a hypercall number already taken). */
int vm_add_hypercall(struct vm *vm, const struct hypercall *hc);
int vm_add_observer(struct vm *vm, const struct vm_observer *observer);
int vm_add_debug_hook(struct vm *vm, debug_hook_fn fn, void *opaque);

/* The screen as a PNG named `name` in dirfd (the monitor's screendump). -ENODEV without a display. */
int vm_screenshot_at(struct vm *vm, int dirfd, const char *name, bool replace);

/* Builds the whole machine from cfg: KVM VM, RAM, images, info block, devices, vCPUs. On failure
 * logs one line and returns -1 (everything acquired is released). */
int vm_create(const struct slate_config *cfg, struct console *console, struct vm **out);

/* Starts the vCPU threads, serves events on this thread until the machine stops, joins the vCPUs.
 * deadline_ns: CLOCK_MONOTONIC time for --timeout (0: none). Returns the exit status (0..255)
 * or VM_STATUS_RESET. */
int vm_run(struct vm *vm, int64_t deadline_ns);

void vm_destroy(struct vm *vm);

/* Asks the machine to stop with `status`; the first request wins. Any thread. */
void vm_request_stop(struct vm *vm, int status);

/* Nanoseconds on the guest's monotonic clock, and the host CLOCK_MONOTONIC time of guest ns. */
int64_t vm_clock_ns(const struct vm *vm);
int64_t vm_host_time(const struct vm *vm, int64_t guest_ns);

/* Adds `who`'s hold and returns once every vCPU is parked outside KVM_RUN (or the machine is
 * stopping: then false). Any thread except a vCPU's own. vm_release drops only `who`'s hold; the
 * vCPUs run again when no hold is left. */
bool vm_hold(struct vm *vm, enum vm_holder who);
void vm_release(struct vm *vm, enum vm_holder who);
/* Adds `who`'s hold without waiting for the vCPUs to park (from a vCPU thread, which cannot). */
void vm_request_hold(struct vm *vm, enum vm_holder who);
bool vm_held_by(struct vm *vm, enum vm_holder who);
/* While held: lets `cpu` alone run until it parks again (a debugger's single step). */
void vm_release_one(struct vm *vm, struct vcpu *cpu);

/* The guest-debug arbiter: records `owner`'s wish for cpu (NULL: none) and programs KVM with the
 * union of every owner's (enables, breakpoints, single step; gdb's debug registers). Call with
 * the machine held. 0 or -errno. */
int vcpu_set_debug(struct vcpu *cpu, enum debug_owner owner, const struct kvm_guest_debug *wish);
/* True if `owner` asked for every bit of `control` on cpu (e.g. its single step). */
bool vcpu_debug_wanted(struct vcpu *cpu, enum debug_owner owner, uint32_t control);

/* smp.c, on a vCPU's own thread: applies a start request posted to it, if any. */
void smp_serve_start(struct vcpu *cpu);

/* The start-CPU hypercall: starts CPU `index` at `entry` with stack `stack` and `arg` in RDI, in
 * the caller's mode. Returns 0 or a SLATE_E* code. Called on the caller's vCPU thread. */
int64_t smp_start_cpu(struct vcpu *caller, uint64_t index, uint64_t entry, uint64_t stack,
                      uint64_t arg);

/* On a vCPU's own thread, outside KVM_RUN: applies a pending start request and parks while the
 * machine is paused. */
void vcpu_service_requests(struct vcpu *cpu);
/* This CPU no longer runs guest code (it finished, or waits outside KVM_RUN): a pause counts it
 * as parked and wakes whoever waits for that. */
void vm_count_parked(struct vm *vm);
/* On a vCPU's own thread, before it runs: lets the console park it while output waits. */
void vcpu_thread_init(struct vcpu *cpu);
/* Makes console writes from this machine's vCPUs count them as parked while they wait. */
void vm_attach_console(struct vm *vm, struct console *console);

/* Guest memory at linear addresses, as `cpu` sees it. Each page is translated once: whoever
 * writes where a translation said writes what the page tables said then, even if another CPU
 * changes them meanwhile (a second walk could come out different, or unmapped). */
struct guest_piece {
    void *host;
    size_t len;
};
/* Translates [gva, gva+len) a page at a time into at most `max` pieces, stopping at the first
 * page that is unmapped or not memory (RAM only when for_write; the info block and boot tables
 * too when reading). Returns the bytes covered from gva on; *count pieces describe them. */
size_t vcpu_map_virtual(struct vcpu *cpu, uint64_t gva, size_t len, bool for_write,
                        struct guest_piece *pieces, unsigned max, unsigned *count);
/* Copies up to len bytes from gva; stops at the first page that is unmapped or not memory.
 * Returns the bytes copied. */
size_t vcpu_read_virtual(struct vcpu *cpu, uint64_t gva, void *buf, size_t len);
/* Writes len bytes (at most VCPU_WRITE_MAX) at gva, all or nothing: false, having written
 * nothing, if any page is not RAM. */
#define VCPU_WRITE_MAX 16384
bool vcpu_write_virtual(struct vcpu *cpu, uint64_t gva, const void *buf, size_t len);

/* A writable host pointer to guest RAM at linear address gva, as `cpu` sees it, for len bytes
 * within one page; NULL if unmapped or not RAM. */
void *vcpu_gva_to_ram(struct vcpu *cpu, uint64_t gva, uint64_t len);

/* Interrupts a vCPU's KVM_RUN so it looks at the stop flag. */
void vcpu_kick(struct vcpu *cpu);

/* Runs on a vCPU thread until the machine stops. */
void *vcpu_thread(void *arg);

/* Registers the ports and memory hole ranges the core itself serves. */
int vm_register_core_ranges(struct vm *vm);

/* Translates a guest linear address for `cpu` and returns a host pointer to the memory (RAM or
 * the info block and boot tables) holding [gva, gva+len) within one page, or NULL. Read-only use:
 * anything a device writes must go through memory_ram_ptr. */
const void *vcpu_gva_to_host(struct vcpu *cpu, uint64_t gva, uint64_t len);

/* Prints the crash report for cpu (registers, control state, bytes at RIP) to stderr. */
void crash_report(struct vcpu *cpu, const char *reason);

#endif
