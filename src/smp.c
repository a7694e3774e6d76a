/* smp.c - starting application processors with one hypercall, and pausing every vCPU.
 *
 * The start hypercall runs on the caller's thread but must change another vCPU's registers. A
 * vCPU ioctl waits for that vCPU's KVM_RUN to return, so the caller posts a request, kicks the
 * target out of KVM_RUN and waits; the target's own thread applies it. Only CPUs that have never
 * run can be targets, so a waiting caller never waits on a CPU that is itself waiting. */
#include "vm.h"

#include "x86.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

/* Writes the frame of a call to the entry (a return address to the park stub, and the argument
 * in 32-bit mode) below `stack` and returns the initial RSP, or 0 when the stack is not RAM. */
static uint64_t write_entry_frame(struct vcpu *caller, bool long_mode, uint64_t stack, uint64_t arg)
{
    uint64_t park = SLATE_BOOT_TABLES + BOOT_PARK_STUB_OFFSET;
    if (long_mode) {
        uint8_t *frame = vcpu_gva_to_ram(caller, stack - 8, 8);
        if (!frame)
            return 0;
        memcpy(frame, &park, 8);
        return stack - 8;
    }
    uint32_t words[2] = {(uint32_t)park, (uint32_t)arg}; /* cdecl: return address, argument */
    uint8_t *frame = vcpu_gva_to_ram(caller, stack - 20, 8);
    if (!frame)
        return 0;
    memcpy(frame, words, sizeof(words));
    return stack - 20;
}

int64_t smp_start_cpu(struct vcpu *caller, uint64_t index, uint64_t entry, uint64_t stack,
                      uint64_t arg)
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
    struct start_request req = {.pending = true, .rip = entry, .arg = arg};
    if (ioctl(caller->fd, KVM_GET_SREGS, &req.sregs) < 0)
        return SLATE_EINVAL;
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
    req.rsp = write_entry_frame(caller, long_mode, stack, arg);
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
    struct kvm_mp_state mp;
    if (ioctl(cpu->fd, KVM_GET_MP_STATE, &mp) < 0)
        return SLATE_EINVAL;
    if (mp.mp_state != KVM_MP_STATE_UNINITIALIZED && mp.mp_state != KVM_MP_STATE_INIT_RECEIVED)
        return SLATE_EBUSY; /* INIT/SIPI got there first */
    struct kvm_sregs sregs;
    if (ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0)
        return SLATE_EINVAL;
    uint64_t apic_base = sregs.apic_base;
    sregs = req->sregs;
    sregs.apic_base = apic_base; /* never the caller's: it carries the BSP flag */
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    struct kvm_regs regs = {.rip = req->rip, .rsp = req->rsp, .rdi = req->arg, .rflags = 0x2};
    mp.mp_state = KVM_MP_STATE_RUNNABLE;
    if (ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0 || ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
        ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0) {
        log_warn("cpu %u: cannot apply the start request: %s", cpu->index, strerror(errno));
        return SLATE_EINVAL;
    }
    /* KVM_SET_REGS bypasses kvm_run's copy; make sure the next KVM_RUN does not restore it. */
    cpu->run->kvm_dirty_regs = 0;
    atomic_store(&cpu->started, true);
    return 0;
}

/* Read with the pause lock held, so without cpu->lock: a requester holds cpu->lock while it
 * takes the pause lock. */
static bool start_waiting(struct vcpu *cpu) { return atomic_load(&cpu->start_posted); }

static void service_start(struct vcpu *cpu)
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

/* Registers changed through kvm_run (a hypercall's result) reach KVM only at the next KVM_RUN;
 * a paused CPU hands them over now, so a debugger reading them sees the truth. */
static void flush_sync_regs(struct vcpu *cpu)
{
    if (!cpu->run->kvm_dirty_regs)
        return;
    if (ioctl(cpu->fd, KVM_SET_REGS, &cpu->run->s.regs.regs) < 0)
        log_warn("cpu %u: KVM_SET_REGS: %s", cpu->index, strerror(errno));
    cpu->run->kvm_dirty_regs = 0;
}

static void park_while_paused(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    pthread_mutex_lock(&vm->pause_lock);
    if (vm->pause_requested && !cpu->step_release) {
        flush_sync_regs(cpu);
        vm->parked++;
        pthread_cond_broadcast(&vm->pause_cond);
        while (vm->pause_requested && !cpu->step_release && !atomic_load(&vm->stopping)) {
            /* A CPU that asked to start this one waits for the answer, and a pause waits for
             * that CPU: serve the request while parked (the CPU runs once the pause ends). */
            if (start_waiting(cpu)) {
                pthread_mutex_unlock(&vm->pause_lock);
                service_start(cpu);
                pthread_mutex_lock(&vm->pause_lock);
                continue;
            }
            pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
        }
        if (!cpu->step_release)
            vm->parked--; /* (vm_release_one already counted it as running) */
        /* The kick that parked it is served: the next KVM_RUN must really run (a single step). */
        __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    }
    cpu->step_release = false; /* one run, then it parks again */
    pthread_mutex_unlock(&vm->pause_lock);
}

void vm_request_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = true;
    pthread_mutex_unlock(&vm->pause_lock);
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
}

void vm_release_one(struct vm *vm, struct vcpu *cpu)
{
    pthread_mutex_lock(&vm->pause_lock);
    if (!cpu->step_release && vm->parked > 0)
        vm->parked--; /* running from now on, so a vm_pause waits for it to park again */
    cpu->step_release = true;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

/* The vCPU whose thread this is (NULL elsewhere): a console write blocked on a stalled reader
 * parks it for as long as it waits. */
static _Thread_local struct vcpu *current_vcpu;

void vcpu_thread_init(struct vcpu *cpu)
{
    current_vcpu = cpu;
    pthread_mutex_lock(&cpu->kick_lock);
    cpu->self = pthread_self();
    cpu->kickable = true;
    pthread_mutex_unlock(&cpu->kick_lock);
}

void vm_count_parked(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->parked++;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

static void console_wait_begin(void *opaque)
{
    if (current_vcpu)
        vm_count_parked(opaque);
}

static void console_wait_end(void *opaque)
{
    struct vm *vm = opaque;
    struct vcpu *cpu = current_vcpu;
    if (!cpu)
        return;
    pthread_mutex_lock(&vm->pause_lock);
    /* Counted as parked: it must not run on while the machine is paused. */
    while (vm->pause_requested && !cpu->step_release && !atomic_load(&vm->stopping))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    if (!cpu->step_release)
        vm->parked--; /* (vm_release_one already counted it as running) */
    pthread_mutex_unlock(&vm->pause_lock);
}

void vm_attach_console(struct vm *vm, struct console *console)
{
    console->wait_begin = console_wait_begin;
    console->wait_end = console_wait_end;
    console->wait_opaque = vm;
    atomic_store(&console->stopping, false);
}

void vcpu_service_requests(struct vcpu *cpu)
{
    service_start(cpu);
    park_while_paused(cpu);
}

bool vm_pause(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = true;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
    while (vm->parked < vm->vcpu_count && !atomic_load(&vm->stopping))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    bool paused = !atomic_load(&vm->stopping);
    pthread_mutex_unlock(&vm->pause_lock);
    return paused;
}

void vm_resume(struct vm *vm)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->pause_requested = false;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}
