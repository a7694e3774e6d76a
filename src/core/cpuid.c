/* cpuid.c - what CPUID tells the guest: the host's supported set as KVM reports it, with slate's
 * hypervisor leaves and each CPU's APIC ID. Recording or replaying, the TSC is not offered: KVM
 * cannot trap RDTSC, so a replay could not give the guest the values it read (a guest that uses
 * it anyway is caught by the replay's divergence check). */
#include "cpuid.h"

#include "vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
        if (!cpuid)
            return NULL;
        cpuid->nent = n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
            return cpuid;
        free(cpuid);
        if (errno != E2BIG) {
            log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
            return NULL;
        }
    }
    log_error("KVM_GET_SUPPORTED_CPUID: too many entries");
    return NULL;
}

static void *fetch_cpuid(void *arg)
{
    struct vm *vm = arg;
    vm->cpuid = supported_cpuid(vm->kvm_fd);
    return NULL;
}

/* Starts KVM_GET_SUPPORTED_CPUID on a thread of its own (or does it now if no thread starts). */
void cpuid_fetch_start(struct vm *vm)
{
    vm->cpuid_fetching = pthread_create(&vm->cpuid_thread, NULL, fetch_cpuid, vm) == 0;
    if (!vm->cpuid_fetching)
        fetch_cpuid(vm);
}

struct kvm_cpuid2 *cpuid_fetch_finish(struct vm *vm)
{
    if (vm->cpuid_fetching)
        pthread_join(vm->cpuid_thread, NULL);
    vm->cpuid_fetching = false;
    return vm->cpuid;
}

/* The host's supported set, with slate's hypervisor leaves and this CPU's APIC ID; without the
 * TSC (`hide_tsc`: record and replay). */
static void cpuid_for_vcpu(struct kvm_cpuid2 *cpuid, unsigned index, uint64_t tsc_khz,
                           bool tsc_deadline, bool hide_tsc)
{
    unsigned out = 0;
    for (unsigned i = 0; i < cpuid->nent; i++) {
        struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        if (e->function >= 0x40000000 && e->function < 0x50000000)
            continue; /* KVM's own leaves: replaced below */
        if (e->function == 1) {
            e->ebx = (e->ebx & 0x00FFFFFF) | (index << 24);
            e->ecx |= 1u << 31; /* running under a hypervisor */
            if (tsc_deadline) /* KVM emulates it even where the host CPU lacks it (as QEMU sets) */
                e->ecx |= 1u << 24;
            if (hide_tsc)
                e->edx &= ~(1u << 4), e->ecx &= ~(1u << 24); /* TSC, TSC-deadline */
        }
        if (hide_tsc && e->function == 0x80000001)
            e->edx &= ~(1u << 27); /* RDTSCP */
        if (hide_tsc && e->function == 0x80000007)
            e->edx &= ~(1u << 8); /* invariant TSC */
        if (e->function == 0xB || e->function == 0x1F)
            e->edx = index; /* x2APIC ID */
        cpuid->entries[out++] = *e;
    }
    /* 0x40000000: "SlateMachine"; 0x40000010: TSC and LAPIC timer frequency in kHz, the leaf
     * VMware and Linux use for that. The LAPIC timer in KVM counts at 1 GHz. */
    cpuid->entries[out++] = (struct kvm_cpuid_entry2){
        .function = 0x40000000, .eax = 0x40000010,
        .ebx = 0x74616c53 /* "Slat" */, .ecx = 0x63614d65 /* "eMac" */,
        .edx = 0x656e6968 /* "hine" */};
    cpuid->entries[out++] = (struct kvm_cpuid_entry2){
        .function = 0x40000010, .eax = hide_tsc ? 0 : (uint32_t)tsc_khz, .ebx = 1000000};
    cpuid->nent = out;
}

int cpuid_set(struct vm *vm, struct vcpu *cpu)
{
    struct kvm_cpuid2 *base = vm->cpuid;
    size_t size = sizeof(*base) + (base->nent + 2) * sizeof(base->entries[0]);
    struct kvm_cpuid2 *cpuid = malloc(size);
    if (!cpuid) {
        log_error("out of memory");
        return -1;
    }
    memcpy(cpuid, base, sizeof(*base) + base->nent * sizeof(base->entries[0]));
    cpuid_for_vcpu(cpuid, cpu->index, vm->tsc_khz, vm->tsc_deadline,
                   vm->cfg->record_path || vm->cfg->replay_path);
    int rc = ioctl(cpu->fd, KVM_SET_CPUID2, cpuid);
    free(cpuid);
    if (rc < 0) {
        log_error("KVM_SET_CPUID2: %s", strerror(errno));
        return -1;
    }
    return 0;
}

