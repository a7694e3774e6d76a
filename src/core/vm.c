/* vm.c - builds the machine (KVM VM, memory slots, images, CPUs, devices, info block), runs it
 * and takes it apart. */
#include "vm.h"

#include "cpu_state.h"
#include "cpuid.h"
#include "entry.h"
#include "info.h"
#include "preflight.h"
#include "record.h"
#include "snapshot.h"
#include "pc_legacy.h"
#include "x86.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* KVM needs three pages for the real-mode TSS and one for the EPT identity map on VMX hosts
 * without unrestricted guest support; they sit at the top of the hole, below nothing. */
#define KVM_IDENTITY_MAP_ADDR 0xFFFBC000ULL
#define KVM_TSS_ADDR 0xFFFBD000ULL
#define ROUTES_CAPACITY 1024
#define FIRST_GSI 32

static int kvm_check(int fd, unsigned long cap, const char *name)
{
    int rc = ioctl(fd, KVM_CHECK_EXTENSION, cap);
    if (rc <= 0) {
        log_error("KVM lacks %s, which slate needs (slate needs Linux " SLATE_MIN_LINUX " or later)", name);
        return -1;
    }
    return rc;
}

static int vm_open_kvm(struct vm *vm)
{
    vm->kvm_fd = preflight_open_kvm();
    if (vm->kvm_fd < 0)
        return -1;
    int version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION) {
        log_error("KVM_GET_API_VERSION: got %d, expected %d", version, KVM_API_VERSION);
        return -1;
    }
    cpuid_fetch_start(vm);
    int rc;
    do
        vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    while (vm->vm_fd < 0 && errno == EINTR);
    if (vm->vm_fd < 0) {
        log_error("KVM_CREATE_VM: %s", strerror(errno));
        return -1;
    }
    if (kvm_check(vm->vm_fd, KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY") < 0 ||
        kvm_check(vm->vm_fd, KVM_CAP_SPLIT_IRQCHIP, "KVM_CAP_SPLIT_IRQCHIP") < 0 ||
        kvm_check(vm->vm_fd, KVM_CAP_IRQFD, "KVM_CAP_IRQFD") < 0 ||
        kvm_check(vm->vm_fd, KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING") < 0 ||
        kvm_check(vm->vm_fd, KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT") < 0 ||
        kvm_check(vm->vm_fd, KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM") < 0 ||
        (rc = kvm_check(vm->vm_fd, KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS")) < 0)
        return -1;
    vm->sync_regs = (uint64_t)rc;
    if (!(rc & KVM_SYNC_X86_REGS)) {
        log_error("KVM_CAP_SYNC_REGS does not cover the general registers");
        return -1;
    }
    return 0;
}

static int vm_setup_irqchip(struct vm *vm)
{
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){KVM_IDENTITY_MAP_ADDR}) < 0) {
        log_error("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
        return -1;
    }
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
        log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
        return -1;
    }
    /* Split irqchip: LAPICs in the kernel, no IOAPIC and no PIC (0 IOAPIC routes reserved). */
    struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP, .args = {0}};
    if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
        log_error("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): %s", strerror(errno));
        return -1;
    }
    /* 32-bit APIC IDs in MSI routes (the high bits in address_hi), so a device interrupt can
     * reach CPUs above 255 once the guest uses x2APIC. Older kernels lack it: then only 255. */
    struct kvm_enable_cap x2apic = {.cap = KVM_CAP_X2APIC_API,
                                    .args = {KVM_X2APIC_API_USE_32BIT_IDS |
                                             KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK}};
    vm->x2apic_ids = ioctl(vm->vm_fd, KVM_ENABLE_CAP, &x2apic) == 0;
    vm->routes = calloc(1, sizeof(*vm->routes) + ROUTES_CAPACITY * sizeof(vm->routes->entries[0]));
    if (!vm->routes) {
        log_error("out of memory");
        return -1;
    }
    vm->next_gsi = FIRST_GSI;
    return 0;
}

/* flags: KVM_MEM_READONLY, KVM_MEM_LOG_DIRTY_PAGES. */
int vm_add_slot(struct vm *vm, uint64_t gpa, uint64_t size, void *host, uint32_t flags,
                       const char *what)
{
    struct kvm_userspace_memory_region region = {
        .slot = vm->slot_count,
        .flags = flags,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uintptr_t)host,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        log_error("KVM_SET_USER_MEMORY_REGION (%s at %#llx, %llu bytes): %s", what,
                  (unsigned long long)gpa, (unsigned long long)size, strerror(errno));
        return -1;
    }
    vm->slot_count++;
    return 0;
}

void *vm_map_anonymous(uint64_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int vm_setup_memory(struct vm *vm)
{
    memory_layout(&vm->mem, vm->cfg->ram_size);
    int rc = memory_map(&vm->mem);
    if (rc < 0) {
        log_error("cannot reserve %llu MiB of guest RAM: %s",
                  (unsigned long long)(vm->cfg->ram_size >> 20), strerror(-rc));
        return -1;
    }
    /* --each puts back what a case wrote: KVM logs the guest's writes, slate its own. */
    uint32_t log = vm->cfg->each ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        if (vm_add_slot(vm, vm->mem.ram[i].gpa, vm->mem.ram[i].size, vm->mem.ram[i].host, log,
                        "RAM"))
            return -1;
    vm->info = vm_map_anonymous(SLATE_INFO_MAX_SIZE);
    vm->boot_tables = vm_map_anonymous(SLATE_BOOT_TABLES_SIZE);
    if (!vm->info || !vm->boot_tables) {
        log_error("cannot map the info block and boot tables: %s", strerror(errno));
        return -1;
    }
    if (vm_add_slot(vm, SLATE_INFO_ADDR, SLATE_INFO_MAX_SIZE, vm->info, KVM_MEM_READONLY, "info block") ||
        vm_add_slot(vm, SLATE_BOOT_TABLES, SLATE_BOOT_TABLES_SIZE, vm->boot_tables, log,
                    "boot tables"))
        return -1;
    memory_add_extra(&vm->mem, SLATE_INFO_ADDR, SLATE_INFO_MAX_SIZE, vm->info);
    memory_add_extra(&vm->mem, SLATE_BOOT_TABLES, SLATE_BOOT_TABLES_SIZE, vm->boot_tables);
    return 0;
}

static int vcpu_create(struct vm *vm, struct vcpu *cpu, unsigned index)
{
    cpu->vm = vm;
    cpu->index = index;
    pthread_mutex_init(&cpu->lock, NULL);
    pthread_mutex_init(&cpu->kick_lock, NULL);
    pthread_mutex_init(&cpu->debug_lock, NULL);
    pthread_mutex_init(&cpu->state_lock, NULL);
    pthread_cond_init(&cpu->cond, NULL);
    atomic_store(&cpu->started, index == 0); /* the boot CPU runs from the start */
    cpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (cpu->fd < 0) {
        log_error("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
        return -1;
    }
    cpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
    if (cpu->run == MAP_FAILED) {
        cpu->run = NULL;
        log_error("mmap of vCPU %u's kvm_run: %s", index, strerror(errno));
        return -1;
    }
    if (vm->cfg->stats && !(cpu->stats = calloc(1, sizeof(*cpu->stats)))) {
        log_error("out of memory");
        return -1;
    }
    /* KVM copies the general registers into kvm_run on every exit, so a hypercall costs no
     * KVM_GET_REGS/KVM_SET_REGS round trip. */
    cpu->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    return 0;
}

int64_t vm_clock_ns(const struct vm *vm) { return clock_now_ns() - vm->boot_mono_ns; }

int64_t vm_host_time(const struct vm *vm, int64_t guest_ns) { return vm->boot_mono_ns + guest_ns; }

/* Reads the boot CPU's TSC between two host clock reads, so the guest's TSC-derived clock and the
 * timer device's registers share one zero. KVM keeps the vCPUs' TSCs in step. */
static int vm_set_clock_base(struct vm *vm)
{
    uint64_t tsc;
    int64_t before = clock_now_ns();
    int rc = cpu_state_tsc(&vm->vcpus[0], &tsc);
    int64_t after = clock_now_ns();
    if (rc) {
        log_error("KVM_GET_MSRS(IA32_TSC): %s", strerror(-rc));
        return -1;
    }
    vm->boot_mono_ns = before + (after - before) / 2;
    vm->boot_tsc = tsc;
    vm->boot_unix_ns = clock_read_ns(CLOCK_REALTIME) - (clock_now_ns() - vm->boot_mono_ns);
    return 0;
}

static int vm_setup_vcpus(struct vm *vm)
{
    int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max > 0 && vm->cfg->smp > (unsigned)max) {
        log_error("--smp %u: this KVM allows at most %d CPUs", vm->cfg->smp, max);
        return -1;
    }
    int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < (int)sizeof(struct kvm_run)) {
        log_error("KVM_GET_VCPU_MMAP_SIZE: %s", size < 0 ? strerror(errno) : "too small");
        return -1;
    }
    vm->run_size = (size_t)size;
    vm->vcpus = calloc(vm->cfg->smp, sizeof(*vm->vcpus));
    if (!vm->vcpus)
        return -1;
    const char *roundtrip = getenv("SLATE_TEST_CPU_ROUNDTRIP");
    vm->test_roundtrip = roundtrip != NULL;
    vm->test_roundtrip_skip = roundtrip ? cpu_state_part(roundtrip) : 0;
    for (unsigned i = 0; i < vm->cfg->smp; i++, vm->vcpu_count++)
        if (vcpu_create(vm, &vm->vcpus[i], i))
            return -1;
    int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) {
        log_error("KVM_GET_TSC_KHZ: %s", khz < 0 ? strerror(errno) : "zero");
        return -1;
    }
    vm->tsc_khz = (uint64_t)khz;
    vm->tsc_deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    if (vm_set_clock_base(vm))
        return -1;
    if (!cpuid_fetch_finish(vm))
        return -1;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        if (cpuid_set(vm, &vm->vcpus[i]))
            return -1;
    return vm->restore_from ? 0 : entry_set_state(vm); /* (restored: the file's state, later) */
}

static int vm_load_images(struct vm *vm)
{
    if (vm->restore_from)
        return snapshot_load_plan(vm, vm->restore_from);
    char err[512];
    if (loader_load_all(&vm->mem, vm->cfg, &vm->plan, err, sizeof(err))) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

static void vm_on_signal(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    (void)events;
    struct signalfd_siginfo si;
    if (read(vm->signal_source.fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGQUIT) { /* a report, as a JVM prints its threads; the machine runs on */
        vm_report(vm, stderr, "SIGQUIT");
        return;
    }
    if (!vm->end_reason[0])
        snprintf(vm->end_reason, sizeof(vm->end_reason), "stopped by signal %u (%s)", si.ssi_signo,
                 strsignal((int)si.ssi_signo));
    vm_request_stop(vm, 128 + (int)si.ssi_signo);
}

static void vm_on_timeout(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    (void)events;
    uint64_t expirations;
    if (read(vm->timeout_source.fd, &expirations, sizeof(expirations)) <= 0)
        return;
    /* The status is decided now: a reset or exit the guest asks for while the report runs
     * must not win over the timeout (a resetting guest would otherwise never end). */
    int none = -1;
    atomic_compare_exchange_strong(&vm->status, &none, EXIT_TIMEOUT);
    vm_report(vm, stderr, "--timeout expired: the guest did not finish");
    if (!vm->end_reason[0])
        snprintf(vm->end_reason, sizeof(vm->end_reason), "--timeout expired");
    vm_request_stop(vm, EXIT_TIMEOUT);
}

static int vm_setup_events(struct vm *vm)
{
    int rc = event_loop_init(&vm->loop);
    if (rc) {
        log_error("cannot create the event loop: %s", strerror(-rc));
        return -1;
    }
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    sigaddset(&stop_signals, SIGQUIT);
    vm->signal_source = (struct event_source){
        .fd = signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK), .fn = vm_on_signal,
        .opaque = vm};
    if (vm->signal_source.fd < 0 || event_add(&vm->loop, &vm->signal_source, EPOLLIN)) {
        log_error("signalfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Arms the --timeout timer for an absolute deadline, so resets do not extend it. */
static int vm_arm_timeout(struct vm *vm, int64_t deadline_ns)
{
    if (deadline_ns <= 0)
        return 0;
    vm->timeout_source = (struct event_source){
        .fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), .fn = vm_on_timeout,
        .opaque = vm};
    struct itimerspec when = {.it_value = {.tv_sec = deadline_ns / 1000000000,
                                           .tv_nsec = deadline_ns % 1000000000}};
    if (vm->timeout_source.fd < 0 ||
        timerfd_settime(vm->timeout_source.fd, TFD_TIMER_ABSTIME, &when, NULL) < 0 ||
        event_add(&vm->loop, &vm->timeout_source, EPOLLIN)) {
        log_error("timerfd for --timeout: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int vm_create(const struct slate_config *cfg, struct console *console, struct vm **out)
{
    return vm_create_restored(cfg, console, NULL, out);
}

int vm_create_restored(const struct slate_config *cfg, struct console *console, const struct snapshot *from,
                       struct vm **out)
{
    struct vm *vm = calloc(1, sizeof(*vm));
    if (!vm) {
        log_error("out of memory");
        return -1;
    }
    vm->cfg = cfg;
    vm->restore_from = from;
    vm->snapshot_wake.fd = -1;
    vm->console = console;
    vm_attach_console(vm, console);
    vm->trace = cfg->trace;
    vm->kvm_fd = vm->vm_fd = -1;
    vm->loop.epoll_fd = vm->loop.stop_fd = -1;
    vm->signal_source.fd = vm->timeout_source.fd = -1;
    atomic_store(&vm->status, -1);
    vm->crash_cpu = -1;
    vm->unclaimed_limit = (struct ratelimit)RATELIMIT_INIT;
    vm->guest_limit = (struct ratelimit)RATELIMIT_INIT;
    atomic_store(&vm->user_hypercalls, SLATE_HC_USER_DEFAULT);
    pthread_mutex_init(&vm->irq_lock, NULL);
    pthread_mutex_init(&vm->pause_lock, NULL);
    pthread_mutex_init(&vm->inputs.lock, NULL);
    pthread_cond_init(&vm->pause_cond, NULL);
    if (!flight_init(&vm->flight, cfg->flight_events)) {
        log_error("out of memory");
        vm_destroy(vm);
        return -1;
    }
    if (vm_open_kvm(vm) || vm_setup_irqchip(vm) || vm_setup_memory(vm) || vm_load_images(vm) ||
        vm_setup_vcpus(vm) || vm_setup_events(vm) || vm_register_core_ranges(vm) ||
        vm_setup_devices(vm) || (vm->plan.protocol != BOOT_NATIVE && (com1_register(vm) || cmos_register(vm))) ||
        record_attach(vm) || vm_write_info(vm) || snapshot_attach(vm) || (from && snapshot_restore(vm, from))) {
        vm_destroy(vm);
        return -1;
    }
    *out = vm;
    return 0;
}

void vm_request_stop(struct vm *vm, int status)
{
    if (vm->each && each_case_stop(vm, status))
        return; /* --each: the case ends, the machine goes on to the next */
    int none = -1;
    atomic_compare_exchange_strong(&vm->status, &none, status);
    atomic_store(&vm->stopping, true);
    if (vm->console)
        atomic_store(&vm->console->stopping, true); /* a write waiting for a reader gives up */
    event_loop_stop(&vm->loop);
    for (unsigned i = 0; i < vm->observer_count; i++)
        if (vm->observers[i].stop)
            vm->observers[i].stop(vm->observers[i].opaque);
    /* Wake whoever waits on a condition that now never comes: pausers, start-CPU callers. */
    pthread_mutex_lock(&vm->pause_lock);
    pthread_cond_broadcast(&vm->pause_cond);
    pthread_mutex_unlock(&vm->pause_lock);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *cpu = &vm->vcpus[i];
        vcpu_kick(cpu);
        pthread_mutex_lock(&cpu->lock);
        pthread_cond_broadcast(&cpu->cond);
        pthread_mutex_unlock(&cpu->lock);
    }
}

static void kick_handler(int sig)
{
    (void)sig; /* its only job is to make KVM_RUN return EINTR */
}

int vm_run(struct vm *vm, int64_t deadline_ns)
{
    if (vm_arm_timeout(vm, deadline_ns))
        return EXIT_FAILURE_SLATE;
    struct sigaction kick = {.sa_handler = kick_handler};
    sigaction(SIGUSR1, &kick, NULL);
    for (; vm->observers_started < vm->observer_count; vm->observers_started++) {
        const struct vm_observer *o = &vm->observers[vm->observers_started];
        if (o->start && o->start(o->opaque, vm))
            return EXIT_FAILURE_SLATE; /* only those that started see the end */
    }
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *cpu = &vm->vcpus[i];
        int rc = pthread_create(&cpu->thread, NULL, vcpu_thread, cpu);
        if (rc) {
            log_error("cannot start the thread of vCPU %u: %s", i, strerror(rc));
            vm_request_stop(vm, EXIT_FAILURE_SLATE);
            break;
        }
        atomic_store(&cpu->thread_started, true);
    }
    int rc = event_loop_run(&vm->loop);
    if (rc)
        log_error("event loop: %s", strerror(-rc));
    vm_request_stop(vm, EXIT_FAILURE_SLATE); /* no-op if a status was already decided */
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *cpu = &vm->vcpus[i];
        if (!atomic_load(&cpu->thread_started))
            continue;
        /* The stop kicked it already; the monitor or gdb may still kick it, never after this. */
        pthread_mutex_lock(&cpu->kick_lock);
        cpu->kickable = false;
        pthread_mutex_unlock(&cpu->kick_lock);
        pthread_join(cpu->thread, NULL);
    }
    int status = atomic_load(&vm->status);
    /* --on-crash pause: however the user ends a crashed machine, it crashed. */
    if (vm->crash_cpu >= 0 && status != VM_STATUS_RESET)
        status = EXIT_CRASH;
    int verdict = record_detach(vm, status); /* the log ends with how the machine did */
    if (verdict)
        status = verdict;
    for (unsigned i = vm->observers_started; i-- > 0;)
        if (vm->observers[i].end)
            vm->observers[i].end(vm->observers[i].opaque, status);
    if (vm->cfg->stats)
        stats_print(vm);
    return status;
}

int vm_add_observer(struct vm *vm, const struct vm_observer *observer)
{
    if (vm->observer_count == VM_MAX_OBSERVERS)
        return -1;
    vm->observers[vm->observer_count++] = *observer;
    return 0;
}

int vm_add_debug_hook(struct vm *vm, debug_hook_fn fn, void *opaque)
{
    if (vm->debug_hook_count == VM_MAX_DEBUG_HOOKS)
        return -1;
    vm->debug_hooks[vm->debug_hook_count].fn = fn;
    vm->debug_hooks[vm->debug_hook_count++].opaque = opaque;
    return 0;
}

int vm_add_vcpu_hook(struct vm *vm, vcpu_hook_fn fn, void *opaque)
{
    if (vm->vcpu_hook_count == VM_MAX_VCPU_HOOKS)
        return -1;
    vm->vcpu_hooks[vm->vcpu_hook_count].fn = fn;
    vm->vcpu_hooks[vm->vcpu_hook_count++].opaque = opaque;
    return 0;
}

void vm_vcpu_hooks(struct vcpu *cpu, enum vcpu_hook_point at)
{
    struct vm *vm = cpu->vm;
    for (unsigned i = 0; i < vm->vcpu_hook_count; i++)
        vm->vcpu_hooks[i].fn(vm->vcpu_hooks[i].opaque, cpu, at);
}

void vm_notify_crash(struct vm *vm, struct vcpu *cpu, const char *what)
{
    for (unsigned i = 0; i < vm->observer_count; i++)
        if (vm->observers[i].crash)
            vm->observers[i].crash(vm->observers[i].opaque, cpu, what);
}

void vm_report(struct vm *vm, FILE *out, const char *why)
{
    for (unsigned i = 0; i < vm->observer_count; i++)
        if (vm->observers[i].report)
            vm->observers[i].report(vm->observers[i].opaque, out, why);
}

int vm_screenshot_at(struct vm *vm, int dirfd, const char *name, bool replace)
{
    if (!vm->screenshot)
        return -ENODEV;
    return vm->screenshot(vm->screen, dirfd, name, replace);
}

void vm_destroy(struct vm *vm)
{
    cpuid_fetch_finish(vm); /* (a setup that failed early) */
    snapshot_detach(vm);
    record_detach(vm, -1);
    vm_teardown_devices(vm);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        if (vm->vcpus[i].run)
            munmap(vm->vcpus[i].run, vm->run_size);
        close(vm->vcpus[i].fd);
        pthread_mutex_destroy(&vm->vcpus[i].lock);
        pthread_mutex_destroy(&vm->vcpus[i].kick_lock);
        pthread_mutex_destroy(&vm->vcpus[i].debug_lock);
        pthread_mutex_destroy(&vm->vcpus[i].state_lock);
        free(vm->vcpus[i].cached);
        free(vm->vcpus[i].stats);
        pthread_cond_destroy(&vm->vcpus[i].cond);
    }
    if (vm->signal_source.fd >= 0)
        close(vm->signal_source.fd);
    if (vm->timeout_source.fd >= 0)
        close(vm->timeout_source.fd);
    for (unsigned i = vm->observer_count; i-- > 0;)
        if (vm->observers[i].destroy)
            vm->observers[i].destroy(vm->observers[i].opaque);
    event_loop_close(&vm->loop);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    memory_unmap(&vm->mem);
    if (vm->info)
        munmap(vm->info, SLATE_INFO_MAX_SIZE);
    if (vm->boot_tables)
        munmap(vm->boot_tables, SLATE_BOOT_TABLES_SIZE);
    free(vm->cpuid);
    free(vm->routes);
    free(vm->vcpus);
    pthread_mutex_destroy(&vm->irq_lock);
    pthread_mutex_destroy(&vm->pause_lock);
    pthread_mutex_destroy(&vm->inputs.lock);
    pthread_cond_destroy(&vm->pause_cond);
    flight_free(&vm->flight);
    free(vm);
}
