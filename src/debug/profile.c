/* profile.c - see profile.h. Samples are stored raw (a depth, then the addresses) in one growing
 * buffer per vCPU, so taking one costs a kick, a few register reads and the page-table walk of
 * its frames; symbols are looked up once per distinct address at the end. */
#include "profile.h"

#include "debug_room.h"
#include "flamegraph.h"
#include "outfile.h"
#include "symbols.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MAX_WORDS_PER_CPU (8u << 20) /* 64 MiB of samples per CPU, then they are counted dropped */
#define TAG_HALTED 1ULL               /* a sample's "address" for a halted CPU */
#define TAG_USER 2ULL                 /* followed by CR3: a sample in ring 3 */
#define TAG_STACK 3ULL                /* after RIP: the top STACK_WORDS words at RSP, for a leaf's caller */
#define STACK_WORDS 4

struct profile_buf {
    uint64_t *words; /* per sample: depth, then depth addresses (leaf first) */
    size_t len, cap;
    uint64_t samples, dropped;
    _Atomic bool requested; /* the timer asked for a sample at the CPU's next kick */
};

struct profiler {
    char path[4096];
    unsigned hz;
    _Atomic bool running;
    struct event_source tick;
    struct profile_buf *bufs; /* one per vCPU, written only by its thread */
};

static bool push(struct profile_buf *b, const uint64_t *words, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        uint64_t *grown = cap <= MAX_WORDS_PER_CPU ? realloc(b->words, cap * sizeof(*grown)) : NULL;
        if (!grown)
            return false;
        b->words = grown, b->cap = cap;
    }
    memcpy(b->words + b->len, words, n * sizeof(*words));
    b->len += n;
    return true;
}

void profile_sample(struct vcpu *cpu)
{
    struct vm *vm = cpu->vm;
    struct profiler *p = debug_room(vm)->profiler;
    if (!p || !atomic_exchange(&p->bufs[cpu->index].requested, false) || !atomic_load(&p->running) ||
        !atomic_load(&cpu->started))
        return;
    uint64_t words[PROFILE_DEPTH + 4 + STACK_WORDS];
    size_t n = 1;
    const struct kvm_regs *r = &cpu->run->s.regs.regs;
    const struct kvm_sregs *s = &cpu->run->s.regs.sregs; /* KVM_SYNC_X86_SREGS while profiling */
    bool lm = (s->efer & X86_EFER_LMA) && s->cs.l;
    uint64_t rip = lm ? r->rip : (s->cs.base + r->rip) & 0xFFFFFFFF;
    /* Halted: the instruction before RIP is the HLT it waits in (no KVM_GET_MP_STATE per sample:
     * an ioctl costs as much as the rest of the sample on nested KVM). */
    const uint8_t *before = memory_linear_ptr(&vm->mem, s, rip - 1, 1);
    if (before && *before == 0xF4) {
        words[n++] = TAG_HALTED;
    } else {
        words[n++] = rip;
        /* A leaf without a frame pointer leaves RBP its caller's: that caller is found only in
         * its return address on the stack, which the end tells by the leaf's call frame
         * information (add_sample). */
        const uint64_t *top = lm ? memory_linear_ptr(&vm->mem, s, r->rsp, 8 * STACK_WORDS) : NULL;
        if (top) {
            words[n++] = TAG_STACK;
            for (unsigned i = 0; i < STACK_WORDS; i++)
                words[n++] = top[i];
        }
        uint64_t rbp = r->rbp;
        for (unsigned d = 1; lm && d < PROFILE_DEPTH && rbp; d++) {
            const uint64_t *frame = memory_linear_ptr(&vm->mem, s, rbp, 16);
            if (!frame || !frame[1] || frame[0] <= rbp)
                break;
            words[n++] = frame[1];
            rbp = frame[0];
        }
        if ((s->cs.selector & 3) == 3) { /* ring 3: the process is its CR3 */
            words[n++] = TAG_USER;
            words[n++] = s->cr3;
        }
    }
    words[0] = n - 1;
    struct profile_buf *b = &p->bufs[cpu->index];
    if (push(b, words, n))
        b->samples++;
    else
        b->dropped++;
}

static void profile_tick(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    uint64_t ticks;
    (void)events;
    if (read(debug_room(vm)->profiler->tick.fd, &ticks, sizeof(ticks)) <= 0 || !atomic_load(&debug_room(vm)->profiler->running))
        return;
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        atomic_store(&debug_room(vm)->profiler->bufs[i].requested, true);
        vcpu_kick(&vm->vcpus[i]);
    }
}

void profile_run(struct vm *vm, bool on)
{
    struct profiler *p = debug_room(vm)->profiler;
    if (!p)
        return;
    atomic_store(&p->running, on);
    long ns = 1000000000L / (long)p->hz;
    struct itimerspec t = on ? (struct itimerspec){{0, ns}, {0, ns}} : (struct itimerspec){0};
    timerfd_settime(p->tick.fd, 0, &t, NULL);
}

/* SLATE_HC_PROFILE: 1 starts sampling, 0 stops it. */
static int64_t profile_hypercall(void *opaque, struct vcpu *cpu, const uint64_t args[4])
{
    (void)cpu;
    if (args[0] > 1)
        return SLATE_EINVAL;
    profile_run(opaque, args[0] == 1);
    return 0;
}

static void on_vcpu(void *opaque, struct vcpu *cpu, enum vcpu_hook_point at)
{
    (void)opaque;
    if (at == VCPU_HOOK_KICK)
        profile_sample(cpu); /* a kick from the profiler's timer, if it asked */
}

int profile_attach(struct vm *vm)
{
    struct profiler *p = calloc(1, sizeof(*p));
    if (!p || !(p->bufs = calloc(vm->vcpu_count, sizeof(*p->bufs)))) {
        free(p);
        log_error("out of memory");
        return -1;
    }
    debug_room(vm)->profiler = p;
    snprintf(p->path, sizeof(p->path), "%s", vm->cfg->profile_path);
    p->hz = vm->cfg->profile_hz;
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        vm->vcpus[i].run->kvm_valid_regs |= KVM_SYNC_X86_SREGS;
    p->tick = (struct event_source){.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
                                    .fn = profile_tick, .opaque = vm};
    if (p->tick.fd < 0 || event_add(&vm->loop, &p->tick, EPOLLIN) ||
        vm_add_hypercall(vm, &(struct hypercall){.function = SLATE_HC_PROFILE, .fn = profile_hypercall,
                                                 .opaque = vm})) {
        log_error("--profile: cannot start its timer: %s", strerror(errno));
        return -1;
    }
    if (vm_add_vcpu_hook(vm, on_vcpu, p)) {
        log_error("internal: too many vCPU hooks");
        return -1;
    }
    if (!vm->cfg->profile_paused)
        profile_run(vm, true);
    return 0;
}

/* ---- the end: symbols, folded stacks, the table ------------------------------------------- */

struct stack_count {
    char *stack; /* "root;...;leaf" */
    uint64_t count;
};

struct fn_count {
    char *name;
    uint64_t self, total;
};

static void frame_name(struct symbols *syms, uint64_t addr, bool leaf, char *buf, size_t len)
{
    struct symbol_info fn;
    if (addr == TAG_HALTED)
        snprintf(buf, len, "[halted]");
    else if (symbols_lookup(syms, leaf ? addr : addr - 1, &fn) && fn.function) /* a return address
                                                                                   * is past the call */
        snprintf(buf, len, "%s", fn.function);
    else
        snprintf(buf, len, "%#" PRIx64, addr);
}

static int by_stack(const void *a, const void *b)
{
    return strcmp(((const struct stack_count *)a)->stack, ((const struct stack_count *)b)->stack);
}

static int by_self(const void *a, const void *b)
{
    const struct fn_count *x = a, *y = b;
    return x->self < y->self ? 1 : x->self > y->self ? -1 : strcmp(x->name, y->name);
}

static struct fn_count *fn_entry(struct fn_count **fns, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*fns)[i].name, name))
            return &(*fns)[i];
    struct fn_count *grown = realloc(*fns, (*n + 1) * sizeof(**fns));
    if (!grown)
        return NULL;
    *fns = grown;
    grown[*n] = (struct fn_count){strdup(name), 0, 0};
    return &grown[(*n)++];
}

/* Everything the samples say: each distinct stack with its count, each function's self and
 * total samples. */
struct profile_summary {
    struct stack_count *stacks;
    size_t nstacks;
    struct fn_count *fns;
    size_t nfns;
    uint64_t total, dropped;
};

/* A sample's frames without the stack words after RIP; the leaf's caller among them when RIP's
 * code has set up no frame of its own (its return address is then at RSP + offset - 8). */
static size_t leaf_caller(struct symbols *syms, const uint64_t *addrs, size_t depth, uint64_t *out)
{
    if (depth < 2 + STACK_WORDS || addrs[1] != TAG_STACK) {
        memcpy(out, addrs, depth * sizeof(*addrs));
        return depth;
    }
    size_t n = 0;
    out[n++] = addrs[0];
    int offset = symbols_cfa_sp_offset(syms, addrs[0]);
    const uint64_t *stack = addrs + 2, *chain = addrs + 2 + STACK_WORDS;
    size_t chain_len = depth - 2 - STACK_WORDS;
    if (offset >= 8 && offset <= 8 * STACK_WORDS && offset % 8 == 0) {
        uint64_t caller = stack[offset / 8 - 1];
        if (caller && (!chain_len || chain[0] != caller))
            out[n++] = caller;
    }
    memcpy(out + n, chain, chain_len * sizeof(*chain));
    return n + chain_len;
}

/* One sample: its folded stack line (root first) and its functions' counts. */
static void add_sample(struct profile_summary *s, struct symbols *syms, const uint64_t *sample, size_t depth)
{
    uint64_t addrs[PROFILE_DEPTH + 4];
    depth = leaf_caller(syms, sample, depth, addrs);
    char line[PROFILE_DEPTH * 64 + 64] = "", name[128];
    size_t used = 0, frames = depth;
    if (depth >= 2 && addrs[depth - 2] == TAG_USER) { /* ring 3: root it at its CR3 */
        used = (size_t)snprintf(line, sizeof(line), "[user cr3=%#" PRIx64 "]", addrs[depth - 1]);
        frames = depth - 2;
    }
    char seen[PROFILE_DEPTH][128];
    unsigned nseen = 0;
    for (size_t f = frames; f-- > 0;) { /* root first */
        frame_name(syms, addrs[f], f == 0, name, sizeof(name));
        used += (size_t)snprintf(line + used, sizeof(line) - used, "%s%s", used ? ";" : "", name);
        struct fn_count *fc = NULL;
        bool again = false;
        for (unsigned k = 0; k < nseen; k++)
            again |= !strcmp(seen[k], name);
        if (!again && nseen < PROFILE_DEPTH) { /* total: once per sample, even if recursive */
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
            if ((fc = fn_entry(&s->fns, &s->nfns, name)))
                fc->total++;
        }
        if (f == 0 && (fc = fn_entry(&s->fns, &s->nfns, name)))
            fc->self++;
    }
    struct stack_count *grown = realloc(s->stacks, (s->nstacks + 1) * sizeof(*s->stacks));
    if (grown) {
        s->stacks = grown;
        s->stacks[s->nstacks++] = (struct stack_count){strdup(line), 1};
    }
    s->total++;
}

/* Every CPU's samples, equal stacks folded into one with their count. */
static void summarize(struct vm *vm, struct profile_summary *s)
{
    struct symbols *syms = symbols_open(config_symbols(vm->cfg));
    for (unsigned c = 0; c < vm->vcpu_count; c++) {
        const struct profile_buf *b = &debug_room(vm)->profiler->bufs[c];
        s->dropped += b->dropped;
        for (size_t i = 0; i < b->len; i += b->words[i] + 1)
            add_sample(s, syms, b->words + i + 1, b->words[i]);
    }
    symbols_close(syms);
    if (s->nstacks) /* (no samples: no array at all) */
        qsort(s->stacks, s->nstacks, sizeof(*s->stacks), by_stack);
    size_t folded = 0;
    for (size_t i = 0; i < s->nstacks; i++) {
        if (folded && !strcmp(s->stacks[folded - 1].stack, s->stacks[i].stack)) {
            s->stacks[folded - 1].count++;
            free(s->stacks[i].stack);
        } else {
            s->stacks[folded++] = s->stacks[i];
        }
    }
    s->nstacks = folded;
}

/* The folded stacks, or a flame graph for a name ending in .svg, written as a new file of its
 * own renamed into place (outfile.h): in dirfd when it is >= 0, else at `name` as a path. */
static int write_profile_file(struct vm *vm, const struct profile_summary *s, int dirfd, const char *name,
                              bool replace)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (!mem)
        return -ENOMEM;
    for (size_t i = 0; i < s->nstacks; i++)
        fprintf(mem, "%s %" PRIu64 "\n", s->stacks[i].stack, s->stacks[i].count);
    fclose(mem);
    struct outfile o;
    int fd = dirfd >= 0 ? outfile_create_at(&o, dirfd, name) : outfile_create(&o, name);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = fd < 0 ? fd : !out ? -errno : 0;
    if (fd >= 0 && !out)
        close(fd);
    size_t len = strlen(name);
    if (out && len > 4 && !strcmp(name + len - 4, ".svg"))
        flamegraph_svg(text, vm->cfg->kernel, out);
    else if (out)
        fputs(text, out);
    if (out && fclose(out) != 0)
        rc = -errno;
    if (!rc)
        rc = outfile_place(&o, replace);
    if (fd >= 0)
        outfile_finish(&o);
    free(text);
    return rc;
}

static void print_table(struct vm *vm, struct profile_summary *s, FILE *table, const char *written)
{
    qsort(s->fns, s->nfns, sizeof(*s->fns), by_self);
    fprintf(table, "slate: profile: %" PRIu64 " samples at %u Hz on %u CPUs%s%s\n", s->total,
            debug_room(vm)->profiler->hz, vm->vcpu_count, written ? ", written to " : "", written ? written : "");
    if (s->dropped)
        fprintf(table, "  (%" PRIu64 " samples dropped: out of memory for them)\n", s->dropped);
    fprintf(table, "  %6s %6s  function\n", "self", "total");
    for (size_t i = 0; i < s->nfns && i < 15; i++)
        fprintf(table, "  %5.1f%% %5.1f%%  %s\n", 100.0 * (double)s->fns[i].self / (double)s->total,
                100.0 * (double)s->fns[i].total / (double)s->total, s->fns[i].name);
}

int profile_write(struct vm *vm, int dirfd, const char *name, bool replace, const char *shown, FILE *table)
{
    struct profile_summary s = {0};
    summarize(vm, &s);
    int rc = write_profile_file(vm, &s, dirfd, name, replace);
    if (table && s.total)
        print_table(vm, &s, table, rc ? NULL : shown);
    for (size_t i = 0; i < s.nstacks; i++)
        free(s.stacks[i].stack);
    for (size_t i = 0; i < s.nfns; i++)
        free(s.fns[i].name);
    free(s.stacks), free(s.fns);
    return rc;
}

void profile_finish(struct vm *vm, bool write)
{
    struct profiler *p = debug_room(vm)->profiler;
    if (!p)
        return;
    int rc = write ? profile_write(vm, -1, p->path, true, p->path, stderr) : 0;
    if (rc)
        log_error("--profile %s: %s", p->path, strerror(-rc));
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        free(p->bufs[i].words);
    free(p->bufs);
    if (p->tick.fd >= 0)
        close(p->tick.fd);
    free(p);
    debug_room(vm)->profiler = NULL;
}
