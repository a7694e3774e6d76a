/* each.c - `slate --each CASE... KERNEL`: the kernel boots once and calls SLATE_HC_SNAPSHOT when
 * it is ready; slate captures the machine there (machine_capture, and a copy of the memory it
 * had written) and runs each case from that point: the hypercall returns the case's number with
 * the case file's bytes in the kernel's buffer, and the case runs until the kernel exits,
 * crashes or outlives --case-timeout. Then slate puts the machine back: only the pages the case
 * wrote (KVM's dirty log for the guest's writes, memory_ram_ptr's bits for slate's own), every
 * CPU and every device. The vCPU threads live on across cases, parked between them.
 *
 * Everything here runs on the event thread with the machine held (HOLD_SNAPSHOT), except
 * each_hypercall and each_case_stop, which only record what happened and wake it. */
#include "snapshot.h"

#include "log.h"
#include "outfile.h"
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#define PAGE 4096ULL
#define LONG_BITS (8 * sizeof(unsigned long))
#define CASE_BUFFER_MAX (64ULL << 20)

/* A range of memory a case may change and the reset puts back. */
struct tracked {
    const char *what;
    uint8_t *host;
    uint64_t size;    /* bytes compared or copied back */
    uint8_t *shadow;  /* its contents at the snapshot */
    int slot;         /* its KVM memory slot with a dirty log */
    int ram;          /* the RAM region (slate's own writes are in mem.host_dirty), or -1 */
    bool compare;     /* a window devices write directly: pages are compared with the shadow */
    unsigned long *written; /* pages written since the snapshot */
    unsigned long *log;     /* KVM_GET_DIRTY_LOG's buffer */
    unsigned long *for_device; /* pages a device that reads the same log has not been told of */
    pthread_mutex_t lock;
};

struct each {
    struct vm *vm;
    char **cases;
    unsigned count;
    unsigned current; /* the case running (1-based); 0 before the snapshot */
    unsigned failed;
    bool snapshotted, finishing;
    struct machine_image img;
    struct tracked mem[2 + 2 + DEVICE_MAX];
    unsigned mem_count;
    /* The caller of SLATE_HC_SNAPSHOT and its buffer, mapped as it sees it. */
    _Atomic int caller;
    struct guest_piece *pieces;
    unsigned piece_count;
    uint64_t buffer_size;
    /* The case under way. */
    _Atomic int status; /* -1 while it runs */
    char reason[192];
    struct event_source timer;
    int out_dirfd;
    int console_fd; /* where guest output went before the cases */
    int log_fd;
    FILE *report; /* the case's crash or hang report, if it has one */
    char *report_text;
    size_t report_len;
    int64_t started_ns;
    /* For the summary (and make bench). */
    int64_t reset_ns;
    uint64_t reset_pages;
    unsigned ran; /* cases this process ran */
    /* --jobs: the TAP block of each case (1-based), printed in order as they complete; the
     * workers, each a slate restored from the snapshot, report theirs through a pipe. */
    unsigned stride, first; /* this process runs first, first + stride, ... */
    char **results;
    unsigned printed;
    bool own_done;
    struct worker {
        struct each *owner;
        pid_t pid;
        struct event_source pipe;
        char *buf;
        size_t len;
    } workers[EACH_JOBS_MAX];
    unsigned worker_count, workers_left;
};

static uint64_t bitmap_longs(uint64_t size) { return (size / PAGE + LONG_BITS - 1) / LONG_BITS; }

/* ---- cases ----------------------------------------------------------------------------------- */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The command line's cases, then --each-dir's regular files in name order. */
static int collect_cases(struct each *e, const struct slate_config *cfg)
{
    unsigned cap = cfg->case_count + 64;
    e->cases = calloc(cap, sizeof(char *));
    for (unsigned i = 0; e->cases && i < cfg->case_count; i++)
        e->cases[e->count++] = strdup(cfg->cases[i]);
    DIR *dir = cfg->each_dir ? opendir(cfg->each_dir) : NULL;
    if (cfg->each_dir && !dir) {
        log_error("--each-dir %s: %s", cfg->each_dir, strerror(errno));
        return -1;
    }
    unsigned first = e->count;
    for (struct dirent *de; dir && e->cases && (de = readdir(dir));) {
        char path[LOAD_PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", cfg->each_dir, de->d_name);
        if (de->d_name[0] == '.' || stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (e->count == cap) {
            char **grown = realloc(e->cases, (cap *= 2) * sizeof(char *));
            if (!grown)
                break;
            e->cases = grown;
        }
        e->cases[e->count++] = strdup(path);
    }
    if (dir)
        closedir(dir);
    if (!e->cases) {
        log_error("out of memory");
        return -1;
    }
    qsort(e->cases + first, e->count - first, sizeof(char *), by_name);
    for (unsigned i = 0; i < e->count; i++) {
        struct stat st;
        if (!e->cases[i] || stat(e->cases[i], &st) < 0 || !S_ISREG(st.st_mode) || access(e->cases[i], R_OK)) {
            log_error("--each: %s: %s", e->cases[i] ? e->cases[i] : "?",
                      !e->cases[i] ? "out of memory" : errno ? strerror(errno) : "not a regular file");
            return -1;
        }
    }
    if (!e->count) {
        log_error("--each-dir %s: no case files in it", cfg->each_dir);
        return -1;
    }
    return 0;
}

/* The case's file, read now: it may be changed between cases. NULL (logged) on failure. */
static uint8_t *read_case(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *data = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && (data = malloc((size_t)st.st_size + 1))) {
        ssize_t n = read(fd, data, (size_t)st.st_size);
        *len = n > 0 ? (size_t)n : 0;
    }
    if (!data)
        log_error("--each: %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return data;
}

/* ---- memory ---------------------------------------------------------------------------------- */

static int track(struct each *e, const char *what, uint8_t *host, uint64_t size, int slot, int ram, bool compare)
{
    struct tracked *t = &e->mem[e->mem_count];
    *t = (struct tracked){.what = what, .host = host, .size = size, .slot = slot, .ram = ram, .compare = compare};
    uint64_t longs = bitmap_longs(size);
    t->written = calloc(longs, sizeof(long));
    t->log = calloc(longs, sizeof(long));
    t->for_device = calloc(longs, sizeof(long));
    t->shadow = vm_map_anonymous(size);
    pthread_mutex_init(&t->lock, NULL);
    e->mem_count++;
    if (!t->written || !t->log || !t->for_device || !t->shadow) {
        log_error("--each: out of memory for a copy of %s", what);
        return -1;
    }
    return 0;
}

/* Slots are numbered as vm.c adds them: RAM regions, the info block, the boot tables, windows. */
static int track_all(struct each *e)
{
    struct vm *vm = e->vm;
    for (unsigned i = 0; i < vm->mem.ram_count; i++) {
        if (track(e, "RAM", vm->mem.ram[i].host, vm->mem.ram[i].size, (int)i, (int)i, false))
            return -1;
        vm->mem.host_dirty[i] = calloc(bitmap_longs(vm->mem.ram[i].size), sizeof(long));
        if (!vm->mem.host_dirty[i])
            return -1;
    }
    /* slate writes the boot tables only at boot: the dirty log sees everything after */
    if (track(e, "the boot tables", vm->boot_tables, SLATE_BOOT_TABLES_SIZE, (int)vm->mem.ram_count + 1, -1, false))
        return -1;
    for (unsigned i = 0; i < vm->device_count; i++) {
        struct device *dev = &vm->devices[i];
        /* The display's window is written by the guest alone; the others' by their devices too. */
        uint64_t size = dev->ops->window_dirty_log ? dev->window_bytes : (dev->ops->window_size + PAGE - 1) & ~(PAGE - 1);
        if (dev->window && track(e, dev->name, dev->window, size, (int)dev->window_slot, -1,
                                 !dev->ops->window_dirty_log))
            return -1;
    }
    return 0;
}

static void get_dirty_log(struct vm *vm, struct tracked *t)
{
    struct kvm_dirty_log log = {.slot = (uint32_t)t->slot, .dirty_bitmap = t->log};
    if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        memset(t->log, 0xFF, bitmap_longs(t->size) * sizeof(long)); /* unknown: all of it */
}

/* Adds what KVM logged (and slate wrote) since the last look to t->written. Lock held. */
static void collect(struct vm *vm, struct tracked *t)
{
    get_dirty_log(vm, t);
    _Atomic unsigned long *mine = t->ram >= 0 ? vm->mem.host_dirty[t->ram] : NULL;
    for (uint64_t i = 0; i < bitmap_longs(t->size); i++) {
        unsigned long bits = t->log[i] | (mine ? atomic_exchange(&mine[i], 0) : 0);
        t->written[i] |= bits;
        t->for_device[i] |= t->log[i];
    }
}

/* The snapshot's copy: RAM pages that were ever touched, the rest whole. */
static void take_copy(struct vm *vm, struct tracked *t)
{
    uint64_t pages = t->size / PAGE;
    unsigned char *resident = t->ram >= 0 ? malloc(pages) : NULL;
    if (resident && mincore(t->host, t->size, resident) < 0)
        memset(resident, 1, pages);
    for (uint64_t p = 0; p < pages; p++)
        if (!resident || (resident[p] & 1))
            memcpy(t->shadow + p * PAGE, t->host + p * PAGE, PAGE);
    free(resident);
    pthread_mutex_lock(&t->lock);
    get_dirty_log(vm, t); /* from here on the log counts the case's writes */
    memcpy(t->for_device, t->log, bitmap_longs(t->size) * sizeof(long));
    memset(t->written, 0, bitmap_longs(t->size) * sizeof(long));
    if (t->ram >= 0)
        memset((void *)vm->mem.host_dirty[t->ram], 0, bitmap_longs(t->size) * sizeof(long));
    pthread_mutex_unlock(&t->lock);
}

/* Puts back every page the case wrote. Returns the pages copied. */
static uint64_t put_back(struct vm *vm, struct tracked *t)
{
    uint64_t copied = 0;
    pthread_mutex_lock(&t->lock);
    collect(vm, t);
    for (uint64_t p = 0; p < t->size / PAGE; p++) {
        uint8_t *page = t->host + p * PAGE, *saved = t->shadow + p * PAGE;
        bool written = (t->written[p / LONG_BITS] >> (p % LONG_BITS)) & 1;
        if (written || (t->compare && memcmp(page, saved, PAGE))) {
            memcpy(page, saved, PAGE);
            t->for_device[p / LONG_BITS] |= 1UL << (p % LONG_BITS); /* the screen shows it again */
            copied++;
        }
    }
    memset(t->written, 0, bitmap_longs(t->size) * sizeof(long));
    pthread_mutex_unlock(&t->lock);
    return copied;
}

bool each_window_dirty(struct vm *vm, unsigned slot, unsigned long *bitmap, bool *handled)
{
    struct each *e = vm->each;
    *handled = false;
    if (!e || !e->snapshotted)
        return false;
    for (unsigned i = 0; i < e->mem_count; i++) {
        struct tracked *t = &e->mem[i];
        if (t->slot != (int)slot)
            continue;
        pthread_mutex_lock(&t->lock);
        collect(vm, t);
        memcpy(bitmap, t->for_device, bitmap_longs(t->size) * sizeof(long));
        memset(t->for_device, 0, bitmap_longs(t->size) * sizeof(long));
        pthread_mutex_unlock(&t->lock);
        *handled = true;
        return true;
    }
    return false;
}

/* ---- running cases --------------------------------------------------------------------------- */

/* Case n's file, cut to the kernel's buffer. NULL (logged) when it cannot be read. */
static uint8_t *case_input(struct each *e, unsigned n, size_t *len)
{
    const char *path = e->cases[n - 1];
    uint8_t *data = read_case(path, len);
    if (data && *len > e->buffer_size) {
        log_warn("--each: %s is %zu bytes; the kernel's buffer holds %" PRIu64 ": the case is cut", path, *len,
                 e->buffer_size);
        *len = e->buffer_size;
    }
    return data;
}

/* Case n's bytes in the kernel's buffer (its registers already say n and len), its log, its
 * timer. Takes data. */
static int start_case(struct each *e, unsigned n, uint8_t *data, size_t len)
{
    struct vm *vm = e->vm;
    const char *path = e->cases[n - 1];
    size_t done = 0;
    for (unsigned i = 0; i < e->piece_count && done < len; i++) {
        size_t n_bytes = len - done < e->pieces[i].len ? len - done : e->pieces[i].len;
        memcpy(e->pieces[i].host, data + done, n_bytes);
        memory_note_write(&vm->mem, e->pieces[i].host, n_bytes);
        done += n_bytes;
    }
    free(data);
    /* Its serial output in its own file, N-NAME.log. */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[256];
    snprintf(name, sizeof(name), "%u-%.200s.log", n, base);
    struct outfile out;
    e->log_fd = outfile_create_at(&out, e->out_dirfd, name);
    if (e->log_fd >= 0 && outfile_place(&out, true) < 0) {
        close(e->log_fd);
        e->log_fd = -1;
    }
    if (e->log_fd >= 0)
        outfile_finish(&out);
    else
        log_warn("--each-out %s: cannot write %s", vm->cfg->each_out, name);
    console_redirect(vm->console, e->log_fd);
    e->report = open_memstream(&e->report_text, &e->report_len);
    vm->report_out = e->report;
    e->current = n;
    e->reason[0] = 0;
    vm->end_reason[0] = 0;
    vm->crash_cpu = -1;
    atomic_store(&e->status, -1);
    double t = vm->cfg->case_timeout_s;
    struct itimerspec when = {.it_value = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)}};
    if (when.it_value.tv_sec == 0 && when.it_value.tv_nsec == 0)
        when.it_value.tv_nsec = 1;
    timerfd_settime(e->timer.fd, 0, &when, NULL);
    e->started_ns = clock_now_ns();
    return 0;
}

/* A crash or hang report the case left, as N-NAME.report beside its log (named in out). */
static void keep_report(struct each *e, FILE *tap)
{
    struct vm *vm = e->vm;
    vm->report_out = NULL;
    if (!e->report)
        return;
    fclose(e->report);
    e->report = NULL;
    if (e->report_len) {
        const char *path = e->cases[e->current - 1], *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        char name[256];
        snprintf(name, sizeof(name), "%u-%.200s.report", e->current, base);
        struct outfile out;
        int fd = outfile_create_at(&out, e->out_dirfd, name);
        bool ok = fd >= 0 && write(fd, e->report_text, e->report_len) == (ssize_t)e->report_len;
        if (fd >= 0 && close(fd) < 0)
            ok = false;
        if (ok && outfile_place(&out, true) == 0)
            fprintf(tap, "# report: %s/%s\n", vm->cfg->each_out, name);
        else
            log_warn("--each-out %s: cannot write %s", vm->cfg->each_out, name);
        if (fd >= 0)
            outfile_finish(&out);
    }
    free(e->report_text);
    e->report_text = NULL, e->report_len = 0;
}

/* Prints the TAP blocks that are ready, in case order. */
static void print_ready(struct each *e)
{
    while (e->printed < e->count && e->results[e->printed + 1]) {
        e->printed++;
        fputs(e->results[e->printed], stdout);
        free(e->results[e->printed]);
        e->results[e->printed] = NULL;
    }
    fflush(stdout);
}

/* Case n's TAP block is known. A worker sends it to the parent, ended by "#~end N". */
static void deliver(struct each *e, unsigned n, char *block)
{
    if (e->vm->cfg->worker_count) {
        printf("%s#~end %u\n", block, n);
        fflush(stdout);
        free(block);
        return;
    }
    if (n < 1 || n > e->count || e->results[n]) {
        free(block);
        return;
    }
    if (!strncmp(block, "not ok", 6))
        e->failed++;
    e->results[n] = block;
    print_ready(e);
}

/* The TAP line for the case that ended, and its report's name. */
static void report_case(struct each *e)
{
    struct vm *vm = e->vm;
    int status = atomic_load(&e->status);
    double ms = (double)(clock_now_ns() - e->started_ns) / 1e6;
    const char *path = e->cases[e->current - 1];
    char *block = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&block, &size);
    if (!out) {
        log_error("--each: out of memory");
        return;
    }
    if (status == 0)
        fprintf(out, "ok %u - %s\n", e->current, path);
    else if (status == EXIT_TIMEOUT)
        fprintf(out, "not ok %u - %s # timed out after %.0f ms (--case-timeout)\n", e->current, path, ms);
    else if (status == EXIT_CRASH)
        fprintf(out, "not ok %u - %s # %s\n", e->current, path, vm->end_reason[0] ? vm->end_reason : "crashed");
    else if (status == VM_STATUS_RESET)
        fprintf(out, "not ok %u - %s # the kernel reset the machine\n", e->current, path);
    else
        fprintf(out, "not ok %u - %s # exit %d\n", e->current, path, status);
    keep_report(e, out);
    fclose(out);
    e->ran++;
    deliver(e, e->current, block);
    struct itimerspec off = {0};
    timerfd_settime(e->timer.fd, 0, &off, NULL);
    console_redirect(vm->console, e->console_fd);
    if (e->log_fd >= 0)
        close(e->log_fd);
    e->log_fd = -1;
}

/* Puts the machine back to the snapshot, with case n's number and length in the caller's RAX
 * and RDX, and starts it. */
static int next_case(struct each *e, unsigned n)
{
    struct vm *vm = e->vm;
    size_t len = 0;
    uint8_t *data = case_input(e, n, &len);
    if (!data)
        return -1;
    int64_t started = clock_now_ns();
    uint64_t pages = 0;
    for (unsigned i = 0; i < e->mem_count; i++)
        pages += put_back(vm, &e->mem[i]);
    struct kvm_regs *regs = &e->img.cpus[atomic_load(&e->caller)].st.regs;
    regs->rax = n, regs->rdx = len;
    int rc = machine_apply(vm, &e->img, true);
    e->reset_ns += clock_now_ns() - started;
    e->reset_pages += pages;
    if (rc) {
        free(data);
        return -1;
    }
    return start_case(e, n, data, len);
}

static void finish(struct each *e, int status)
{
    struct vm *vm = e->vm;
    e->finishing = true;
    vm->crash_cpu = -1; /* the cases' crashes are in their TAP lines: the status says how many failed */
    if (!vm->cfg->worker_count) {
        for (unsigned n = e->printed + 1; n <= e->count && e->worker_count; n++)
            if (!e->results[n] && asprintf(&e->results[n], "not ok %u - %s # its worker ended without running it\n",
                                           n, e->cases[n - 1]) >= 0)
                e->failed++;
        print_ready(e);
        if (status == 0 && e->failed)
            status = EXIT_CASES_FAILED;
        if (e->ran > 1)
            printf("# %u case%s, %u failed; a reset took %.0f us on average (%.1f pages)%s\n", e->count,
                   e->count == 1 ? "" : "s", e->failed, (double)e->reset_ns / 1e3 / (e->ran - 1),
                   (double)e->reset_pages / (e->ran - 1), e->worker_count ? " in this process" : "");
        fflush(stdout);
    }
    vm_request_stop(vm, status);
}

static int spawn_workers(struct each *e);

/* The kernel reached SLATE_HC_SNAPSHOT (or a --jobs worker was restored there): capture the
 * machine and start this process's first case. */
static void take_snapshot(struct each *e)
{
    struct vm *vm = e->vm;
    if (machine_capture(vm, &e->img)) {
        log_error("--each: the machine cannot be captured (see above)");
        finish(e, EXIT_FAILURE_SLATE);
        return;
    }
    for (unsigned i = 0; i < e->mem_count; i++)
        take_copy(vm, &e->mem[i]);
    e->snapshotted = true;
    if (vm->cfg->jobs > 1 && spawn_workers(e)) {
        finish(e, EXIT_FAILURE_SLATE);
        return;
    }
    if (e->first > e->count) { /* a worker with nothing to do */
        finish(e, 0);
        return;
    }
    size_t len = 0;
    uint8_t *data = case_input(e, e->first, &len);
    struct vcpu *cpu = &vm->vcpus[atomic_load(&e->caller)];
    struct cpu_state st = {0};
    if (data && cpu_state_get(cpu, CPU_REGS, &st, NULL) == 0) { /* the first case runs on from here */
        st.regs.rax = e->first, st.regs.rdx = len;
        cpu_state_put(cpu, CPU_REGS, &st, NULL);
    }
    if (!data || start_case(e, e->first, data, len))
        finish(e, EXIT_FAILURE_SLATE);
}

/* ---- --jobs -------------------------------------------------------------------------------- */

/* The workers are all done: cases none of them reported fail, and the run ends. */
static void workers_done(struct each *e)
{
    if (!e->own_done)
        return; /* this process's own cases end the run (each_serve) */
    finish(e, 0);
    vm_release(e->vm, HOLD_SNAPSHOT);
}

/* A worker's TAP blocks, each ended by "#~end N"; its end. Event thread. */
static void on_worker_output(void *opaque, uint32_t events)
{
    struct worker *w = opaque;
    struct each *e = w->owner;
    (void)events;
    char chunk[4096];
    ssize_t n = read(w->pipe.fd, chunk, sizeof(chunk));
    if (n > 0) {
        char *grown = realloc(w->buf, w->len + (size_t)n + 1);
        if (!grown)
            return;
        w->buf = grown;
        memcpy(w->buf + w->len, chunk, (size_t)n);
        w->len += (size_t)n;
        w->buf[w->len] = 0;
        for (char *end; (end = strstr(w->buf, "#~end "));) {
            char *eol = strchr(end, '\n');
            if (!eol)
                break;
            unsigned number = (unsigned)strtoul(end + 6, NULL, 10);
            *end = 0;
            deliver(e, number, strdup(w->buf));
            w->len -= (size_t)(eol + 1 - w->buf);
            memmove(w->buf, eol + 1, w->len + 1);
        }
        return;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    event_remove(&e->vm->loop, &w->pipe);
    close(w->pipe.fd);
    w->pipe.fd = -1;
    int status = 0;
    if (waitpid(w->pid, &status, 0) == w->pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        log_warn("--jobs: worker %u ended with %s %d", (unsigned)(w - e->workers) + 1,
                 WIFSIGNALED(status) ? "signal" : "status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    w->pid = 0;
    if (--e->workers_left == 0)
        workers_done(e);
}

/* --jobs N: the snapshot in an unnamed file, and N - 1 slates restored from it (sharing its
 * pages copy-on-write: ,lazy), each running every Nth case and reporting back through a pipe. */
static int spawn_workers(struct each *e)
{
    struct vm *vm = e->vm;
    const struct slate_config *cfg = vm->cfg;
    const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || snapshot_write(vm, fd, atomic_load(&e->caller))) {
        log_error("--jobs: cannot write the snapshot for the workers in %s: %s", tmpdir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char restore[64], timeout[32], shard[32];
    snprintf(restore, sizeof(restore), "/dev/fd/%d,lazy", fd);
    snprintf(timeout, sizeof(timeout), "%.3f", cfg->case_timeout_s);
    char **argv = calloc(16 + e->count, sizeof(char *));
    if (!argv) {
        close(fd);
        return -1;
    }
    unsigned argc = 0;
    argv[argc++] = "slate";
    argv[argc++] = "--restore";
    argv[argc++] = restore;
    argv[argc++] = "--each-worker";
    unsigned shard_at = argc++;
    argv[argc++] = "--each-out";
    argv[argc++] = (char *)cfg->each_out;
    argv[argc++] = "--case-timeout";
    argv[argc++] = timeout;
    argv[argc++] = "--serial";
    argv[argc++] = "none";
    argv[argc++] = "--";
    for (unsigned i = 0; i < e->count; i++)
        argv[argc++] = e->cases[i];
    argv[argc] = NULL;
    int rc = 0;
    for (unsigned k = 1; k < cfg->jobs && !rc; k++) {
        struct worker *w = &e->workers[k - 1];
        int p[2];
        snprintf(shard, sizeof(shard), "%u/%u", k, cfg->jobs);
        argv[shard_at] = shard;
        if (pipe2(p, O_CLOEXEC) < 0) {
            rc = -1;
            break;
        }
        w->owner = e;
        w->pid = fork();
        if (w->pid == 0) { /* the child: only what is safe after fork, then exec */
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0 || fcntl(fd, F_SETFD, 0) < 0)
                _exit(EXIT_FAILURE_SLATE);
            execv("/proc/self/exe", argv);
            _exit(EXIT_FAILURE_SLATE);
        }
        close(p[1]);
        if (w->pid < 0) {
            close(p[0]);
            rc = -1;
            break;
        }
        w->pipe = (struct event_source){.fd = p[0], .fn = on_worker_output, .opaque = w};
        if (event_add(&vm->loop, &w->pipe, EPOLLIN)) {
            close(p[0]);
            w->pipe.fd = -1;
            rc = -1;
            break;
        }
        e->worker_count++, e->workers_left++;
    }
    if (rc)
        log_error("--jobs: cannot start a worker: %s", strerror(errno));
    free(argv);
    close(fd); /* the workers hold it open: it disappears with the last of them */
    return rc;
}

void each_serve(struct vm *vm)
{
    struct each *e = vm->each;
    if (!vm_hold(vm, HOLD_SNAPSHOT))
        return;
    if (!e->snapshotted && atomic_load(&e->caller) >= 0) {
        take_snapshot(e);
    } else if (e->snapshotted && e->current && atomic_load(&e->status) != -1 && !e->finishing && !e->own_done) {
        report_case(e);
        if (e->current + e->stride <= e->count) {
            if (next_case(e, e->current + e->stride))
                finish(e, EXIT_FAILURE_SLATE);
        } else if (e->workers_left) {
            e->own_done = true; /* held until the workers are done (on_worker_output) */
            return;
        } else {
            finish(e, 0);
        }
    }
    if (!e->own_done)
        vm_release(vm, HOLD_SNAPSHOT);
}

/* The kernel's buffer [buf, buf+size), mapped as the caller may write it. A SLATE_* status. */
static int64_t map_buffer(struct each *e, struct vcpu *cpu, uint64_t buf, uint64_t size)
{
    if (size > CASE_BUFFER_MAX)
        return SLATE_EINVAL;
    struct caller_view view;
    if (!vcpu_caller_view(cpu, &view))
        return SLATE_EINVAL;
    unsigned max = (unsigned)(size / PAGE + 2), count = 0;
    struct guest_piece *pieces = calloc(max, sizeof(*pieces));
    if (!pieces)
        return SLATE_EIO;
    if (size && vcpu_map_as_caller(cpu, &view, buf, size, true, pieces, max, &count) < size) {
        free(pieces);
        return SLATE_EFAULT;
    }
    free(e->pieces);
    e->pieces = pieces, e->piece_count = count, e->buffer_size = size;
    return 0;
}

int64_t each_hypercall(struct vm *vm, struct vcpu *cpu, const uint64_t args[4])
{
    struct each *e = vm->each;
    if (e->snapshotted || atomic_load(&e->caller) >= 0) {
        log_warn_limited(&vm->guest_limit, "cpu %u: SLATE_HC_SNAPSHOT again: refused (SLATE_EBUSY): --each "
                         "snapshots once", cpu->index);
        return SLATE_EBUSY;
    }
    int64_t rc = map_buffer(e, cpu, args[0], args[1]);
    if (rc)
        return rc;
    atomic_store(&e->caller, (int)cpu->index);
    vm_request_hold(vm, HOLD_SNAPSHOT);
    eventfd_write(vm->snapshot_wake.fd, 1);
    return 0;
}

int each_restored(struct vm *vm, unsigned caller)
{
    struct each *e = vm->each;
    struct vcpu *cpu = &vm->vcpus[caller];
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_REGS, &st, NULL) || map_buffer(e, cpu, st.regs.rdi, st.regs.rsi)) {
        log_error("--each-worker: the snapshot's caller has no buffer slate can fill");
        return -1;
    }
    atomic_store(&e->caller, (int)caller);
    take_snapshot(e);
    return 0;
}

bool each_case_stop(struct vm *vm, int status)
{
    struct each *e = vm->each;
    /* A signal, --timeout or slate's own failure ends the whole run; so does anything before
     * the snapshot or after the last case. */
    bool case_end = (status >= 0 && status <= EXIT_GUEST_MAX) || status == EXIT_CRASH ||
                    status == VM_STATUS_RESET || status == EXIT_TIMEOUT;
    if (case_end && !e->snapshotted && !e->finishing) {
        /* The kernel ended before its cases: that is a failure whatever its exit code. */
        e->finishing = true;
        printf("Bail out! the kernel stopped before calling SLATE_HC_SNAPSHOT (%s)\n",
               status == EXIT_CRASH ? "it crashed" : status == VM_STATUS_RESET ? "it reset the machine" : "it exited");
        fflush(stdout);
        vm_request_stop(vm, status == EXIT_CRASH ? EXIT_CRASH : EXIT_CASES_FAILED);
        return true;
    }
    if (!case_end || !e->snapshotted || e->finishing || !e->current)
        return false;
    if (status == EXIT_TIMEOUT && !e->reason[0]) /* the global --timeout, not the case's */
        return false;
    int running = -1;
    if (atomic_compare_exchange_strong(&e->status, &running, status)) {
        vm_request_hold(vm, HOLD_SNAPSHOT);
        eventfd_write(vm->snapshot_wake.fd, 1);
    }
    return true;
}

static void on_case_timeout(void *opaque, uint32_t events)
{
    struct each *e = opaque;
    (void)events;
    uint64_t expirations;
    if (read(e->timer.fd, &expirations, sizeof(expirations)) <= 0 || atomic_load(&e->status) != -1)
        return;
    snprintf(e->reason, sizeof(e->reason), "--case-timeout");
    vm_report(e->vm, e->report ? e->report : stderr, "--case-timeout expired: the case did not finish");
    each_case_stop(e->vm, EXIT_TIMEOUT);
}

int each_attach(struct vm *vm)
{
    const struct slate_config *cfg = vm->cfg;
    struct each *e = calloc(1, sizeof(*e));
    if (!e) {
        log_error("out of memory");
        return -1;
    }
    vm->each = e;
    e->vm = vm;
    e->log_fd = e->console_fd = e->out_dirfd = -1;
    e->timer.fd = -1;
    atomic_store(&e->caller, -1);
    atomic_store(&e->status, -1);
    for (unsigned i = 0; i < cfg->disk_count; i++) {
        if (!cfg->disks[i].read_only && !cfg->disks[i].overlay) {
            log_error("--each: --disk %s is writable: give it ,snapshot (or ,ro) so that every case starts "
                      "from the same disk", cfg->disks[i].path);
            return -1;
        }
    }
    if (collect_cases(e, cfg) || track_all(e))
        return -1;
    bool worker = cfg->worker_count > 0;
    e->stride = worker ? cfg->worker_count : cfg->jobs;
    e->first = worker ? cfg->worker_index + 1 : 1;
    if (!(e->results = calloc(e->count + 1, sizeof(char *)))) {
        log_error("out of memory");
        return -1;
    }
    if (mkdir(cfg->each_out, 0777) < 0 && errno != EEXIST) {
        log_error("--each-out %s: %s", cfg->each_out, strerror(errno));
        return -1;
    }
    e->out_dirfd = open(cfg->each_out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e->out_dirfd < 0) {
        log_error("--each-out %s: %s", cfg->each_out, strerror(errno));
        return -1;
    }
    e->timer = (struct event_source){.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
                                     .fn = on_case_timeout, .opaque = e};
    if (e->timer.fd < 0 || event_add(&vm->loop, &e->timer, EPOLLIN)) {
        log_error("--case-timeout: timerfd: %s", strerror(errno));
        return -1;
    }
    if (worker) { /* restored past the boot: nothing is printed before the first case */
        console_redirect(vm->console, -1);
        return 0;
    }
    /* stdout is TAP's: what the kernel prints before the cases goes to boot.log. */
    struct outfile out;
    int boot_fd = outfile_create_at(&out, e->out_dirfd, "boot.log");
    if (boot_fd < 0 || outfile_place(&out, true) < 0) {
        log_error("--each-out %s: cannot write boot.log", cfg->each_out);
        if (boot_fd >= 0)
            close(boot_fd);
        return -1;
    }
    outfile_finish(&out);
    e->console_fd = boot_fd;
    console_redirect(vm->console, boot_fd);
    printf("1..%u\n", e->count);
    fflush(stdout);
    return 0;
}

void each_detach(struct vm *vm)
{
    struct each *e = vm->each;
    if (!e)
        return;
    vm->each = NULL;
    if (e->console_fd >= 0 && vm->console && vm->console->out_fd == e->console_fd)
        console_redirect(vm->console, -1);
    if (e->console_fd >= 0)
        close(e->console_fd);
    if (e->log_fd >= 0)
        close(e->log_fd);
    vm->report_out = NULL;
    if (e->report)
        fclose(e->report);
    free(e->report_text);
    if (e->timer.fd >= 0)
        close(e->timer.fd);
    if (e->out_dirfd >= 0)
        close(e->out_dirfd);
    for (unsigned i = 0; i < e->mem_count; i++) {
        struct tracked *t = &e->mem[i];
        free(t->written);
        free(t->log);
        free(t->for_device);
        if (t->shadow)
            munmap(t->shadow, t->size);
        pthread_mutex_destroy(&t->lock);
    }
    for (unsigned i = 0; i < vm->mem.ram_count; i++) {
        free((void *)vm->mem.host_dirty[i]);
        vm->mem.host_dirty[i] = NULL;
    }
    for (unsigned i = 0; i < e->worker_count; i++) {
        struct worker *w = &e->workers[i];
        if (w->pid > 0) { /* the run ended early (a signal, a failure): so do they */
            kill(w->pid, SIGTERM);
            waitpid(w->pid, NULL, 0);
        }
        if (w->pipe.fd >= 0)
            close(w->pipe.fd);
        free(w->buf);
    }
    for (unsigned i = 0; e->results && i <= e->count; i++)
        free(e->results[i]);
    free(e->results);
    for (unsigned i = 0; i < e->count; i++)
        free(e->cases[i]);
    free(e->cases);
    free(e->pieces);
    machine_image_free(&e->img);
    free(e);
}
