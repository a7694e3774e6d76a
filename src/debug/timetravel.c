/* timetravel.c - see timetravel.h. Everything that runs the CPU runs on its own thread
 * (vm_run_parked), while gdb's thread waits and watches for Ctrl-C. */
#include "timetravel.h"

#include "cpu_state.h"
#include "disasm.h"
#include "exits.h"
#include "log.h"
#include "module.h"
#include "record.h"
#include "replay.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TT_CHECKPOINTS 512 /* kept at most (gdb's stepping, and the run's own every 20 ms: ~10 s) */
#define TT_MEMORY_MAX (1ull << 30) /* of page versions, at most, under gdb */
#define TT_FREE_MEMORY_MIN (64ull << 20) /* without gdb: as much as guest RAM, at least this */
#define TT_INTERVAL_NS 100000000LL /* a checkpoint every 100 ms of stepping */
#define TT_PAGE 4096
#define TT_WATCH_MAX 4
#define TT_HALT_WAIT_NS 20000000LL /* a halted CPU not woken by then stays halted */
#define TT_FREE_INTERVAL_NS 20000000LL /* without gdb: a checkpoint every 20 ms at least, at an exit */
#define TT_FREE_COST_SHARE 20 /* ... and apart by 20 times what the last one took (5% of the run) */
#define TRAIL_MAX_STEPS 200000 /* how far a crash is run again by single steps */
#define EXTEND_MAX_STEPS 2000000 /* how far the window is run again to go back past its start */

/* A page's contents at the checkpoints where they changed, oldest first. */
struct page_version {
    uint32_t id;   /* the checkpoint's */
    uint8_t *data; /* NULL: all zero */
};
struct page_history {
    uint32_t count, cap;
    struct page_version *v;
};

/* Guest memory kept across checkpoints: RAM and the devices' windows. */
struct region {
    uint8_t *host;
    uint64_t pages;
    struct page_history *hist;
    unsigned char *resident; /* mincore's answer, reused */
};

struct checkpoint {
    uint32_t id;
    uint64_t icount;
    bool may_inject;
    struct cpu_state cpu;
    void *mark; /* record_mark_save's */
};

struct request {
    struct timetravel *tt;
    enum tt_action action;
    struct tt_points points;
    struct tt_stop stop;
};

struct timetravel {
    struct vm *vm;
    struct vcpu *cpu;
    const struct disasm_module *dis;
    bool started;
    bool off_point;      /* the CPU is not at icount (an exit was abandoned): put it back */
    bool halted;         /* the CPU waits in HLT */
    uint64_t icount;     /* instructions since the origin */
    uint64_t end_icount; /* where the recording ends, once reached (else UINT64_MAX) */
    bool end_crashed;
    struct checkpoint ck[TT_CHECKPOINTS];
    unsigned ck_first, ck_count;
    /* The window: the checkpoints from window_first on have instruction numbers. Those before it
     * were taken as the run went (without gdb), where the count was not known: going back past
     * the window's start runs the one before it forward to measure it (extend_window). */
    unsigned window_first;
    bool no_older;     /* that failed once: the window starts where it does */
    bool crash_window; /* the window ends at a crash and stays for gdb (timetravel_crash_trail) */
    int64_t free_interval_ns;
    uint64_t free_memory_max; /* of page versions without gdb (the guest's RAM); under it TT_MEMORY_MAX */
    uint32_t next_id;
    int64_t last_ck_ns;
    struct region *regions;
    unsigned region_count;
    _Atomic bool interrupt;
    timer_t halt_timer; /* kicks a halted CPU that nothing wakes (its thread's, made there) */
    bool halt_timer_made;
    bool warned_vectors;
    /* When KVM injects a pending interrupt. Eager (stock KVM: the CPU exits when interrupts are
     * enabled again): at any instruction, so steps let it. Lazy (nested PVM): only when it enters
     * the guest after an exit, so steps block interrupts but for the one after an exit, a kick,
     * an instruction KVM emulated, or in HLT. */
    bool lazy_injection;
    bool may_inject;
    /* the instructions before a crash (timetravel_crash_trail), a ring */
    struct trail_insn trail[TT_TRAIL_LEN];
    uint64_t trail_count;
    bool in_trail;
    uint64_t trail_replayed;
    /* what it cost, said when gdb leaves */
    uint64_t steps_run, bytes_kept;
    int64_t busy_ns;
};

static const uint8_t zero_page[TT_PAGE];

/* ---- memory across checkpoints -------------------------------------------------------------- */

static bool add_region(struct timetravel *tt, void *host, uint64_t bytes)
{
    if (!host || bytes < TT_PAGE)
        return true;
    struct region *grown = realloc(tt->regions, (tt->region_count + 1) * sizeof(*grown));
    if (!grown)
        return false;
    tt->regions = grown;
    struct region *r = &tt->regions[tt->region_count];
    *r = (struct region){.host = host, .pages = bytes / TT_PAGE};
    r->hist = calloc(r->pages, sizeof(*r->hist));
    r->resident = malloc(r->pages);
    if (!r->hist || !r->resident) {
        free(r->hist);
        free(r->resident);
        return false;
    }
    tt->region_count++;
    return true;
}

static void look_resident(struct region *r)
{
    if (mincore(r->host, r->pages * TT_PAGE, r->resident) < 0)
        memset(r->resident, 1, r->pages); /* cannot tell: look at every page */
}

/* The page's contents at checkpoint `id`: its latest version then (NULL: zero). */
static const uint8_t *version_at(const struct page_history *h, uint32_t id)
{
    const uint8_t *data = zero_page;
    for (uint32_t i = 0; i < h->count && h->v[i].id <= id; i++)
        data = h->v[i].data ? h->v[i].data : zero_page;
    return data;
}

/* Keeps the pages that changed since the newest checkpoint as checkpoint `id`'s. */
static bool keep_pages(struct timetravel *tt, uint32_t id)
{
    for (unsigned i = 0; i < tt->region_count; i++) {
        struct region *r = &tt->regions[i];
        look_resident(r);
        for (uint64_t p = 0; p < r->pages; p++) {
            struct page_history *h = &r->hist[p];
            const uint8_t *now = r->host + p * TT_PAGE;
            if (!(r->resident[p] & 1) && !h->count)
                continue; /* never touched: zero */
            const uint8_t *last = h->count ? (h->v[h->count - 1].data ? h->v[h->count - 1].data : zero_page) : zero_page;
            if (h->count && !memcmp(now, last, TT_PAGE))
                continue;
            if (!h->count && !memcmp(now, zero_page, TT_PAGE))
                continue;
            if (h->count == h->cap) {
                uint32_t cap = h->cap ? h->cap * 2 : 2;
                struct page_version *v = realloc(h->v, cap * sizeof(*v));
                if (!v)
                    return false;
                h->v = v, h->cap = cap;
            }
            uint8_t *copy = NULL;
            if (memcmp(now, zero_page, TT_PAGE)) {
                if (!(copy = malloc(TT_PAGE)))
                    return false;
                memcpy(copy, now, TT_PAGE);
                tt->bytes_kept += TT_PAGE;
            }
            h->v[h->count++] = (struct page_version){id, copy};
        }
    }
    return true;
}

/* Guest memory as it was at checkpoint `id`. */
static void put_pages(struct timetravel *tt, uint32_t id)
{
    for (unsigned i = 0; i < tt->region_count; i++) {
        struct region *r = &tt->regions[i];
        look_resident(r);
        for (uint64_t p = 0; p < r->pages; p++) {
            struct page_history *h = &r->hist[p];
            if (!h->count && !(r->resident[p] & 1))
                continue;
            uint8_t *now = r->host + p * TT_PAGE;
            const uint8_t *then = version_at(h, id);
            if (memcmp(now, then, TT_PAGE))
                memcpy(now, then, TT_PAGE);
        }
    }
}

/* Checkpoint `oldest` is now the first kept: versions older than its view of a page go. */
static void forget_pages_before(struct timetravel *tt, uint32_t oldest)
{
    for (unsigned i = 0; i < tt->region_count; i++) {
        struct region *r = &tt->regions[i];
        for (uint64_t p = 0; p < r->pages; p++) {
            struct page_history *h = &r->hist[p];
            uint32_t keep_from = 0;
            for (uint32_t k = 0; k < h->count && h->v[k].id <= oldest; k++)
                keep_from = k;
            if (!keep_from)
                continue;
            for (uint32_t k = 0; k < keep_from; k++) {
                tt->bytes_kept -= h->v[k].data ? TT_PAGE : 0;
                free(h->v[k].data);
            }
            memmove(h->v, h->v + keep_from, (h->count - keep_from) * sizeof(*h->v));
            h->count -= keep_from;
        }
    }
}

/* ---- checkpoints ------------------------------------------------------------------------------- */

static struct checkpoint *ck_at(struct timetravel *tt, unsigned i)
{
    return &tt->ck[(tt->ck_first + i) % TT_CHECKPOINTS];
}

static struct checkpoint *newest(struct timetravel *tt) { return ck_at(tt, tt->ck_count - 1); }

static void drop_oldest(struct timetravel *tt)
{
    free(ck_at(tt, 0)->mark);
    ck_at(tt, 0)->mark = NULL;
    tt->ck_first = (tt->ck_first + 1) % TT_CHECKPOINTS;
    tt->ck_count--;
    if (tt->window_first)
        tt->window_first--;
    forget_pages_before(tt, ck_at(tt, 0)->id);
}

/* The newest checkpoint goes, and the page versions it kept. */
static void drop_newest(struct timetravel *tt)
{
    struct checkpoint *c = newest(tt);
    for (unsigned i = 0; i < tt->region_count; i++) {
        struct region *r = &tt->regions[i];
        for (uint64_t p = 0; p < r->pages; p++) {
            struct page_history *h = &r->hist[p];
            if (!h->count || h->v[h->count - 1].id != c->id)
                continue;
            tt->bytes_kept -= h->v[h->count - 1].data ? TT_PAGE : 0;
            free(h->v[--h->count].data);
        }
    }
    free(c->mark);
    c->mark = NULL;
    tt->ck_count--;
}

static struct checkpoint *window_start(struct timetravel *tt) { return ck_at(tt, tt->window_first); }

/* A checkpoint of the CPU where it is; the oldest goes when `keep` are kept. */
static bool take_checkpoint(struct timetravel *tt, unsigned keep)
{
    while (tt->ck_count >= keep)
        drop_oldest(tt);
    struct checkpoint *c = ck_at(tt, tt->ck_count);
    const char *failed = NULL;
    *c = (struct checkpoint){.id = tt->next_id, .icount = tt->icount, .may_inject = tt->may_inject};
    int rc = cpu_state_get(tt->cpu, CPU_ALL & ~CPU_DEBUGREGS, &c->cpu, &failed);
    if (rc || !(c->mark = malloc(record_mark_size())) || !keep_pages(tt, c->id)) {
        log_error("time travel: cannot take a checkpoint: %s%s%s", rc ? failed : "out of memory",
                  rc ? ": " : "", rc ? strerror(-rc) : "");
        free(c->mark);
        c->mark = NULL;
        return false;
    }
    record_mark_save(tt->vm, c->mark);
    tt->next_id++;
    tt->ck_count++;
    tt->last_ck_ns = clock_now_ns();
    uint64_t memory_max = tt->started ? TT_MEMORY_MAX : tt->free_memory_max;
    while (tt->bytes_kept > memory_max && tt->ck_count > 2)
        drop_oldest(tt); /* a kernel that rewrites much memory gets a shorter window */
    return true;
}

static bool restore_checkpoint(struct timetravel *tt, const struct checkpoint *c)
{
    const char *failed = NULL;
    int rc = cpu_state_put(tt->cpu, c->cpu.have, &c->cpu, &failed);
    if (rc || record_mark_restore(tt->vm, c->mark) < 0) {
        log_error("time travel: cannot go back to instruction %" PRIu64 ": %s: %s", c->icount,
                  rc ? failed : "the log", strerror(rc ? -rc : errno));
        return false;
    }
    put_pages(tt, c->id);
    replay_keep_point(tt->cpu); /* (a crash report after gdb leaves replays from here) */
    tt->icount = c->icount;
    tt->halted = c->cpu.mp.mp_state == KVM_MP_STATE_HALTED;
    tt->may_inject = c->may_inject;
    tt->off_point = false;
    return true;
}

/* ---- one instruction --------------------------------------------------------------------------- */

enum step_result { STEP_OK, STEP_END, STEP_CRASH, STEP_INTERRUPTED, STEP_STOPPING };

static unsigned cpu_bits(const struct kvm_sregs *s)
{
    if ((s->efer & X86_EFER_LMA) && s->cs.l)
        return 64;
    return s->cs.db ? 32 : 16;
}

static size_t read_code(struct timetravel *tt, uint8_t *code, size_t len)
{
    const struct kvm_regs *regs = &tt->cpu->run->s.regs.regs;
    const struct kvm_sregs *sregs = &tt->cpu->run->s.regs.sregs;
    uint64_t linear = cpu_bits(sregs) == 64 ? regs->rip : sregs->cs.base + regs->rip;
    return vcpu_read_virtual(tt->cpu, linear, code, len);
}

/* Where the CPU goes after the instruction at RIP if it does not branch, when nested KVM may
 * lose its single step: an instruction with a memory operand may be one KVM emulates itself (a
 * write to the local APIC), and on PVM that ends no single step; a breakpoint there catches it.
 * 0 for the rest, or when it cannot tell (no disassembler). */
static uint64_t step_guard(struct timetravel *tt, const uint8_t *code, size_t len)
{
    const struct kvm_regs *regs = &tt->cpu->run->s.regs.regs;
    const struct kvm_sregs *sregs = &tt->cpu->run->s.regs.sregs;
    struct disasm_insn insn;
    if (!tt->dis || !len || tt->dis->decode(code, len, regs->rip, cpu_bits(sregs), &insn, 1) != 1)
        return 0;
    static const char *const emulated[] = {"cpuid", "rdmsr", "wrmsr", "rdtsc", "rdtscp", "rdpmc", "xgetbv",
                                           "xsetbv", "invlpg", "wbinvd", "invd", "lgdt", "lidt", "ltr", "lldt"};
    bool may_be_emulated = insn.mem_count || strstr(insn.operands, "cr") || strstr(insn.operands, "dr");
    for (size_t i = 0; i < sizeof(emulated) / sizeof(emulated[0]) && !may_be_emulated; i++)
        may_be_emulated = !strcmp(insn.mnemonic, emulated[i]);
    if (!may_be_emulated)
        return 0;
    uint64_t next = regs->rip + insn.size;
    return cpu_bits(sregs) == 64 ? next : sregs->cs.base + next;
}

/* Where an interrupt on `vector` enters (its IDT gate's offset), or 0 (real mode, no gate). */
static uint64_t handler_entry(struct timetravel *tt, uint8_t vector)
{
    const struct kvm_sregs *sregs = &tt->cpu->run->s.regs.sregs;
    unsigned size = cpu_bits(sregs) == 64 ? 16 : 8;
    uint8_t gate[16];
    if (!(sregs->cr0 & X86_CR0_PE) || (uint64_t)vector * size + size - 1 > sregs->idt.limit)
        return 0;
    uint64_t at = sregs->idt.base + (uint64_t)vector * size;
    const uint8_t *p = memory_linear_ptr(&tt->vm->mem, sregs, at, size);
    if (p)
        memcpy(gate, p, size);
    else if (vcpu_read_virtual(tt->cpu, at, gate, size) != size)
        return 0;
    if (!(gate[5] & 0x80)) /* not present */
        return 0;
    uint64_t offset = (uint64_t)(gate[0] | gate[1] << 8) | (uint64_t)(gate[6] | gate[7] << 8) << 16;
    if (size == 16)
        offset |= (uint64_t)(gate[8] | gate[9] << 8 | gate[10] << 16 | (uint32_t)gate[11] << 24) << 32;
    return offset;
}

/* The debug registers for one step: the guard, and the entries of the handlers an interrupt may
 * enter during it, so that the step ends at the handler's first instruction (KVM's own step ends
 * one instruction later, or at the handler's return). */
static void step_breakpoints(struct timetravel *tt, uint64_t guard, struct kvm_guest_debug *dbg)
{
    uint64_t rip = tt->cpu->run->s.regs.regs.rip;
    unsigned slot = 0;
    if (guard)
        dbg->arch.debugreg[slot++] = guard;
    uint8_t vectors[16];
    unsigned n = record_vectors(tt->vm, vectors, sizeof(vectors));
    for (unsigned i = 0; i < n && slot < 4; i++) {
        uint64_t entry = handler_entry(tt, vectors[i]);
        bool taken = !entry || entry == rip; /* (at it already: it would stop again at once) */
        for (unsigned k = 0; k < slot && !taken; k++)
            taken = dbg->arch.debugreg[k] == entry;
        if (taken)
            continue;
        dbg->arch.debugreg[slot++] = entry;
    }
    if (n > 4 - (guard != 0) && !tt->warned_vectors) {
        tt->warned_vectors = true;
        log_warn("time travel: interrupts come on %u vectors; a step into a handler stops at its first "
                 "instruction for %u of them, one instruction later for the rest", n, 4 - (guard != 0));
    }
    for (unsigned k = 0; k < slot; k++)
        dbg->arch.debugreg[7] |= 1ull << (2 * k); /* Lk, execution */
    if (slot)
        dbg->control |= KVM_GUESTDBG_USE_HW_BP;
}

/* HLT, stepped by slate: RIP past it, the CPU halted (KVM would wait inside KVM_RUN, where no
 * single step ends). An interrupt shadow (STI; HLT) ends with the instruction. */
static bool step_hlt(struct timetravel *tt)
{
    struct cpu_state st = {0};
    if (cpu_state_get(tt->cpu, CPU_REGS | CPU_EVENTS, &st, NULL))
        return false;
    st.regs.rip += 1;
    st.mp.mp_state = KVM_MP_STATE_HALTED;
    st.events.interrupt.shadow = 0;
    st.events.flags |= KVM_VCPUEVENT_VALID_SHADOW;
    st.have |= CPU_MP;
    if (cpu_state_put(tt->cpu, CPU_REGS | CPU_EVENTS | CPU_MP, &st, NULL))
        return false;
    tt->halted = true;
    return true;
}

static void set_stepping(struct timetravel *tt, uint64_t guard)
{
    struct kvm_guest_debug dbg = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP};
    if (tt->lazy_injection && !tt->may_inject && !tt->halted)
        dbg.control |= KVM_GUESTDBG_BLOCKIRQ;
    step_breakpoints(tt, guard, &dbg);
    vcpu_set_debug(tt->cpu, DEBUG_TIMETRAVEL, &dbg);
}

/* KVM_RUN once. 0 or -errno. */
static int run_once(struct timetravel *tt, bool complete_only)
{
    struct vcpu *cpu = tt->cpu;
    __atomic_store_n(&cpu->run->immediate_exit, complete_only ? 1 : 0, __ATOMIC_SEQ_CST);
    cpu_state_running(cpu);
    int rc = ioctl(cpu->fd, KVM_RUN, 0) < 0 ? -errno : 0;
    __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    return rc;
}

/* The exit's instruction completes (KVM does that at the next KVM_RUN), and nothing more. */
static void complete_exit(struct timetravel *tt)
{
    run_once(tt, true);
    atomic_store(&tt->cpu->exit_pending, false);
}

#define RFLAGS_TF 0x100u
#define DR6_BS (1u << 14)
#define RFLAGS_RF 0x10000u
#define FRAME_SEARCH 512 /* bytes above RSP where a step's interrupt frame may be */

/* KVM single-steps with RFLAGS.TF set in the CPU, so an interrupt or exception that enters during
 * a step pushes RFLAGS with TF: a frame the recorded run never wrote (and which, restored by IRET
 * after gdb left, would raise a debug exception in the guest). Such a frame (64-bit: RIP within
 * the instruction just stepped or right after it, its CS, its RFLAGS with TF) near the new RSP
 * gets the guest's own RFLAGS back. */
static void scrub_frame(struct timetravel *tt, const struct kvm_regs *was, uint16_t was_cs)
{
    const struct kvm_sregs *sregs = &tt->cpu->run->s.regs.sregs;
    uint64_t rsp = tt->cpu->run->s.regs.regs.rsp;
    if ((was->rflags & RFLAGS_TF) || cpu_bits(sregs) != 64)
        return;
    for (uint64_t at = rsp & ~7ull; at < (rsp & ~7ull) + FRAME_SEARCH; at += 8) {
        uint64_t *frame = (uint64_t *)memory_linear_ptr(&tt->vm->mem, sregs, at, 24);
        if (!frame) {
            at = (at | 0xFFF) - 7; /* (on to the next page) */
            continue;
        }
        if (frame[0] - was->rip < 16 && frame[1] == was_cs && (frame[2] & RFLAGS_TF) &&
            ((frame[2] ^ was->rflags) & ~(uint64_t)(RFLAGS_TF | RFLAGS_RF)) == 0) {
            frame[2] &= ~(uint64_t)RFLAGS_TF;
            return;
        }
    }
}

static enum step_result run_step(struct timetravel *tt, const struct kvm_regs *was);

/* Runs one instruction. */
static enum step_result step_once(struct timetravel *tt)
{
    struct vcpu *cpu = tt->cpu;
    struct kvm_run *run = cpu->run;
    uint8_t code[16];
    size_t len = tt->halted ? 0 : read_code(tt, code, sizeof(code));
    if (len && code[0] == 0xF4) /* HLT */
        return step_hlt(tt) ? STEP_OK : STEP_STOPPING;
    uint64_t guard = tt->halted ? 0 : step_guard(tt, code, len);
    set_stepping(tt, guard);
    struct kvm_regs before = run->s.regs.regs;
    uint16_t before_cs = run->s.regs.sregs.cs.selector;
    tt->may_inject = false;
    enum step_result res = run_step(tt, &before);
    /* Where KVM itself handled an exit during the step (the guard caught it), the free run
     * re-entered the guest right after that instruction: an interrupt may enter there. */
    if (res == STEP_OK && guard && run->exit_reason == KVM_EXIT_DEBUG && run->s.regs.regs.rip == guard &&
        !(run->debug.arch.dr6 & DR6_BS))
        tt->may_inject = true;
    if (res == STEP_OK)
        scrub_frame(tt, &before, before_cs);
    return res;
}

/* A halted CPU that nothing in the log wakes would wait in KVM_RUN for ever: a one-shot timer
 * kicks this thread (SIGUSR1, as vcpu_kick does) after TT_HALT_WAIT_NS, and the step ends. */
static void halt_timer(struct timetravel *tt, bool on)
{
    if (!tt->halt_timer_made) {
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1};
        ev._sigev_un._tid = gettid(); /* (glibc 2.36 names it so; the CPU's thread: time travel runs only there) */
        if (timer_create(CLOCK_MONOTONIC, &ev, &tt->halt_timer) < 0) {
            log_error("time travel: timer_create: %s", strerror(errno));
            return;
        }
        tt->halt_timer_made = true;
    }
    struct itimerspec when = {.it_value = {.tv_nsec = on ? TT_HALT_WAIT_NS : 0}};
    timer_settime(tt->halt_timer, 0, &when, NULL);
}

/* The KVM_RUNs of one step (step_once). */
static enum step_result run_step(struct timetravel *tt, const struct kvm_regs *was)
{
    struct vcpu *cpu = tt->cpu;
    struct kvm_run *run = cpu->run;
    for (;;) {
        bool halted = tt->halted;
        if (halted)
            halt_timer(tt, true);
        int rc = run_once(tt, false);
        if (halted)
            halt_timer(tt, false);
        if (atomic_load(&tt->vm->stopping))
            return STEP_STOPPING;
        if (rc == -EINTR || rc == -EAGAIN) {
            if (memcmp(was, &run->s.regs.regs, sizeof(*was)))
                return STEP_OK; /* (a kick came just after the instruction) */
            if (atomic_load(&tt->interrupt))
                return STEP_INTERRUPTED;
            if (tt->halted)
                return STEP_END; /* nothing in the recording wakes it */
            continue;
        }
        if (rc < 0) {
            log_error("time travel: KVM_RUN: %s", strerror(-rc));
            return STEP_STOPPING;
        }
        tt->halted = false;
        const char *what;
        enum exit_action action = exit_classify(run, &what);
        if (action == EXIT_ACTION_DEBUG)
            return STEP_OK; /* the step, or the breakpoint after the instruction */
        if (action == EXIT_ACTION_RESUME)
            continue;
        if (action == EXIT_ACTION_CRASH) {
            tt->off_point = true;
            complete_exit(tt);
            return STEP_CRASH;
        }
        if (record_exit_ends_log(tt->vm)) { /* this exit is where the recording ended */
            tt->off_point = true;
            complete_exit(tt);
            return STEP_END;
        }
        bool go_on = vcpu_process_exit(cpu);
        if (go_on && tt->vm->vcpu_hook_count)
            vm_vcpu_hooks(cpu, VCPU_HOOK_EXIT);
        if (!go_on || atomic_load(&tt->vm->stopping))
            return STEP_STOPPING;
        complete_exit(tt); /* (KVM's debug exit for the step, or none on PVM: done either way) */
        tt->may_inject = true; /* the guest is entered again after an exit */
        return STEP_OK;
    }
}

/* At an instruction boundary: what the recording brought here (a kick's writes, interrupts). */
static void at_boundary(struct timetravel *tt)
{
    while (record_step_point(tt->cpu))
        tt->may_inject = true; /* the recording's CPU was kicked here and entered again */
}

/* One instruction forward; the point count, output and checkpoints follow. */
static enum step_result advance(struct timetravel *tt)
{
    enum step_result res = step_once(tt);
    if (res != STEP_OK)
        return res;
    tt->steps_run++;
    tt->icount++;
    at_boundary(tt);
    if (tt->icount > newest(tt)->icount && clock_now_ns() - tt->last_ck_ns >= TT_INTERVAL_NS &&
        !take_checkpoint(tt, TT_CHECKPOINTS))
        return STEP_STOPPING;
    return STEP_OK;
}

/* Puts the CPU at instruction `target` (within the window). */
static enum step_result go_to(struct timetravel *tt, uint64_t target)
{
    const struct checkpoint *from = NULL;
    for (unsigned i = tt->window_first; i < tt->ck_count && ck_at(tt, i)->icount <= target; i++)
        from = ck_at(tt, i);
    if (!from)
        return STEP_STOPPING;
    bool ahead_of_it = !tt->off_point && tt->icount <= target && tt->icount >= from->icount;
    if (!ahead_of_it && !restore_checkpoint(tt, from))
        return STEP_STOPPING;
    while (tt->icount < target) {
        enum step_result res = advance(tt);
        if (res != STEP_OK)
            return res == STEP_INTERRUPTED ? STEP_INTERRUPTED : STEP_STOPPING;
    }
    return STEP_OK;
}

/* ---- what gdb asks for ------------------------------------------------------------------------- */

static bool read_watch(struct timetravel *tt, const struct tt_watch *w, uint8_t *out)
{
    return vcpu_read_virtual(tt->cpu, w->addr, out, w->len) == w->len;
}

static void read_watches(struct timetravel *tt, const struct tt_points *pts, uint8_t values[][8])
{
    for (unsigned i = 0; i < pts->watch_count && i < TT_WATCH_MAX; i++)
        if (!read_watch(tt, &pts->watches[i], values[i]))
            memset(values[i], 0, 8);
}

/* Which watched value differs from values[] (which is updated), or -1. */
static int watch_changed(struct timetravel *tt, const struct tt_points *pts, uint8_t values[][8])
{
    int hit = -1;
    for (unsigned i = 0; i < pts->watch_count && i < TT_WATCH_MAX; i++) {
        uint8_t now[8] = {0};
        read_watch(tt, &pts->watches[i], now);
        if (memcmp(now, values[i], pts->watches[i].len)) {
            memcpy(values[i], now, 8);
            if (hit < 0)
                hit = (int)i;
        }
    }
    return hit;
}

static bool at_break(struct timetravel *tt, const struct tt_points *pts)
{
    uint64_t rip = tt->cpu->run->s.regs.regs.rip;
    for (unsigned i = 0; i < pts->break_count; i++)
        if (pts->breaks[i] == rip)
            return true;
    return false;
}

/* The recording ended at the instruction after icount (its last exit, or a crash). */
static struct tt_stop reached_end(struct timetravel *tt, enum step_result res)
{
    tt->end_icount = tt->icount;
    tt->end_crashed = res == STEP_CRASH;
    if (go_to(tt, tt->end_icount) != STEP_OK)
        return (struct tt_stop){TT_FAILED, 0};
    return (struct tt_stop){tt->end_crashed ? TT_CRASH : TT_END, 0};
}

static struct tt_stop forward(struct timetravel *tt, const struct tt_points *pts, bool one)
{
    uint8_t values[TT_WATCH_MAX][8];
    read_watches(tt, pts, values);
    for (;;) {
        if (tt->icount >= tt->end_icount)
            return (struct tt_stop){tt->end_crashed ? TT_CRASH : TT_END, 0};
        if (atomic_load(&tt->interrupt))
            return (struct tt_stop){TT_INTERRUPTED, 0};
        enum step_result res = advance(tt);
        if (res == STEP_END || res == STEP_CRASH)
            return reached_end(tt, res);
        if (res == STEP_INTERRUPTED)
            return (struct tt_stop){TT_INTERRUPTED, 0};
        if (res != STEP_OK)
            return (struct tt_stop){TT_FAILED, 0};
        int hit = watch_changed(tt, pts, values);
        if (hit >= 0)
            return (struct tt_stop){TT_WATCHPOINT, pts->watches[hit].addr};
        if (one)
            return (struct tt_stop){TT_STEPPED, 0};
        if (at_break(tt, pts))
            return (struct tt_stop){TT_BREAKPOINT, 0};
    }
}

enum extend_result { EXTENDED, NOT_EXTENDED, EXTEND_INTERRUPTED };

/* The CPU is at the window's first checkpoint again, run there from the one before: the same
 * exit count, the same registers (but for the flags a step sets). */
static bool at_checkpoint(struct timetravel *tt, const struct checkpoint *c)
{
    struct kvm_regs now = tt->cpu->run->s.regs.regs, then = c->cpu.regs;
    now.rflags &= ~(uint64_t)(RFLAGS_TF | RFLAGS_RF);
    then.rflags &= ~(uint64_t)(RFLAGS_TF | RFLAGS_RF);
    return record_exit_count(tt->vm) == record_mark_exits(c->mark) && !memcmp(&now, &then, sizeof(now));
}

/* Going back past the window's start: the checkpoint before it (taken as the run went, its
 * instruction number unknown) is put back and run forward by steps until it gets to the window's
 * first; the window then starts there, and every instruction number in it, *pos with them, moves
 * up by the steps that took. */
static enum extend_result extend_window(struct timetravel *tt, uint64_t *pos)
{
    if (!tt->window_first || tt->no_older)
        return NOT_EXTENDED;
    struct checkpoint *older = ck_at(tt, tt->window_first - 1), *first = window_start(tt);
    older->icount = first->icount;
    if (!restore_checkpoint(tt, older))
        return NOT_EXTENDED;
    tt->off_point = true; /* (wherever this ends, go_to puts the CPU back) */
    uint64_t steps = 0;
    while (!at_checkpoint(tt, first)) {
        if (atomic_load(&tt->interrupt)) {
            restore_checkpoint(tt, first); /* (back where it was) */
            return EXTEND_INTERRUPTED;
        }
        if (steps++ == EXTEND_MAX_STEPS || step_once(tt) != STEP_OK || (at_boundary(tt), record_diverged(tt->vm))) {
            log_warn("time travel: the run before instruction %" PRIu64 " cannot be run again (%s); the "
                     "window starts there", first->icount,
                     steps > EXTEND_MAX_STEPS ? "too many instructions" : "it went elsewhere");
            tt->no_older = true;
            restore_checkpoint(tt, first);
            return NOT_EXTENDED;
        }
    }
    for (unsigned i = tt->window_first; i < tt->ck_count; i++)
        ck_at(tt, i)->icount += steps;
    if (tt->end_icount != UINT64_MAX)
        tt->end_icount += steps;
    *pos += steps;
    tt->window_first--;
    log_info("time travel: the window reaches %" PRIu64 " instructions further back (to a checkpoint the run "
             "kept as it went)", steps);
    tt->icount = first->icount;
    tt->off_point = false;
    return EXTENDED;
}

static struct tt_stop reverse_step(struct timetravel *tt)
{
    uint64_t pos = tt->icount;
    if (pos <= window_start(tt)->icount) {
        enum extend_result res = extend_window(tt, &pos);
        if (res != EXTENDED)
            return (struct tt_stop){res == EXTEND_INTERRUPTED ? TT_INTERRUPTED : TT_BEGIN, 0};
    }
    enum step_result res = go_to(tt, pos - 1);
    return (struct tt_stop){res == STEP_OK ? TT_STEPPED : TT_FAILED, 0};
}

/* The last hit in [from, until): steps forward from checkpoint `from`. *found says if any. */
static enum step_result scan(struct timetravel *tt, const struct checkpoint *from, uint64_t until,
                             const struct tt_points *pts, bool *found, uint64_t *at, struct tt_stop *hit)
{
    uint8_t values[TT_WATCH_MAX][8];
    if (!restore_checkpoint(tt, from))
        return STEP_STOPPING;
    read_watches(tt, pts, values);
    while (tt->icount < until) {
        uint64_t here = tt->icount;
        if (at_break(tt, pts))
            *found = true, *at = here, *hit = (struct tt_stop){TT_BREAKPOINT, 0};
        if (atomic_load(&tt->interrupt))
            return STEP_INTERRUPTED;
        enum step_result res = advance(tt);
        if (res != STEP_OK)
            return res;
        int w = watch_changed(tt, pts, values);
        if (w >= 0) /* going back, the stop is before the instruction that changed it */
            *found = true, *at = here, *hit = (struct tt_stop){TT_WATCHPOINT, pts->watches[w].addr};
    }
    return STEP_OK;
}

static struct tt_stop reverse_continue(struct timetravel *tt, const struct tt_points *pts)
{
    uint64_t until = tt->icount;
    for (;;) {
        for (unsigned i = tt->ck_count; i-- > tt->window_first;) {
            const struct checkpoint *from = ck_at(tt, i);
            if (from->icount >= until)
                continue;
            bool found = false;
            uint64_t at = 0;
            struct tt_stop hit = {TT_FAILED, 0};
            enum step_result res = scan(tt, from, until, pts, &found, &at, &hit);
            if (res == STEP_INTERRUPTED)
                return (struct tt_stop){TT_INTERRUPTED, 0};
            if (res != STEP_OK)
                return (struct tt_stop){TT_FAILED, 0};
            if (found)
                return go_to(tt, at) == STEP_OK ? hit : (struct tt_stop){TT_FAILED, 0};
            until = from->icount;
        }
        enum extend_result res = extend_window(tt, &until); /* nothing in the window: further back */
        if (res == EXTEND_INTERRUPTED)
            return (struct tt_stop){TT_INTERRUPTED, 0};
        if (res == NOT_EXTENDED)
            break;
    }
    if (go_to(tt, window_start(tt)->icount) != STEP_OK)
        return (struct tt_stop){TT_FAILED, 0};
    return (struct tt_stop){TT_BEGIN, 0};
}

/* Nothing kept: a new window (gdb attached again after the replay ran on by itself). */
static void forget_all(struct timetravel *tt)
{
    for (unsigned i = 0; i < tt->ck_count; i++) {
        free(ck_at(tt, i)->mark);
        ck_at(tt, i)->mark = NULL;
    }
    for (unsigned i = 0; i < tt->region_count; i++) {
        struct region *r = &tt->regions[i];
        for (uint64_t p = 0; p < r->pages; p++) {
            for (uint32_t k = 0; k < r->hist[p].count; k++)
                free(r->hist[p].v[k].data);
            free(r->hist[p].v);
            r->hist[p] = (struct page_history){0};
        }
    }
    tt->ck_first = tt->ck_count = tt->window_first = 0;
    tt->no_older = tt->crash_window = false;
    tt->icount = tt->bytes_kept = 0;
    tt->end_icount = UINT64_MAX;
    tt->end_crashed = false;
}

/* The first time: the CPU's pending exit completed, the replay told to let us step, the origin. */
static bool start(struct timetravel *tt)
{
    struct vcpu *cpu = tt->cpu;
    cpu->run->kvm_valid_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    if (atomic_load(&cpu->exit_pending))
        complete_exit(tt);
    cpu->step_completing = false;
    cpu_state_flush(cpu);
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_REGS | CPU_SREGS | CPU_MP, &st, NULL))
        return false;
    cpu->run->s.regs.regs = st.regs; /* (the copy every boundary looks at) */
    cpu->run->s.regs.sregs = st.sregs;
    record_set_stepped(cpu, true);
    if (tt->crash_window) { /* stopped at a crash: the window up to it is there already */
        tt->started = true;
        log_info("time travel: gdb can go back from the crash (%" PRIu64 " instructions run again up to it, "
                 "and further a checkpoint at a time: %u kept)", tt->end_icount - window_start(tt)->icount,
                 tt->ck_count);
        return true;
    }
    tt->halted = st.mp.mp_state == KVM_MP_STATE_HALTED;
    forget_all(tt);
    tt->may_inject = true; /* (the CPU is entered again) */
    at_boundary(tt);
    if (!take_checkpoint(tt, TT_CHECKPOINTS))
        return false;
    tt->started = true;
    log_info("time travel: gdb can go back from here (instruction 0); the replay runs by single steps");
    return true;
}

static void on_cpu_thread(struct vcpu *cpu, void *arg)
{
    struct request *req = arg;
    struct timetravel *tt = req->tt;
    int64_t began = clock_now_ns();
    if (!tt->started && !start(tt)) {
        req->stop = (struct tt_stop){TT_FAILED, 0};
        return;
    }
    switch (req->action) {
    case TT_STEP: req->stop = forward(tt, &req->points, true); break;
    case TT_CONTINUE: req->stop = forward(tt, &req->points, false); break;
    case TT_REVERSE_STEP: req->stop = reverse_step(tt); break;
    case TT_REVERSE_CONTINUE: req->stop = reverse_continue(tt, &req->points); break;
    }
    vcpu_set_debug(cpu, DEBUG_TIMETRAVEL, NULL);
    tt->busy_ns += clock_now_ns() - began;
}

struct tt_stop timetravel_run(struct timetravel *tt, enum tt_action action, const struct tt_points *points,
                              bool (*poll)(void *opaque), void *opaque)
{
    struct request req = {.tt = tt, .action = action, .points = *points, .stop = {TT_FAILED, 0}};
    atomic_store(&tt->interrupt, false);
    bool done = vm_run_parked(tt->vm, tt->cpu, on_cpu_thread, &req, 5);
    while (!done && !atomic_load(&tt->vm->stopping)) {
        if (poll && poll(opaque) && !atomic_load(&tt->interrupt)) {
            atomic_store(&tt->interrupt, true);
            vcpu_kick(tt->cpu);
        }
        done = vm_run_parked(tt->vm, tt->cpu, NULL, NULL, 5);
    }
    return done ? req.stop : (struct tt_stop){TT_FAILED, 0};
}

void timetravel_leave(struct timetravel *tt)
{
    if (!tt->started)
        return;
    vcpu_set_debug(tt->cpu, DEBUG_TIMETRAVEL, NULL);
    log_info("time travel: %" PRIu64 " instructions stepped in %.2f s (%.0f/s); %u checkpoints kept, "
             "%" PRIu64 " KiB of pages; %s",
             tt->steps_run, (double)tt->busy_ns / 1e9,
             tt->busy_ns ? (double)tt->steps_run * 1e9 / (double)tt->busy_ns : 0.0, tt->ck_count,
             tt->bytes_kept >> 10, tt->crash_window ? "the machine stays at its crash" : "the replay runs on by itself");
    tt->started = false;
    if (tt->crash_window)
        return; /* (nothing runs on: the window stays for gdb's next visit) */
    record_set_stepped(tt->cpu, false);
    forget_all(tt); /* (its numbers mean nothing once the replay runs by itself) */
    tt->last_ck_ns = 0;
}

/* ---- without gdb: checkpoints as the replay runs, and the instructions before a crash -------- */

/* After an exit of a replay that runs by itself: a checkpoint now and then. The exit is completed
 * first (an IN's value in its register, RIP past an OUT), so the state is whole. */
static void on_vcpu(void *opaque, struct vcpu *cpu, enum vcpu_hook_point at)
{
    struct timetravel *tt = opaque;
    if (at != VCPU_HOOK_EXIT || tt->started || tt->in_trail || cpu != tt->cpu ||
        !atomic_load(&cpu->exit_pending) || clock_now_ns() - tt->last_ck_ns < tt->free_interval_ns)
        return;
    cpu->run->kvm_valid_regs |= KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
    __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    cpu_state_running(cpu);
    if (ioctl(cpu->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
        return; /* (not completed: no checkpoint; the loop handles what KVM_RUN said) */
    /* immediate_exit stays set: a kick that came meanwhile is not lost (the loop's next
     * KVM_RUN returns at once, as after a kick) */
    atomic_store(&cpu->exit_pending, false);
    tt->halted = cpu_state_halted(cpu);
    tt->may_inject = true; /* (the guest is entered again after an exit) */
    int64_t began = clock_now_ns();
    take_checkpoint(tt, TT_CHECKPOINTS);
    int64_t cost = (clock_now_ns() - began) * TT_FREE_COST_SHARE;
    tt->free_interval_ns = cost > TT_FREE_INTERVAL_NS ? cost : TT_FREE_INTERVAL_NS;
}

static void keep_trail(struct timetravel *tt, const uint8_t *code, size_t len)
{
    struct trail_insn *t = &tt->trail[tt->trail_count++ % TT_TRAIL_LEN];
    const struct kvm_sregs *sregs = &tt->cpu->run->s.regs.sregs;
    unsigned bits = cpu_bits(sregs);
    t->rip = bits == 64 ? tt->cpu->run->s.regs.regs.rip : sregs->cs.base + tt->cpu->run->s.regs.regs.rip;
    t->bits = (uint8_t)bits;
    memset(t->bytes, 0, sizeof(t->bytes));
    memcpy(t->bytes, code, len < sizeof(t->bytes) ? len : sizeof(t->bytes));
}

/* From checkpoint `from`, steps until the CPU faults, keeping the trail: how many steps, or -1. */
static int64_t run_to_fault(struct timetravel *tt, const struct checkpoint *from)
{
    if (!restore_checkpoint(tt, from))
        return -1;
    tt->trail_count = 0;
    for (int64_t steps = 0; steps < TRAIL_MAX_STEPS; steps++) {
        uint8_t code[16];
        size_t len = tt->halted ? 0 : read_code(tt, code, sizeof(code));
        if (!tt->halted)
            keep_trail(tt, code, len);
        enum step_result res = step_once(tt);
        if (res == STEP_CRASH)
            return record_diverged(tt->vm) ? -1 : steps;
        if (res != STEP_OK || record_diverged(tt->vm))
            return -1;
        at_boundary(tt);
    }
    return -1;
}

/* The fault reached again from `from` (run_to_fault took `steps`): the run from `from` to it
 * becomes gdb's window (instruction 0 at `from`), stepped once more with checkpoints, the CPU
 * left at the faulting instruction. */
static bool make_crash_window(struct timetravel *tt, struct checkpoint *from, int64_t steps)
{
    tt->window_first = tt->ck_count - 1;
    tt->no_older = false;
    from->icount = 0;
    if (!restore_checkpoint(tt, from))
        return false;
    while (tt->icount < (uint64_t)steps)
        if (advance(tt) != STEP_OK || record_diverged(tt->vm))
            return false;
    tt->end_icount = tt->icount;
    tt->end_crashed = tt->crash_window = true;
    return true;
}

void timetravel_crash_trail(struct timetravel *tt, struct vcpu *cpu)
{
    if (tt->started || cpu != tt->cpu || !tt->ck_count)
        return;
    if (!record_replaying(tt->vm) && record_turn_to_replay(tt->vm))
        return; /* (a recording: its log, read back, gives the run again) */
    struct kvm_run *run = cpu->run;
    uint8_t exit[offsetof(struct kvm_run, kvm_valid_regs)]; /* the crash's exit, for the report */
    memcpy(exit, run, sizeof(exit));
    tt->in_trail = true;
    complete_exit(tt);
    if (!take_checkpoint(tt, TT_CHECKPOINTS)) { /* the crash as KVM left it, to come back to */
        tt->in_trail = false;
        return;
    }
    struct checkpoint *from = ck_at(tt, tt->ck_count - 2), *crash = newest(tt);
    record_set_quiet(tt->vm, true);
    record_set_stepped(cpu, true);
    int64_t steps = run_to_fault(tt, from);
    if (steps < 0) {
        tt->trail_count = 0;
        restore_checkpoint(tt, crash);
    } else {
        drop_newest(tt); /* (the crash as KVM left it: the run just got there again, and can again) */
        if (!make_crash_window(tt, from, steps)) {
            tt->crash_window = false;
            bool back = run_to_fault(tt, from) >= 0; /* the CPU at its crash again, as KVM left it */
            log_warn("time travel: the crash was not reached a second time: gdb cannot go back from it%s",
                     back ? "" : "; the CPU below is where that run stopped, not the crash");
            if (!back)
                tt->trail_count = 0;
        }
    }
    tt->trail_replayed = steps >= 0 ? (uint64_t)steps : 0;
    if (!tt->crash_window)
        record_set_stepped(cpu, false);
    record_set_quiet(tt->vm, false);
    vcpu_set_debug(cpu, DEBUG_TIMETRAVEL, NULL);
    memcpy(run, exit, sizeof(exit));
    tt->in_trail = false;
}

unsigned timetravel_trail(const struct timetravel *tt, struct trail_insn *out, uint64_t *replayed)
{
    if (!tt)
        return 0;
    unsigned n = tt->trail_count < TT_TRAIL_LEN ? (unsigned)tt->trail_count : TT_TRAIL_LEN;
    for (unsigned i = 0; i < n; i++)
        out[i] = tt->trail[(tt->trail_count - n + i) % TT_TRAIL_LEN];
    *replayed = tt->trail_replayed;
    return n;
}

bool timetravel_ready(const struct timetravel *tt) { return tt && record_replaying(tt->vm); }

struct timetravel *timetravel_open(struct vm *vm)
{
    if (!vm->record)
        return NULL;
    struct timetravel *tt = calloc(1, sizeof(*tt));
    if (!tt) {
        log_error("out of memory");
        return NULL;
    }
    tt->vm = vm;
    tt->cpu = &vm->vcpus[0];
    tt->end_icount = UINT64_MAX;
    tt->free_interval_ns = TT_FREE_INTERVAL_NS;
    uint64_t ram = 0;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        ram += vm->mem.ram[i].size;
    /* A run nobody steps keeps at most as much again as its RAM (a recording must not cost the
     * host much more than the machine does); gdb's window may use more. */
    tt->free_memory_max = ram < TT_FREE_MEMORY_MIN ? TT_FREE_MEMORY_MIN : ram > TT_MEMORY_MAX ? TT_MEMORY_MAX : ram;
    tt->lazy_injection = access("/sys/module/kvm_pvm", F_OK) == 0 || getenv("SLATE_TEST_LAZY_INJECTION");
    bool ok = true;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        ok &= add_region(tt, vm->mem.ram[i].host, vm->mem.ram[i].size);
    for (unsigned i = 0; i < vm->device_count; i++)
        ok &= add_region(tt, vm->devices[i].window, vm->devices[i].window_bytes);
    if (!ok) {
        log_error("out of memory");
        timetravel_close(tt);
        return NULL;
    }
    /* Without the disassembler a lost step is not caught (see step_guard): said once. */
    tt->dis = module_load("disasm", "slate_disasm_module", &slate_disasm_module, "time travel");
    if (vm_add_vcpu_hook(vm, on_vcpu, tt)) {
        log_error("internal: too many vCPU hooks");
        timetravel_close(tt);
        return NULL;
    }
    return tt;
}

void timetravel_close(struct timetravel *tt)
{
    if (!tt)
        return;
    forget_all(tt);
    if (tt->halt_timer_made)
        timer_delete(tt->halt_timer);
    for (unsigned i = 0; i < tt->region_count; i++) {
        free(tt->regions[i].hist);
        free(tt->regions[i].resident);
    }
    free(tt->regions);
    free(tt);
}
