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
    /* Set by the gdb stub to let this one CPU run (a single step) while the machine is paused. */
    bool step_release;
    struct vcpu_stats *stats; /* --stats only */
};

#define VM_MAX_DEVICES DEVICE_MAX
#define VM_WARNED_MMIO 256

struct gdb_server;

struct vm {
    const struct slate_config *cfg;
    struct gdb_server *gdb; /* NULL without --gdb */
    struct monitor *monitor; /* NULL without --monitor */
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
    /* Pause: every vCPU thread parks outside KVM_RUN until resumed (vm_pause/vm_resume). */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    bool pause_requested;
    unsigned parked;  /* vCPU threads parked or finished */
    _Atomic int status; /* -1 until the first stop request decides it */

    /* Unclaimed accesses are reported once per address. */
    _Atomic uint8_t warned_ports[65536 / 8];
    _Atomic uint64_t warned_mmio[VM_WARNED_MMIO];
    struct ratelimit unclaimed_limit;
    struct ratelimit guest_limit; /* for warnings about guest mistakes in general */
};

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

/* Stops every vCPU outside KVM_RUN and returns once all are parked (or the machine is stopping).
 * Any thread except a vCPU's own. vm_resume lets them run again. Returns false if it stopped. */
bool vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* Asks every vCPU to park without waiting for it (from a vCPU thread, which cannot wait). */
void vm_request_pause(struct vm *vm);
/* While paused: lets `cpu` alone run until it parks again (the gdb stub's single step). */
void vm_release_one(struct vm *vm, struct vcpu *cpu);

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

/* Copies up to len bytes from linear address gva as `cpu` sees it; stops at the first page that
 * is unmapped or not memory. Returns the bytes copied. */
size_t vcpu_read_virtual(struct vcpu *cpu, uint64_t gva, void *buf, size_t len);

/* A writable host pointer to guest RAM at linear address gva, as `cpu` sees it, for len bytes
 * within one page; NULL if unmapped or not RAM. */
void *vcpu_gva_to_ram(struct vcpu *cpu, uint64_t gva, uint64_t len);

/* Interrupts a vCPU's KVM_RUN so it looks at the stop flag. */
void vcpu_kick(struct vcpu *cpu);

/* Runs on a vCPU thread until the machine stops. */
void *vcpu_thread(void *arg);

/* Reports an access nobody claims: a warning once per address, or with --strict a stop.
 * Reads return all-ones. */
void vm_unclaimed(struct vm *vm, struct vcpu *cpu, bool is_mmio, uint64_t addr,
                  struct bus_io *io);

/* Registers the ports and memory hole ranges the core itself serves. */
int vm_register_core_ranges(struct vm *vm);

/* Translates a guest linear address for `cpu` and returns a host pointer to the memory (RAM or
 * the info block and boot tables) holding [gva, gva+len) within one page, or NULL. Read-only use:
 * anything a device writes must go through memory_ram_ptr. */
const void *vcpu_gva_to_host(struct vcpu *cpu, uint64_t gva, uint64_t len);

/* Prints the crash report for cpu (registers, control state, bytes at RIP) to stderr. */
void crash_report(struct vcpu *cpu, const char *reason);

#endif
