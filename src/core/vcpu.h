/* vcpu.h - one virtual CPU: its state, its thread (vcpu.c), and guest memory as it sees it. */
#ifndef SLATE_VCPU_H
#define SLATE_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct cpu_state;

/* Who wants a vCPU's guest-debug state (KVM_SET_GUEST_DEBUG); the arbiter programs the union. */
enum debug_owner { DEBUG_GDB, DEBUG_MONITOR, DEBUG_TRACER, DEBUG_REPLAY, DEBUG_RECORD, DEBUG_TIMETRAVEL, DEBUG_OWNERS };

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
    /* How this CPU crashed ("triple fault (shutdown)", "KVM internal error", "--strict: ..."), or
     * "" while it has not; written once, on its own thread, before the machine hears of it. */
    char crashed[160];
    /* Its last KVM_RUN ended in an exit, which KVM completes at the next KVM_RUN (own thread). */
    _Atomic bool exit_pending;
    /* Set by a debugger to let this one CPU run (a single step) while the machine is held. */
    bool step_release;
    /* A single step's instruction exited to slate (a port or MMIO access, a hypercall): its next
     * KVM_RUN completes it and nothing more (own thread). */
    bool step_completing;
    /* Work another thread gave this CPU while it is parked (vm_run_parked; pause_lock). */
    void (*parked_work)(struct vcpu *cpu, void *arg);
    void *parked_arg;
    /* Each owner's wish for this CPU's guest-debug state, and what KVM was given (debug_lock). */
    struct kvm_guest_debug debug_wish[DEBUG_OWNERS];
    pthread_mutex_t debug_lock;
    struct vcpu_stats *stats; /* --stats only */
    /* What cpu_state.c read of this CPU since it last ran (state_lock): valid while cached_gen
     * equals run_gen, which the CPU's thread bumps before every KVM_RUN. */
    pthread_mutex_t state_lock;
    struct cpu_state *cached;
    uint64_t cached_gen;
    _Atomic uint64_t run_gen;
};

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
/* A hypercall's caller as the CPU judges its memory accesses: its mode, page tables and
 * privilege. Arguments it passes by address are reached only as it could reach them itself. */
struct caller_view {
    struct kvm_sregs sregs;
    uint64_t rflags;
    unsigned cpl; /* 3 in user mode and virtual-8086 mode */
};
/* Reads the caller's state (one KVM_GET_SREGS). False when KVM refuses. */
bool vcpu_caller_view(struct vcpu *cpu, struct caller_view *view);
/* vcpu_map_virtual as the caller may access the memory: every page must be present, a user page
 * for a caller at CPL 3, writable for a write (a supervisor write to a read-only page only with
 * CR0.WP clear), and a supervisor's access to a user page is refused under SMAP unless RFLAGS.AC
 * is set. The walk is slate's own over the caller's tables (all paging modes). */
size_t vcpu_map_as_caller(struct vcpu *cpu, const struct caller_view *view, uint64_t gva, size_t len,
                          bool for_write, struct guest_piece *pieces, unsigned max, unsigned *count);
/* Copies up to len bytes from gva; stops at the first page that is unmapped or not memory.
 * Returns the bytes copied. */
size_t vcpu_read_virtual(struct vcpu *cpu, uint64_t gva, void *buf, size_t len);

/* What the CPU is doing, in words for reports: "crashed (triple fault (shutdown))", "never
 * started", "waiting for start", "halted" or "running". */
const char *vcpu_run_state(struct vcpu *cpu, char *buf, size_t len);

/* On cpu's own thread, after a KVM_RUN that ended in an exit: handles it as the vCPU loop does
 * (the recorder's hooks, the devices, --stats). False when the CPU should stop running. */
bool vcpu_process_exit(struct vcpu *cpu);

/* The state x86 defines after RESET or INIT (CS:IP F000:FFF0, paging and protection off). */
bool vcpu_is_reset_state(const struct kvm_regs *regs, const struct kvm_sregs *sregs);
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

/* Translates a guest linear address for `cpu` and returns a host pointer to the memory (RAM or
 * the info block and boot tables) holding [gva, gva+len) within one page, or NULL. Read-only use:
 * anything a device writes must go through memory_ram_ptr. */
const void *vcpu_gva_to_host(struct vcpu *cpu, uint64_t gva, uint64_t len);

/* Linear address va as a CPU in state s translates it, walked in the guest's page tables without
 * an ioctl (for hot paths: the profiler's frames, the exception tracer's IDT): a host pointer to
 * [va, va+len) within one page, or NULL when it is unmapped, not memory, or the CPU uses 32-bit
 * paging (not walked: use vcpu_read_virtual). Paging off: linear = physical. */
struct guest_memory;
const void *memory_linear_ptr(const struct guest_memory *mem, const struct kvm_sregs *s, uint64_t va,
                              size_t len);

#endif
