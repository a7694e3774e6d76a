/* control.c - who may stop the machine, and who programs a vCPU's debug state.
 *
 * Holds: the serial console's Ctrl-A p, the monitor and gdb each hold the machine with their own
 * bit; every vCPU parks outside KVM_RUN while any bit is set, and each holder clears only its own.
 * A vCPU parks at its next exit (vm_hold kicks them all), between any two of its instructions.
 *
 * The debug arbiter: gdb (breakpoints, watchpoints, steps) and the monitor (steps) each state
 * what they want of a vCPU's KVM_SET_GUEST_DEBUG; the vCPU gets the union, so one never clears
 * the other's setup. */
#include "vm.h"

#include "cpu_state.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static bool must_park(struct vm *vm, struct vcpu *cpu)
{
    return vm->holds && !cpu->step_release && !atomic_load(&vm->stopping);
}

/* A hold that wants whole state (HOLD_SETTLED) lets a CPU whose last exit is not yet complete
 * run one KVM_RUN with immediate_exit first. pause_lock held. */
static bool settle_first(struct vm *vm, struct vcpu *cpu)
{
    return (vm->holds & HOLD_SETTLED) && cpu->exit_pending && !atomic_load(&vm->stopping);
}

/* Work vm_run_parked gave the parked CPU, run on its thread: true if there was some. pause_lock
 * held (let go while the work runs). */
static bool run_parked_work(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    void (*work)(struct vcpu *, void *) = cpu->parked_work;
    if (!work)
        return false;
    pthread_mutex_unlock(&vm->pause_lock);
    work(cpu, cpu->parked_arg);
    pthread_mutex_lock(&vm->pause_lock);
    cpu->parked_work = NULL;
    pthread_cond_broadcast(&vm->pause_cond);
    return true;
}

static void park_while_held(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    if (cpu->step_completing)
        return; /* one more KVM_RUN, with immediate_exit: it only completes the stepped instruction */
    pthread_mutex_lock(&vm->pause_lock);
    if (settle_first(vm, cpu)) {
        __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&vm->pause_lock);
        return;
    }
    if (vm->holds && !cpu->step_release) {
        cpu_state_flush(cpu);
        vm->parked++;
        pthread_cond_broadcast(&vm->pause_cond);
        while (must_park(vm, cpu) && !settle_first(vm, cpu)) {
            /* A CPU that asked to start this one waits for the answer, and a hold waits for
             * that CPU: serve the request while parked (the CPU runs once the hold ends). Read
             * without cpu->lock: a requester holds cpu->lock while it takes the pause lock. */
            if (atomic_load(&cpu->start_posted)) {
                pthread_mutex_unlock(&vm->pause_lock);
                smp_serve_start(cpu);
                pthread_mutex_lock(&vm->pause_lock);
                continue;
            }
            if (!run_parked_work(cpu))
                pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
        }
        if (!cpu->step_release)
            vm->parked--; /* (vm_release_one already counted it as running) */
        /* The kick that parked it is served: the next KVM_RUN must really run (a single step),
         * or only complete its exit (a snapshot came while it was parked). */
        __atomic_store_n(&cpu->run->immediate_exit, settle_first(vm, cpu) ? 1 : 0, __ATOMIC_SEQ_CST);
    }
    cpu->step_release = false; /* one run, then it parks again */
    pthread_mutex_unlock(&vm->pause_lock);
}

void vcpu_service_requests(struct vcpu *cpu)
{
    smp_serve_start(cpu);
    park_while_held(cpu);
}

void vm_request_hold(struct vm *vm, enum vm_holder who)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->holds |= who;
    pthread_mutex_unlock(&vm->pause_lock);
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
}

/* Whether a CPU still has an exit to complete before `who` has the state it wants. */
static bool unsettled(struct vm *vm, enum vm_holder who)
{
    if (!(who & HOLD_SETTLED))
        return false;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        if (vm->vcpus[i].exit_pending)
            return true;
    return false;
}

bool vm_hold(struct vm *vm, enum vm_holder who)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->holds |= who;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vcpu_kick(&vm->vcpus[i]);
    pthread_cond_broadcast(&vm->pause_cond); /* parked CPUs see a hold that wants them settled */
    while ((vm->parked < vm->vcpu_count || unsettled(vm, who)) && !atomic_load(&vm->stopping))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    bool held = !atomic_load(&vm->stopping);
    pthread_mutex_unlock(&vm->pause_lock);
    return held;
}

void vm_release(struct vm *vm, enum vm_holder who)
{
    pthread_mutex_lock(&vm->pause_lock);
    vm->holds &= ~(unsigned)who;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_held_by(struct vm *vm, enum vm_holder who)
{
    pthread_mutex_lock(&vm->pause_lock);
    bool held = vm->holds & who;
    pthread_mutex_unlock(&vm->pause_lock);
    return held;
}

void vm_release_one(struct vm *vm, struct vcpu *cpu)
{
    pthread_mutex_lock(&vm->pause_lock);
    if (!cpu->step_release && vm->parked > 0)
        vm->parked--; /* running from now on, so a vm_hold waits for it to park again */
    cpu->step_release = true;
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_run_parked(struct vm *vm, struct vcpu *cpu, void (*work)(struct vcpu *, void *), void *arg, int wait_ms)
{
    pthread_mutex_lock(&vm->pause_lock);
    if (work && !cpu->parked_work) {
        cpu->parked_work = work;
        cpu->parked_arg = arg;
        pthread_cond_broadcast(&vm->pause_cond);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)wait_ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (cpu->parked_work && !atomic_load(&vm->stopping))
        if (pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &until) != 0)
            break;
    bool done = !cpu->parked_work;
    pthread_mutex_unlock(&vm->pause_lock);
    return done;
}

/* ---- vCPU threads and the console ---------------------------------------------------------- */

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

void vcpu_stay_after_crash(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    pthread_mutex_lock(&vm->pause_lock);
    cpu->exit_pending = false; /* (the crash's exit is not completed: the CPU never runs on) */
    vm->parked++;
    pthread_cond_broadcast(&vm->pause_cond);
    while (!atomic_load(&vm->stopping))
        if (!run_parked_work(cpu))
            pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    pthread_mutex_unlock(&vm->pause_lock);
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
    /* Counted as parked: it must not run on while the machine is held. */
    while (must_park(vm, cpu))
        pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
    if (!cpu->step_release)
        vm->parked--; /* (vm_release_one already counted it as running) */
    pthread_mutex_unlock(&vm->pause_lock);
}

/* Ctrl-A commands typed on the console: handled here, by machine control, not by the serial
 * device that happens to read the keys. Runs on the event thread. */
static void console_command(void *opaque, enum console_command cmd)
{
    struct vm *vm = opaque;
    if (cmd == CONSOLE_QUIT) {
        vm_request_stop(vm, 128 + 2); /* Ctrl-A x: as if interrupted */
    } else if (cmd == CONSOLE_PAUSE_TOGGLE) {
        if (vm_held_by(vm, HOLD_CONSOLE)) {
            vm_release(vm, HOLD_CONSOLE);
            log_info(vm->holds ? "resumed here; the machine stays stopped by a debugger"
                               : "resumed");
        } else if (vm_hold(vm, HOLD_CONSOLE)) {
            log_info("paused: every CPU is stopped (Ctrl-A p resumes)");
        }
    }
}

void vm_attach_console(struct vm *vm, struct console *console)
{
    console->wait_begin = console_wait_begin;
    console->wait_end = console_wait_end;
    console->wait_opaque = vm;
    console->command = console_command;
    console->command_opaque = vm;
    atomic_store(&console->stopping, false);
}

/* ---- the guest-debug arbiter --------------------------------------------------------------- */

int vcpu_set_debug(struct vcpu *cpu, enum debug_owner owner, const struct kvm_guest_debug *wish)
{
    pthread_mutex_lock(&cpu->debug_lock);
    cpu->debug_wish[owner] = wish ? *wish : (struct kvm_guest_debug){0};
    struct kvm_guest_debug all = {0};
    /* Time travel runs the CPU alone, one instruction at a time: it compares gdb's breakpoints
     * itself, and another owner's debug registers (gdb's, set while recording) would cut its
     * steps short. */
    bool alone = cpu->debug_wish[DEBUG_TIMETRAVEL].control & KVM_GUESTDBG_ENABLE;
    for (int i = alone ? DEBUG_TIMETRAVEL : 0; i < DEBUG_OWNERS; i++) {
        const struct kvm_guest_debug *w = &cpu->debug_wish[i];
        if (!(w->control & KVM_GUESTDBG_ENABLE))
            continue;
        if ((w->control & KVM_GUESTDBG_USE_HW_BP) && !(all.control & KVM_GUESTDBG_USE_HW_BP))
            all.arch = w->arch; /* the first owner's debug registers: gdb's before the tracer's */
        all.control |= w->control;
    }
    if (!(all.control & KVM_GUESTDBG_SINGLESTEP))
        all.control &= ~(uint32_t)KVM_GUESTDBG_BLOCKIRQ;
    int rc = ioctl(cpu->fd, KVM_SET_GUEST_DEBUG, &all);
    if (rc < 0 && errno == EINVAL && (all.control & KVM_GUESTDBG_BLOCKIRQ)) {
        all.control &= ~(uint32_t)KVM_GUESTDBG_BLOCKIRQ; /* KVM before 5.15: step without it */
        rc = ioctl(cpu->fd, KVM_SET_GUEST_DEBUG, &all);
    }
    rc = rc < 0 ? -errno : 0;
    pthread_mutex_unlock(&cpu->debug_lock);
    return rc;
}

bool vcpu_single_stepping(struct vcpu *cpu)
{
    bool stepping = false;
    pthread_mutex_lock(&cpu->debug_lock);
    for (unsigned i = 0; i < DEBUG_OWNERS; i++)
        stepping |= (cpu->debug_wish[i].control & KVM_GUESTDBG_SINGLESTEP) != 0;
    pthread_mutex_unlock(&cpu->debug_lock);
    return stepping;
}

bool vcpu_debug_wanted(struct vcpu *cpu, enum debug_owner owner, uint32_t control)
{
    pthread_mutex_lock(&cpu->debug_lock);
    bool wanted = (cpu->debug_wish[owner].control & control) == control;
    pthread_mutex_unlock(&cpu->debug_lock);
    return wanted;
}
