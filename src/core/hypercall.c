/* hypercall.c - the ports and hole ranges the core serves itself: the hypercall port and MMIO
 * page, the CPU-index port, the 0xE9 debug console, and writes to the read-only info block. The
 * core serves NOP, EXIT, CONSOLE_WRITE and START_CPU; every other hypercall is served by whoever
 * registered it (the display's SCREENSHOT, gdb's DEBUG_BREAK). */
#include "vm.h"

#include "cpu_state.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#define PAGE_SIZE 4096ULL

static int64_t hc_exit(struct vcpu *cpu, uint64_t code)
{
    int status = (int)code;
    if (code > EXIT_GUEST_MAX) {
        log_warn("cpu %u: guest exit code %" PRIu64 " is outside 0..%d; exiting with %d",
                 cpu->index, code, EXIT_GUEST_MAX, EXIT_GUEST_MAX);
        status = EXIT_GUEST_MAX;
    }
    vm_request_stop(cpu->vm, status);
    return 0;
}

/* Translates every page first, as the caller may read it, so the write is all or nothing. */
static int64_t hc_console_write(struct vcpu *cpu, const struct caller_view *caller, uint64_t gva,
                                uint64_t len)
{
    if (len > SLATE_CONSOLE_WRITE_MAX)
        return SLATE_EINVAL;
    bool in_64bit_mode = (caller->sregs.efer & X86_EFER_LMA) && caller->sregs.cs.l;
    if (!in_64bit_mode) { /* addresses are 32 bits wide */
        gva &= 0xFFFFFFFFULL;
        if (gva + len > 0x100000000ULL)
            return SLATE_EFAULT;
    }
    if (len > UINT64_MAX - gva)
        return SLATE_EFAULT;
    struct guest_piece pieces[SLATE_CONSOLE_WRITE_MAX / PAGE_SIZE + 2];
    unsigned count;
    if (vcpu_map_as_caller(cpu, caller, gva, len, false, pieces, sizeof(pieces) / sizeof(pieces[0]),
                           &count) < len)
        return SLATE_EFAULT;
    for (unsigned i = 0; i < count; i++)
        console_write(cpu->vm->console, pieces[i].host, pieces[i].len);
    return (int64_t)len;
}

/* SLATE_HC_USER_HYPERCALLS: what code at CPL > 0 may call (the caller is at CPL 0). */
static int64_t hc_user_hypercalls(struct vm *vm, uint64_t mask)
{
    return (int64_t)(atomic_exchange(&vm->user_hypercalls, mask & ~(1ULL << SLATE_HC_USER_HYPERCALLS)) &
                     INT64_MAX);
}

/* Code at CPL > 0 calls only what the kernel allowed it. */
static bool allowed_at(struct vcpu *cpu, const struct caller_view *caller, uint64_t function)
{
    if (caller->cpl == 0)
        return true;
    uint64_t mask = atomic_load(&cpu->vm->user_hypercalls);
    if (function < 64 && (mask & (1ULL << function)) && function != SLATE_HC_USER_HYPERCALLS)
        return true;
    log_warn_limited(&cpu->vm->guest_limit, "cpu %u: hypercall %" PRIu64 " from CPL %u refused "
                     "(SLATE_EPERM): the kernel has not allowed it to user mode "
                     "(SLATE_HC_USER_HYPERCALLS)", cpu->index, function, caller->cpl);
    return false;
}

static bool core_hypercall(uint64_t function)
{
    return function == SLATE_HC_NOP || function == SLATE_HC_EXIT ||
           function == SLATE_HC_CONSOLE_WRITE || function == SLATE_HC_START_CPU ||
           function == SLATE_HC_USER_HYPERCALLS;
}

int vm_add_hypercall(struct vm *vm, const struct hypercall *hc)
{
    if (core_hypercall(hc->function))
        return -EEXIST;
    for (unsigned i = 0; i < vm->hypercall_count; i++)
        if (vm->hypercalls[i].function == hc->function)
            return -EEXIST;
    if (vm->hypercall_count == VM_MAX_HYPERCALLS)
        return -1;
    vm->hypercalls[vm->hypercall_count++] = *hc;
    return 0;
}

/* A registered hypercall. With nobody to serve it, the ABI's answer for that case: a debug break
 * without --gdb does nothing (0), a screenshot without --screenshot is SLATE_EINVAL, and any
 * other number is SLATE_ENOSYS. */
static int64_t registered_hypercall(struct vcpu *cpu, uint64_t function, const uint64_t args[4])
{
    struct vm *vm = cpu->vm;
    for (unsigned i = 0; i < vm->hypercall_count; i++) {
        const struct hypercall *hc = &vm->hypercalls[i];
        if (hc->function != function)
            continue;
        return hc->device_fn ? hc->device_fn(hc->opaque, args) : hc->fn(hc->opaque, cpu, args);
    }
    if (function == SLATE_HC_DEBUG_BREAK) /* no debugger: nothing happens (but in a test) */
        return vm->test_roundtrip ? (cpu_state_roundtrip(cpu, vm->test_roundtrip_skip) ? SLATE_EIO : 2) : 0;
    if (function == SLATE_HC_SCREENSHOT || function == SLATE_HC_PROFILE)
        return SLATE_EINVAL; /* no display, no --profile */
    log_warn_limited(&vm->guest_limit, "cpu %u: unknown hypercall %" PRIu64, cpu->index, function);
    return SLATE_ENOSYS;
}

/* Every function but NOP looks at its caller first: its privilege decides whether it may call at
 * all, and how addresses it passes are reached. */
static int64_t run_hypercall(struct vcpu *cpu, uint64_t function, const struct kvm_regs *regs)
{
    if (function == SLATE_HC_NOP) /* no privilege needed, and no ioctl: the cheapest exit */
        return 0;
    struct caller_view caller;
    if (!vcpu_caller_view(cpu, &caller))
        return SLATE_EINVAL;
    if (!allowed_at(cpu, &caller, function))
        return SLATE_EPERM;
    const uint64_t args[4] = {regs->rdi, regs->rsi, regs->rcx, regs->rbx};
    switch (function) {
    case SLATE_HC_EXIT: return hc_exit(cpu, regs->rdi);
    case SLATE_HC_CONSOLE_WRITE: return hc_console_write(cpu, &caller, regs->rdi, regs->rsi);
    case SLATE_HC_START_CPU:
        return smp_start_cpu(cpu, &caller, regs->rdi, regs->rsi, regs->rcx, regs->rbx);
    case SLATE_HC_USER_HYPERCALLS: return hc_user_hypercalls(cpu->vm, regs->rdi);
    default: return registered_hypercall(cpu, function, args);
    }
}

/* Runs hypercall `function` with the caller's RDI, RSI, RCX, RBX; the result goes to RAX. */
static void hypercall(struct vcpu *cpu, uint64_t function)
{
    struct kvm_regs *regs = &cpu->run->s.regs.regs;
    int64_t result = run_hypercall(cpu, function, regs);
    flight_record(&cpu->vm->flight, FLIGHT_HYPERCALL, cpu->index, function, (uint64_t)result, 0);
    if (cpu->vm->trace & TRACE_HYPERCALL)
        trace_event(cpu->vm, cpu, "hypercall %" PRIu64 "(%#llx, %#llx, %#llx, %#llx) = %" PRId64,
                    function, regs->rdi, regs->rsi, regs->rcx, regs->rbx, result);
    /* Write RAX back only when it changes: a NOP then costs nothing beyond the exit itself. */
    if (regs->rax != (uint64_t)result) {
        regs->rax = (uint64_t)result;
        cpu->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    }
}

static void hypercall_port(void *opaque, struct bus_io *io)
{
    (void)opaque;
    if (!io->is_write) {
        io->value = ~0ULL;
        return;
    }
    hypercall(io->cpu, io->width == 4 ? (uint32_t)io->value : io->value & 0xFFFF);
}

static void hypercall_page(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    if (!io->is_write) {
        io->value = ~0ULL;
        return;
    }
    if (io->offset != 0 || io->width < 4) {
        log_warn_limited(&vm->guest_limit, "MMIO hypercall page: %u-byte write at offset %#" PRIx64
                         " ignored (write the function as 32 bits at offset 0)", io->width,
                         io->offset);
        return;
    }
    hypercall(io->cpu, io->width == 4 ? (uint32_t)io->value : io->value);
}

static void cpu_index_port(void *opaque, struct bus_io *io)
{
    (void)opaque;
    if (!io->is_write)
        io->value = io->cpu ? io->cpu->index : 0;
}

static void debugcon_port(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    if (!io->is_write) {
        io->value = 0xE9; /* what Bochs and QEMU return, so guests can detect the port */
        return;
    }
    uint8_t byte = (uint8_t)io->value;
    console_write(vm->console, &byte, 1);
}

static void info_block_write(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    if (!io->is_write) {
        io->value = ~0ULL;
        return;
    }
    log_warn_limited(&vm->guest_limit, "guest wrote to the read-only info block at %#" PRIx64
                     "; ignored", (uint64_t)(SLATE_INFO_ADDR + io->offset));
}

/* --exit-port: QEMU's isa-debug-exit, so a test runner written for QEMU works unchanged. */
static void exit_port(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    if (!io->is_write) {
        io->value = ~0ULL;
        return;
    }
    uint64_t v = io->width >= 4 ? (uint32_t)io->value : io->value & ((1ULL << (8 * io->width)) - 1);
    snprintf(vm->end_reason, sizeof(vm->end_reason), "--exit-port: the guest wrote %#llx",
             (unsigned long long)v);
    vm_request_stop(vm, (int)(((v << 1) | 1) & 0xFF)); /* the status QEMU's exit() leaves */
}

int vm_register_core_ranges(struct vm *vm)
{
    struct {
        struct bus *bus;
        uint64_t base, len;
        const char *name;
        bus_handler fn;
    } ranges[] = {
        {&vm->pio, SLATE_HYPERCALL_PORT, 1, "hypercall", hypercall_port},
        {&vm->pio, SLATE_CPU_INDEX_PORT, 1, "cpu-index", cpu_index_port},
        {&vm->pio, SLATE_DEBUGCON_PORT, 1, "debugcon", debugcon_port},
        {&vm->mmio, SLATE_HYPERCALL_PAGE, PAGE_SIZE, "hypercall-page", hypercall_page},
        {&vm->mmio, SLATE_INFO_ADDR, SLATE_INFO_MAX_SIZE, "info-block", info_block_write},
    };
    if (vm->cfg->exit_port >= 0 &&
        bus_register(&vm->pio, (uint64_t)vm->cfg->exit_port, 1, "exit-port", exit_port, vm)) {
        log_error("--exit-port %#x: the port is taken", vm->cfg->exit_port);
        return -1;
    }
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (bus_register(ranges[i].bus, ranges[i].base, ranges[i].len, ranges[i].name,
                         ranges[i].fn, vm)) {
            log_error("internal: cannot register %s", ranges[i].name);
            return -1;
        }
    }
    return 0;
}
