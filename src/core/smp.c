/* smp.c - starting application processors with one hypercall.
 *
 * The start hypercall runs on the caller's thread but must change another vCPU's registers. A
 * vCPU ioctl waits for that vCPU's KVM_RUN to return, so the caller posts a request, kicks the
 * target out of KVM_RUN and waits; the target's own thread applies it. Only CPUs that have never
 * run can be targets, so a waiting caller never waits on a CPU that is itself waiting. */
#include "vm.h"

#include "cpu_state.h"
#include "x86.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

/* Writes the frame of a call to the entry (a return address to the park stub, and the argument
 * in 32-bit mode) below `stack` and returns the initial RSP, or 0 when the stack is not RAM. */
static uint64_t write_entry_frame(struct vcpu *caller, const struct caller_view *view, bool long_mode,
                                  uint64_t stack, uint64_t arg)
{
    uint64_t park = SLATE_BOOT_TABLES + BOOT_PARK_STUB_OFFSET;
    uint32_t words[2] = {(uint32_t)park, (uint32_t)arg}; /* cdecl: return address, argument */
    uint64_t rsp = long_mode ? stack - 8 : stack - 20;
    struct guest_piece piece; /* the frame is 8-byte aligned: within one page */
    unsigned count;
    if (vcpu_map_as_caller(caller, view, rsp, 8, true, &piece, 1, &count) < 8)
        return 0;
    memcpy(piece.host, long_mode ? (const void *)&park : (const void *)words, 8);
    return rsp;
}

int64_t smp_start_cpu(struct vcpu *caller, const struct caller_view *view, uint64_t index,
                      uint64_t entry, uint64_t stack, uint64_t arg)
{
    struct vm *vm = caller->vm;
    if (index >= vm->vcpu_count) {
        log_warn_limited(&vm->guest_limit, "cpu %u: start-CPU: there is no CPU %llu (%u CPUs)",
                         caller->index, (unsigned long long)index, vm->vcpu_count);
        return SLATE_EINVAL;
    }
    struct vcpu *target = &vm->vcpus[index];
    if (atomic_load(&target->started))
        return SLATE_EBUSY;
    struct start_request req = {.pending = true, .rip = entry, .arg = arg, .sregs = view->sregs};
    bool long_mode = (req.sregs.efer & X86_EFER_LMA) && req.sregs.cs.l;
    bool protected_32 = (req.sregs.cr0 & X86_CR0_PE) && !(req.sregs.efer & X86_EFER_LMA);
    if (!long_mode && !protected_32)
        return SLATE_EINVAL; /* real mode and compatibility mode: use INIT/SIPI */
    if (!long_mode && (entry > UINT32_MAX || stack > UINT32_MAX))
        return SLATE_EINVAL;
    if (stack & 15 || stack < 32)
        return SLATE_EINVAL;

    pthread_mutex_lock(&target->lock);
    if (target->start.pending || atomic_load(&target->started)) {
        pthread_mutex_unlock(&target->lock);
        return SLATE_EBUSY;
    }
    /* The frame is written only once the request is ours: a refused start changes nothing. */
    req.rsp = write_entry_frame(caller, view, long_mode, stack, arg);
    if (!req.rsp) {
        pthread_mutex_unlock(&target->lock);
        return SLATE_EFAULT;
    }
    target->start = req;
    atomic_store(&target->start_posted, true);
    vcpu_kick(target);
    /* A parked target waits on the pause condition: wake it to serve the request. */
    pthread_mutex_lock(&vm->pause_lock);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    while (!target->start.done && !atomic_load(&vm->stopping))
        pthread_cond_wait(&target->cond, &target->lock);
    int64_t result = target->start.done ? target->start.result : SLATE_EBUSY;
    target->start = (struct start_request){0};
    atomic_store(&target->start_posted, false);
    pthread_mutex_unlock(&target->lock);
    return result;
}

/* On the target's thread: the caller's mode, this CPU's own APIC base, then runnable. */
static int64_t apply_start(struct vcpu *cpu, const struct start_request *req)
{
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_MP | CPU_SREGS, &st, NULL))
        return SLATE_EINVAL;
    if (st.mp.mp_state != KVM_MP_STATE_UNINITIALIZED && st.mp.mp_state != KVM_MP_STATE_INIT_RECEIVED)
        return SLATE_EBUSY; /* INIT/SIPI got there first */
    uint64_t apic_base = st.sregs.apic_base;
    st.sregs = req->sregs;
    st.sregs.apic_base = apic_base; /* never the caller's: it carries the BSP flag */
    memset(st.sregs.interrupt_bitmap, 0, sizeof(st.sregs.interrupt_bitmap));
    st.regs = (struct kvm_regs){.rip = req->rip, .rsp = req->rsp, .rdi = req->arg, .rflags = 0x2};
    st.mp.mp_state = KVM_MP_STATE_RUNNABLE;
    st.have |= CPU_REGS;
    const char *failed;
    int rc = cpu_state_put(cpu, CPU_MP | CPU_SREGS | CPU_REGS, &st, &failed);
    if (rc) {
        log_warn("cpu %u: cannot apply the start request: %s: %s", cpu->index, failed, strerror(-rc));
        return SLATE_EINVAL;
    }
    if (cpu->vm->vcpu_hook_count) /* its first instruction, as for the boot CPU */
        vm_vcpu_hooks(cpu, VCPU_HOOK_FIRST);
    atomic_store(&cpu->started, true);
    return 0;
}

void smp_serve_start(struct vcpu *cpu)
{
    pthread_mutex_lock(&cpu->lock);
    if (cpu->start.pending && !cpu->start.done) {
        cpu->start.result = apply_start(cpu, &cpu->start);
        cpu->start.done = true;
        atomic_store(&cpu->start_posted, false);
        pthread_cond_broadcast(&cpu->cond);
    }
    pthread_mutex_unlock(&cpu->lock);
}

