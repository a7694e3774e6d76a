/* profile.c - see profile.h. Samples are stored raw (a depth, then the addresses) in one growing
 * buffer per vCPU, so taking one costs a kick, a few register reads and the page-table walk of
 * its frames; symbols are looked up once per distinct address at the end. */
#include "profile.h"

#include "flamegraph.h"
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

struct profile_buf {
    uint64_t *words; /* per sample: depth, then depth addresses (leaf first) */
    size_t len, cap;
    uint64_t samples, dropped;
};

struct profiler {
    char path[4096];
    unsigned hz;
    _Atomic bool running;
    struct event_source tick;
    struct profile_buf *bufs; /* one per vCPU, written only by its thread */
};

int profile_parse(const char *arg, char *path, size_t pathlen, unsigned *hz, bool *paused, char *err,
                  size_t errlen)
{
    size_t n = strcspn(arg, ",");
    *hz = PROFILE_HZ_DEFAULT, *paused = false;
    if (n == 0 || n >= pathlen)
        return error_text(err, errlen, "--profile %s: expected PATH[,hz=N][,paused]", arg);
    memcpy(path, arg, n);
    path[n] = 0;
    for (const char *p = arg + n; *p == ',';) {
        const char *opt = p + 1;
        size_t len = strcspn(opt, ",");
        char *end;
        if (len > 3 && !strncmp(opt, "hz=", 3)) {
            unsigned long v = strtoul(opt + 3, &end, 10);
            if (end != opt + len || v < 1 || v > 10000)
                return error_text(err, errlen, "--profile %s: hz=%.*s is not from 1 to 10000", arg,
                                  (int)(len - 3), opt + 3);
            *hz = (unsigned)v;
        } else if (len == 6 && !strncmp(opt, "paused", 6)) {
            *paused = true;
        } else {
            return error_text(err, errlen, "--profile %s: unknown option '%.*s' (hz=N, paused)", arg,
                              (int)len, opt);
        }
        p = opt + len;
    }
    return 0;
}

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
    struct profiler *p = vm->profiler;
    if (!p || !atomic_exchange(&cpu->sample_requested, false) || !atomic_load(&p->running) ||
        !atomic_load(&cpu->started))
        return;
    uint64_t words[PROFILE_DEPTH + 3];
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
    if (read(vm->profiler->tick.fd, &ticks, sizeof(ticks)) <= 0 || !atomic_load(&vm->profiler->running))
        return;
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        atomic_store(&vm->vcpus[i].sample_requested, true);
        vcpu_kick(&vm->vcpus[i]);
    }
}

void profile_run(struct vm *vm, bool on)
{
    struct profiler *p = vm->profiler;
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

int profile_attach(struct vm *vm)
{
    struct profiler *p = calloc(1, sizeof(*p));
    if (!p || !(p->bufs = calloc(vm->vcpu_count, sizeof(*p->bufs)))) {
        free(p);
        log_error("out of memory");
        return -1;
    }
    vm->profiler = p;
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

int profile_write(struct vm *vm, const char *path, FILE *table)
{
    struct profiler *p = vm->profiler;
    struct symbols *syms = symbols_open(config_symbols(vm->cfg));
    struct stack_count *stacks = NULL;
    struct fn_count *fns = NULL;
    size_t nstacks = 0, nfns = 0;
    uint64_t total = 0, dropped = 0;
    for (unsigned c = 0; c < vm->vcpu_count; c++) {
        const struct profile_buf *b = &p->bufs[c];
        dropped += b->dropped;
        for (size_t i = 0; i < b->len;) {
            size_t depth = b->words[i++];
            const uint64_t *addrs = b->words + i;
            i += depth;
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
                    if ((fc = fn_entry(&fns, &nfns, name)))
                        fc->total++;
                }
                if (f == 0 && (fc = fn_entry(&fns, &nfns, name)))
                    fc->self++;
            }
            struct stack_count *grown = realloc(stacks, (nstacks + 1) * sizeof(*stacks));
            if (grown) {
                stacks = grown;
                stacks[nstacks++] = (struct stack_count){strdup(line), 1};
            }
            total++;
        }
    }
    symbols_close(syms);
    /* Fold equal stacks. */
    qsort(stacks, nstacks, sizeof(*stacks), by_stack);
    size_t folded = 0;
    for (size_t i = 0; i < nstacks; i++) {
        if (folded && !strcmp(stacks[folded - 1].stack, stacks[i].stack)) {
            stacks[folded - 1].count++;
            free(stacks[i].stack);
        } else {
            stacks[folded++] = stacks[i];
        }
    }
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    for (size_t i = 0; mem && i < folded; i++)
        fprintf(mem, "%s %" PRIu64 "\n", stacks[i].stack, stacks[i].count);
    if (mem)
        fclose(mem);
    int rc = 0;
    /* Never through a link (the monitor writes in --dump-dir for whoever is connected). */
    int fd = text ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644) : -1;
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (fd >= 0 && !out)
        close(fd);
    size_t plen = strlen(path);
    if (!out)
        rc = -errno ? -errno : -ENOMEM;
    else if (plen > 4 && !strcmp(path + plen - 4, ".svg"))
        flamegraph_svg(text, vm->cfg->kernel, out);
    else
        fputs(text, out);
    if (out && fclose(out) != 0)
        rc = -errno;
    if (table && total) {
        qsort(fns, nfns, sizeof(*fns), by_self);
        fprintf(table, "slate: profile: %" PRIu64 " samples at %u Hz on %u CPUs%s%s\n", total, p->hz,
                vm->vcpu_count, rc ? "" : ", written to ", rc ? "" : path);
        if (dropped)
            fprintf(table, "  (%" PRIu64 " samples dropped: out of memory for them)\n", dropped);
        fprintf(table, "  %6s %6s  function\n", "self", "total");
        for (size_t i = 0; i < nfns && i < 15; i++)
            fprintf(table, "  %5.1f%% %5.1f%%  %s\n", 100.0 * (double)fns[i].self / (double)total,
                    100.0 * (double)fns[i].total / (double)total, fns[i].name);
    }
    for (size_t i = 0; i < folded; i++)
        free(stacks[i].stack);
    for (size_t i = 0; i < nfns; i++)
        free(fns[i].name);
    free(stacks), free(fns), free(text);
    return rc;
}

void profile_finish(struct vm *vm, bool write)
{
    struct profiler *p = vm->profiler;
    if (!p)
        return;
    int rc = write ? profile_write(vm, p->path, stderr) : 0;
    if (rc)
        log_error("--profile %s: %s", p->path, strerror(-rc));
    for (unsigned i = 0; i < vm->vcpu_count; i++)
        free(p->bufs[i].words);
    free(p->bufs);
    if (p->tick.fd >= 0)
        close(p->tick.fd);
    free(p);
    vm->profiler = NULL;
}
