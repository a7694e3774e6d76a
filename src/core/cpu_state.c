/* cpu_state.c - see cpu_state.h. */
#include "cpu_state.h"

#include "log.h"
#include "vcpu.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define MSR_TSC 0x10
#define MSR_TSC_DEADLINE 0x6E0
#define MSR_APIC_BASE 0x1B
#define MSR_MISC_ENABLE 0x1A0
#define MSR_EFER 0xC0000080
#define MSR_PAT 0x277

const uint32_t cpu_state_msrs[CPU_STATE_MSRS] = {
    MSR_TSC,     MSR_EFER,    0xC0000081 /* STAR */,         0xC0000082 /* LSTAR */,
    0xC0000083 /* CSTAR */,   0xC0000084 /* SFMASK */,       0xC0000102 /* KERNEL_GS_BASE */,
    0xC0000100 /* FS_BASE */, 0xC0000101 /* GS_BASE */,      0x174 /* SYSENTER_CS */,
    0x175 /* SYSENTER_ESP */, 0x176 /* SYSENTER_EIP */,      MSR_PAT,
    MSR_APIC_BASE, MSR_MISC_ENABLE, MSR_TSC_DEADLINE, /* after APIC_BASE: the LAPIC takes it */
};

/* struct kvm_msrs with room for every entry (spelt out: a struct with a flexible array member
 * cannot head another). */
struct msr_buf {
    uint32_t nmsrs, pad;
    struct kvm_msr_entry entries[CPU_STATE_MSRS];
};
_Static_assert(offsetof(struct msr_buf, entries) == offsetof(struct kvm_msrs, entries),
              "msr_buf is laid out as struct kvm_msrs");
_Static_assert(sizeof(struct cpu_xsave) == sizeof(((struct kvm_xsave *)0)->region),
              "cpu_xsave is KVM_GET_XSAVE's area");

/* KVM_GET_MSRS and KVM_SET_MSRS stop at the first MSR KVM refuses (a PVM host refuses some):
 * that one is skipped and the rest done. Returns the MSRs done, in buf order. */
static unsigned msrs_ioctl(int fd, unsigned long request, struct msr_buf *buf, unsigned count)
{
    unsigned done = 0, at = 0;
    while (at < count) {
        struct msr_buf part = {.nmsrs = count - at};
        memcpy(part.entries, buf->entries + at, (count - at) * sizeof(part.entries[0]));
        int n = ioctl(fd, request, &part);
        if (n < 0)
            n = 0;
        memmove(buf->entries + done, part.entries, (size_t)n * sizeof(part.entries[0]));
        done += (unsigned)n;
        at += (unsigned)n + 1; /* entry n was refused */
    }
    return done;
}

static void get_msrs(int fd, struct cpu_state *st)
{
    struct msr_buf buf = {0};
    for (unsigned i = 0; i < CPU_STATE_MSRS; i++)
        buf.entries[i].index = cpu_state_msrs[i];
    st->msr_count = msrs_ioctl(fd, KVM_GET_MSRS, &buf, CPU_STATE_MSRS);
    for (unsigned i = 0; i < st->msr_count; i++)
        st->msrs[i] = (struct cpu_msr){buf.entries[i].index, buf.entries[i].data};
}

static int put_msrs(int fd, const struct cpu_state *st)
{
    struct msr_buf buf = {0};
    for (unsigned i = 0; i < st->msr_count; i++)
        buf.entries[i] = (struct kvm_msr_entry){.index = st->msrs[i].index, .data = st->msrs[i].value};
    return msrs_ioctl(fd, KVM_SET_MSRS, &buf, st->msr_count) == st->msr_count ? 0 : -EINVAL;
}

/* IA32_TSC_DEADLINE once more, after the LAPIC is put. */
static int put_deadline_again(int fd, const struct cpu_state *st, const char **failed)
{
    struct cpu_state one = {.msr_count = 1};
    if (!cpu_state_msr(st, MSR_TSC_DEADLINE, &one.msrs[0].value) || !one.msrs[0].value)
        return 0; /* none armed: nothing the LAPIC's put could have disarmed */
    one.msrs[0].index = MSR_TSC_DEADLINE;
    *failed = "KVM_SET_MSRS(IA32_TSC_DEADLINE)";
    return put_msrs(fd, &one);
}

/* XSAVE's area where KVM has it, else the legacy FPU state in its place. */
static int get_fpu(int fd, struct cpu_state *st)
{
    st->fpu_legacy = ioctl(fd, KVM_GET_XSAVE, (struct kvm_xsave *)(void *)&st->xsave) < 0;
    if (st->fpu_legacy && ioctl(fd, KVM_GET_FPU, (struct kvm_fpu *)(void *)&st->xsave) < 0)
        return -errno;
    if (st->fpu_legacy || ioctl(fd, KVM_GET_XCRS, &st->xcrs) < 0)
        st->xcrs = (struct kvm_xcrs){0}; /* no XCRs to put back */
    return 0;
}

static int put_fpu(int fd, const struct cpu_state *st, const char **failed)
{
    if (st->fpu_legacy) {
        *failed = "KVM_SET_FPU";
        return ioctl(fd, KVM_SET_FPU, (const struct kvm_fpu *)(const void *)&st->xsave) < 0 ? -errno : 0;
    }
    *failed = "KVM_SET_XSAVE";
    if (ioctl(fd, KVM_SET_XSAVE, (const struct kvm_xsave *)(const void *)&st->xsave) < 0)
        return -errno;
    *failed = "KVM_SET_XCRS";
    return st->xcrs.nr_xcrs && ioctl(fd, KVM_SET_XCRS, &st->xcrs) < 0 ? -errno : 0;
}

/* One part read with one ioctl: its request, name and place in struct cpu_state. */
struct part_io {
    unsigned part;
    unsigned long get, set;
    const char *get_name, *set_name;
    size_t offset;
};

#define PART(p, g, s, field) {p, g, s, #g, #s, offsetof(struct cpu_state, field)}
static const struct part_io simple_parts[] = {
    PART(CPU_REGS, KVM_GET_REGS, KVM_SET_REGS, regs),
    PART(CPU_SREGS, KVM_GET_SREGS, KVM_SET_SREGS, sregs),
    PART(CPU_LAPIC, KVM_GET_LAPIC, KVM_SET_LAPIC, lapic),
    PART(CPU_MP, KVM_GET_MP_STATE, KVM_SET_MP_STATE, mp),
    PART(CPU_EVENTS, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, events),
    PART(CPU_DEBUGREGS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, debugregs),
};

static const struct part_io *simple_part(unsigned part)
{
    for (size_t i = 0; i < sizeof(simple_parts) / sizeof(simple_parts[0]); i++)
        if (simple_parts[i].part == part)
            return &simple_parts[i];
    return NULL;
}

int cpu_state_get_fd(int fd, unsigned parts, struct cpu_state *st, const char **failed)
{
    const char *ignored;
    failed = failed ? failed : &ignored;
    for (unsigned part = 1; part < CPU_ALL; part <<= 1) {
        if (!(parts & part))
            continue;
        const struct part_io *io = simple_part(part);
        int rc = 0;
        if (io) {
            *failed = io->get_name;
            rc = ioctl(fd, io->get, (char *)st + io->offset) < 0 ? -errno : 0;
        } else if (part == CPU_FPU) {
            *failed = "KVM_GET_FPU";
            rc = get_fpu(fd, st);
        } else if (part == CPU_MSRS) {
            get_msrs(fd, st);
        }
        if (rc)
            return rc;
        st->have |= part;
    }
    return 0;
}

int cpu_state_put_fd(int fd, unsigned parts, const struct cpu_state *st, const char **failed)
{
    static const unsigned order[] = {CPU_REGS, CPU_FPU, CPU_SREGS, CPU_MSRS, CPU_MP, CPU_LAPIC,
                                     CPU_EVENTS, CPU_DEBUGREGS};
    const char *ignored;
    failed = failed ? failed : &ignored;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        unsigned part = order[i];
        if (!(parts & st->have & part))
            continue;
        const struct part_io *io = simple_part(part);
        int rc;
        if (io) {
            *failed = io->set_name;
            rc = ioctl(fd, io->set, (const char *)st + io->offset) < 0 ? -errno : 0;
        } else if (part == CPU_FPU) {
            rc = put_fpu(fd, st, failed);
        } else {
            *failed = "KVM_SET_MSRS";
            rc = put_msrs(fd, st);
        }
        if (rc)
            return rc;
        if (part == CPU_LAPIC && (parts & st->have & CPU_MSRS))
            rc = put_deadline_again(fd, st, failed); /* setting the LAPIC may disarm it */
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- a vCPU's cache ------------------------------------------------------------------------ */

static bool on_own_thread(const struct vcpu *cpu)
{
    return cpu->kickable && pthread_equal(pthread_self(), cpu->self);
}

/* Copies `parts` of src into dst (both have the parts). */
static void copy_parts(struct cpu_state *dst, const struct cpu_state *src, unsigned parts)
{
    if (parts == src->have) {
        *dst = *src;
        return;
    }
    unsigned keep = dst->have;
    struct cpu_state merged = *dst;
    if (parts & CPU_REGS)
        merged.regs = src->regs;
    if (parts & CPU_SREGS)
        merged.sregs = src->sregs;
    if (parts & CPU_FPU)
        merged.xsave = src->xsave, merged.xcrs = src->xcrs, merged.fpu_legacy = src->fpu_legacy;
    if (parts & CPU_MSRS)
        memcpy(merged.msrs, src->msrs, sizeof(src->msrs)), merged.msr_count = src->msr_count;
    if (parts & CPU_LAPIC)
        merged.lapic = src->lapic;
    if (parts & CPU_MP)
        merged.mp = src->mp;
    if (parts & CPU_EVENTS)
        merged.events = src->events;
    if (parts & CPU_DEBUGREGS)
        merged.debugregs = src->debugregs;
    merged.have = keep | parts;
    *dst = merged;
}

/* Adds parts read or put at run generation `gen` to the cache (state_lock held). */
static void remember(struct vcpu *cpu, const struct cpu_state *st, unsigned parts, uint64_t gen)
{
    if (gen != atomic_load(&cpu->run_gen))
        return; /* it ran since: what was read is already stale */
    if (!cpu->cached && !(cpu->cached = calloc(1, sizeof(*cpu->cached))))
        return;
    if (cpu->cached_gen != gen)
        cpu->cached->have = 0;
    cpu->cached_gen = gen;
    copy_parts(cpu->cached, st, parts);
}

int cpu_state_get(struct vcpu *cpu, unsigned parts, struct cpu_state *st, const char **failed)
{
    pthread_mutex_lock(&cpu->state_lock);
    uint64_t gen = atomic_load(&cpu->run_gen);
    unsigned cached = cpu->cached && cpu->cached_gen == gen ? cpu->cached->have & parts : 0;
    if (cached)
        copy_parts(st, cpu->cached, cached);
    pthread_mutex_unlock(&cpu->state_lock);
    unsigned need = parts & ~cached;
    bool own = on_own_thread(cpu);
    /* kvm_run's copy is only good after a real exit: an AP's KVM_RUN that returned EAGAIN while it
     * waited for its start may leave zeros there (an APIC base of 0 put back would disable its
     * local APIC). */
    if (own && (need & CPU_SREGS) && (cpu->run->kvm_valid_regs & KVM_SYNC_X86_SREGS) &&
        atomic_load(&cpu->exit_pending)) {
        st->sregs = cpu->run->s.regs.sregs; /* KVM copied them at this exit */
        st->have |= CPU_SREGS;
        need &= ~CPU_SREGS;
    }
    if (need) { /* (cpu_state_get_fd writes only the parts it reads) */
        int rc = cpu_state_get_fd(cpu->fd, need, st, failed);
        if (rc)
            return rc;
        pthread_mutex_lock(&cpu->state_lock);
        remember(cpu, st, need, gen);
        pthread_mutex_unlock(&cpu->state_lock);
    }
    if (own && (parts & CPU_REGS))
        st->regs = cpu->run->s.regs.regs; /* slate's copy: a hypercall's result is in it */
    return 0;
}

int cpu_state_regs(struct vcpu *cpu, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
    struct cpu_state st;
    st.have = 0;
    int rc = cpu_state_get(cpu, CPU_REGS | CPU_SREGS, &st, NULL);
    if (rc) {
        errno = -rc;
        return rc;
    }
    *regs = st.regs, *sregs = st.sregs;
    return 0;
}

int cpu_state_tsc(struct vcpu *cpu, uint64_t *tsc)
{
    struct msr_buf buf = {.nmsrs = 1, .entries = {{.index = MSR_TSC}}};
    if (ioctl(cpu->fd, KVM_GET_MSRS, &buf) != 1)
        return errno ? -errno : -EINVAL;
    *tsc = buf.entries[0].data;
    return 0;
}

bool cpu_state_halted(struct vcpu *cpu)
{
    struct cpu_state st;
    st.have = 0;
    return cpu_state_get(cpu, CPU_MP, &st, NULL) == 0 && st.mp.mp_state == KVM_MP_STATE_HALTED;
}

int cpu_state_put(struct vcpu *cpu, unsigned parts, const struct cpu_state *st, const char **failed)
{
    int rc = cpu_state_put_fd(cpu->fd, parts, st, failed);
    pthread_mutex_lock(&cpu->state_lock);
    uint64_t gen = atomic_load(&cpu->run_gen);
    if (rc == 0)
        remember(cpu, st, parts & st->have, gen);
    else if (cpu->cached)
        cpu->cached->have = 0; /* part of it may have gone in */
    pthread_mutex_unlock(&cpu->state_lock);
    if (rc == 0 && (parts & st->have & CPU_REGS)) {
        /* kvm_run's copy must not put the old registers back at the next KVM_RUN. */
        cpu->run->s.regs.regs = st->regs;
        cpu->run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_REGS;
    }
    if (rc == 0 && (parts & st->have & CPU_SREGS))
        cpu->run->s.regs.sregs = st->sregs;
    return rc;
}

int cpu_state_put_parked(struct vcpu *cpu, const struct cpu_state *st, uint64_t sync, const char **failed)
{
    /* What kvm_run can carry into the next KVM_RUN: KVM applies it there, in this order. */
    unsigned deferred = 0;
    if ((sync & KVM_SYNC_X86_REGS) && (st->have & CPU_REGS))
        deferred |= CPU_REGS;
    if ((sync & KVM_SYNC_X86_SREGS) && (st->have & CPU_SREGS))
        deferred |= CPU_SREGS;
    if ((sync & KVM_SYNC_X86_EVENTS) && (st->have & CPU_EVENTS))
        deferred |= CPU_EVENTS;
    int rc = cpu_state_put_fd(cpu->fd, CPU_ALL & ~deferred, st, failed);
    pthread_mutex_lock(&cpu->state_lock);
    if (cpu->cached)
        cpu->cached->have = 0;
    pthread_mutex_unlock(&cpu->state_lock);
    if (rc)
        return rc;
    struct kvm_run *run = cpu->run;
    if (deferred & CPU_REGS)
        run->s.regs.regs = st->regs, run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    if (deferred & CPU_SREGS)
        run->s.regs.sregs = st->sregs, run->kvm_dirty_regs |= KVM_SYNC_X86_SREGS;
    if (deferred & CPU_EVENTS)
        run->s.regs.events = st->events, run->kvm_dirty_regs |= KVM_SYNC_X86_EVENTS;
    return 0;
}

void cpu_state_running(struct vcpu *cpu)
{
    /* Only the CPU's own thread writes it: a plain store, no locked add on every exit. */
    atomic_store_explicit(&cpu->run_gen, atomic_load_explicit(&cpu->run_gen, memory_order_relaxed) + 1,
                          memory_order_release);
}

void cpu_state_flush(struct vcpu *cpu)
{
    if (!(cpu->run->kvm_dirty_regs & KVM_SYNC_X86_REGS))
        return;
    if (ioctl(cpu->fd, KVM_SET_REGS, &cpu->run->s.regs.regs) < 0)
        log_warn("cpu %u: KVM_SET_REGS: %s", cpu->index, strerror(errno));
    cpu->run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_REGS;
    pthread_mutex_lock(&cpu->state_lock);
    if (cpu->cached && cpu->cached_gen == atomic_load(&cpu->run_gen))
        cpu->cached->have &= ~(unsigned)CPU_REGS;
    pthread_mutex_unlock(&cpu->state_lock);
}

void cpu_state_fpu(const struct cpu_state *st, struct kvm_fpu *out)
{
    if (st->fpu_legacy) {
        memcpy(out, &st->xsave, sizeof(*out));
        return;
    }
    const uint8_t *fx = (const uint8_t *)st->xsave.region; /* FXSAVE's 512 bytes */
    *out = (struct kvm_fpu){0};
    memcpy(&out->fcw, fx, 2);
    memcpy(&out->fsw, fx + 2, 2);
    out->ftwx = fx[4];
    memcpy(&out->last_opcode, fx + 6, 2);
    memcpy(&out->last_ip, fx + 8, 8);
    memcpy(&out->last_dp, fx + 16, 8);
    memcpy(&out->mxcsr, fx + 24, 4);
    for (int i = 0; i < 8; i++)
        memcpy(out->fpr[i], fx + 32 + 16 * i, 16);
    for (int i = 0; i < 16; i++)
        memcpy(out->xmm[i], fx + 160 + 16 * i, 16);
}

bool cpu_state_msr(const struct cpu_state *st, uint32_t index, uint64_t *value)
{
    for (unsigned i = 0; i < st->msr_count; i++) {
        if (st->msrs[i].index == index) {
            *value = st->msrs[i].value;
            return true;
        }
    }
    return false;
}

/* ---- the round trip the test kernel checks ------------------------------------------------- */

/* A state unlike the guest's in every part (real mode, zeros, a stopped APIC), but one KVM
 * accepts, so a part that the put would forget shows up in the guest. */
static void scramble(struct cpu_state *s, const struct cpu_state *saved)
{
    s->have = saved->have & ~(unsigned)CPU_MP;
    s->regs = (struct kvm_regs){.rflags = 0x2, .rip = 0xFFF0};
    s->sregs = saved->sregs;
    s->sregs.cr0 = 0x60000010, s->sregs.cr4 = 0, s->sregs.efer = 0, s->sregs.cr3 = 0;
    s->sregs.cs.l = 0, s->sregs.cs.db = 0;
    memset(s->sregs.interrupt_bitmap, 0, sizeof(s->sregs.interrupt_bitmap)); /* would inject */
    memset(&s->xsave, 0, sizeof(s->xsave));
    s->fpu_legacy = saved->fpu_legacy;
    s->xcrs = saved->xcrs;
    for (unsigned i = 0; i < s->xcrs.nr_xcrs; i++)
        s->xcrs.xcrs[i].value = 1; /* XCR0: x87 only */
    s->msr_count = 0;
    for (unsigned i = 0; i < saved->msr_count; i++) {
        uint32_t idx = saved->msrs[i].index;
        if (idx == MSR_TSC || idx == MSR_APIC_BASE || idx == MSR_MISC_ENABLE || idx == MSR_EFER)
            continue;
        s->msrs[s->msr_count++] = (struct cpu_msr){idx, idx == MSR_PAT ? 0x0007040600070406ULL : 0};
    }
    s->lapic = saved->lapic;
    memset(s->lapic.regs + 0x80, 0, sizeof(s->lapic.regs) - 0x80); /* all but ID and version */
    s->events = (struct kvm_vcpu_events){0};
    s->debugregs = (struct kvm_debugregs){.dr6 = 0xFFFF0FF0, .dr7 = 0x400};
}

unsigned cpu_state_part(const char *name)
{
    static const char *const names[] = {"regs", "sregs", "fpu", "msrs", "lapic", "mp", "events", "debugregs"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(name, names[i]))
            return 1u << i;
    return 0;
}

int cpu_state_roundtrip(struct vcpu *cpu, unsigned skip)
{
    struct cpu_state *saved = calloc(1, sizeof(*saved)), *other = calloc(1, sizeof(*other));
    const char *failed = "malloc";
    int rc = saved && other ? cpu_state_get(cpu, CPU_ALL, saved, &failed) : -ENOMEM;
    if (!rc) {
        scramble(other, saved);
        rc = cpu_state_put(cpu, CPU_ALL, other, &failed);
    }
    if (!rc) {
        /* The TSC runs on: putting the value read a moment ago would move it backwards. */
        unsigned kept = 0;
        for (unsigned i = 0; i < saved->msr_count; i++)
            if (saved->msrs[i].index != MSR_TSC)
                saved->msrs[kept++] = saved->msrs[i];
        saved->msr_count = kept;
        rc = cpu_state_put(cpu, CPU_ALL & ~skip, saved, &failed);
    }
    if (rc)
        log_error("cpu %u: the CPU-state round trip failed: %s: %s", cpu->index, failed, strerror(-rc));
    free(saved);
    free(other);
    return rc;
}
