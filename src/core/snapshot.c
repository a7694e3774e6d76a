/* snapshot.c - see snapshot.h. The file's sections (snapfile.h):
 *
 *   machine 0   RAM size, CPUs, devices, the caller, the guest clock, then the saved command line
 *   plan 0      the boot plan (struct boot_plan): what the kernel was given at boot
 *   cpu N       struct cpu_image: every part of CPU N's state
 *   device N    its name, type, state layout, interrupt lines, then what device_ops.save wrote
 *   memory N    RAM regions, the boot tables, the info block and device windows: pages written
 *   end
 *
 * Raw structs are checked for their exact size: a file from a slate whose structs differ is
 * refused by name rather than misread. */
#include "snapshot.h"

#include "log.h"
#include "outfile.h"
#include "vm.h"

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
#include <time.h>
#include <unistd.h>

#define PAGE 4096ULL
#define NO_CALLER UINT32_MAX

struct snap_machine {
    uint64_t ram_size;
    uint32_t smp, device_count;
    uint32_t caller; /* NO_CALLER: saved by the monitor */
    uint32_t argc;
    int64_t clock_ns;
    uint64_t user_hypercalls;
    uint64_t tsc_khz;
    int64_t boot_unix_ns;
    uint64_t boot_tsc;
    uint32_t have_kvmclock, pad;
    struct kvm_clock_data kvmclock;
    /* followed by argc NUL-terminated strings */
};

struct snap_device {
    char name[16];
    uint16_t type, state_version;
    uint32_t state_len;
    uint32_t vector[DEVICE_MAX_IRQS], cpu[DEVICE_MAX_IRQS];
    /* followed by state_len bytes */
};

struct snapshot {
    char path[LOAD_PATH_MAX];
    int fd;
    const uint8_t *bytes;
    size_t size;
    bool lazy;
    struct snap_file file;
    const struct snap_machine *machine;
    char *argv_copy;
    char **argv;
};

/* ---- capture and apply --------------------------------------------------------------------- */

void machine_image_free(struct machine_image *img)
{
    for (unsigned i = 0; i < img->device_count; i++)
        free(img->devices[i].state.data);
    free(img->cpus);
    *img = (struct machine_image){0};
}

int machine_capture(struct vm *vm, struct machine_image *img)
{
    *img = (struct machine_image){0};
    for (unsigned i = 0; i < vm->device_count; i++, img->device_count++) {
        struct device *dev = &vm->devices[i];
        struct device_image *d = &img->devices[i];
        if (!dev->ops->save) {
            log_error("snapshot: %s cannot be saved (its device has no snapshot support)", dev->name);
            machine_image_free(img);
            return -1;
        }
        if (dev->ops->save(dev, &d->state) || d->state.failed) {
            if (d->state.failed)
                log_error("snapshot: %s: out of memory", dev->name);
            img->device_count++;
            machine_image_free(img);
            return -1;
        }
        for (unsigned l = 0; l < DEVICE_MAX_IRQS; l++)
            d->vector[l] = atomic_load(&dev->irq[l].vector), d->cpu[l] = atomic_load(&dev->irq[l].cpu);
    }
    img->cpus = calloc(vm->vcpu_count, sizeof(*img->cpus));
    if (!img->cpus) {
        log_error("snapshot: out of memory");
        machine_image_free(img);
        return -1;
    }
    for (unsigned i = 0; i < vm->vcpu_count; i++, img->cpu_count++) {
        const char *failed = "?";
        int rc = cpu_state_get(&vm->vcpus[i], CPU_ALL, &img->cpus[i].st, &failed);
        if (rc) {
            log_error("snapshot: cpu %u: %s: %s", i, failed, strerror(-rc));
            machine_image_free(img);
            return -1;
        }
        img->cpus[i].started = atomic_load(&vm->vcpus[i].started);
    }
    img->have_kvmclock = ioctl(vm->vm_fd, KVM_GET_CLOCK, &img->kvmclock) == 0;
    img->clock_ns = vm_clock_ns(vm);
    img->user_hypercalls = atomic_load(&vm->user_hypercalls);
    return 0;
}

int machine_apply(struct vm *vm, struct machine_image *img, bool reset)
{
    /* The guest clock first: a timer re-armed below counts from it. */
    vm->boot_mono_ns = clock_now_ns() - img->clock_ns;
    /* kvmclock: slate's CPUID does not offer it, so only a restore (once) bothers with it. */
    if (img->have_kvmclock && !reset) {
        struct kvm_clock_data clock = {.clock = img->kvmclock.clock};
        if (ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
            log_warn("snapshot: KVM_SET_CLOCK: %s (kvmclock may jump)", strerror(errno));
    }
    for (unsigned i = 0; i < vm->device_count; i++) {
        struct device *dev = &vm->devices[i];
        struct device_image *d = &img->devices[i];
        d->state.pos = 0, d->state.failed = false;
        if (dev->ops->load(dev, &d->state))
            return -1;
        for (unsigned l = 0; l < dev->ops->irq_count; l++)
            if (atomic_load(&dev->irq[l].vector) != d->vector[l] || atomic_load(&dev->irq[l].cpu) != d->cpu[l])
                device_route(dev, l, d->vector[l], d->cpu[l]);
    }
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        struct vcpu *cpu = &vm->vcpus[i];
        const char *failed = "?";
        int rc = reset ? cpu_state_put_parked(cpu, &img->cpus[i].st, vm->sync_regs, &failed)
                       : cpu_state_put(cpu, CPU_ALL, &img->cpus[i].st, &failed);
        if (rc) {
            log_error("snapshot: cpu %u: %s: %s", i, failed, strerror(-rc));
            return -1;
        }
        atomic_store(&cpu->started, img->cpus[i].started != 0);
        cpu->crashed[0] = 0;
        cpu->exit_pending = false;
    }
    atomic_store(&vm->user_hypercalls, img->user_hypercalls);
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------- */

static bool page_is_zero(const uint8_t *p)
{
    static const uint8_t zero[PAGE];
    return !memcmp(p, zero, PAGE);
}

/* The pages of [host, host+size) worth saving: touched (resident; for RAM mapped from a file,
 * every page) and not all zero. NULL when out of memory. */
static uint8_t *pages_present(const uint8_t *host, uint64_t size, bool all_candidates)
{
    uint64_t pages = size / PAGE;
    uint8_t *present = calloc((pages + 63) / 64 * 8, 1);
    unsigned char *resident = all_candidates ? NULL : malloc(pages);
    if (!present || (!all_candidates && !resident)) {
        free(present);
        free(resident);
        return NULL;
    }
    if (resident && mincore((void *)host, size, resident) < 0)
        memset(resident, 1, pages); /* cannot tell: look at every page */
    for (uint64_t p = 0; p < pages; p++)
        if ((!resident || (resident[p] & 1)) && !page_is_zero(host + p * PAGE))
            present[p / 8] |= (uint8_t)(1u << (p % 8));
    free(resident);
    return present;
}

static void write_memory(struct snap_writer *w, uint32_t *index, uint64_t gpa, uint64_t size,
                         const uint8_t *host, bool all_candidates)
{
    uint8_t *present = pages_present(host, size, all_candidates);
    if (!present) {
        w->error = w->error ? w->error : -ENOMEM;
        return;
    }
    snap_write_memory(w, (*index)++, gpa, size, host, present);
    free(present);
}

int snapshot_write(struct vm *vm, int fd, int caller)
{
    struct machine_image img;
    if (machine_capture(vm, &img))
        return -EINVAL;
    if (caller >= 0) {
        img.cpus[caller].st.regs.rax = 1; /* the restored machine learns which side it is on */
    }
    struct snap_writer w;
    snap_writer_begin(&w, fd);
    const struct slate_config *cfg = vm->cfg;
    struct snap_machine m = {
        .ram_size = cfg->ram_size, .smp = vm->vcpu_count, .device_count = vm->device_count,
        .caller = caller >= 0 ? (uint32_t)caller : NO_CALLER, .argc = (uint32_t)(cfg->argc - 1),
        .clock_ns = img.clock_ns, .user_hypercalls = img.user_hypercalls, .tsc_khz = vm->tsc_khz,
        .boot_unix_ns = vm->boot_unix_ns, .boot_tsc = vm->boot_tsc, .have_kvmclock = img.have_kvmclock,
        .kvmclock = img.kvmclock,
    };
    snap_section_begin(&w, "machine", 0, 1);
    snap_append(&w, &m, sizeof(m));
    for (int i = 1; i < cfg->argc; i++)
        snap_append(&w, cfg->argv[i], strlen(cfg->argv[i]) + 1);
    snap_section_end(&w);
    snap_write_section(&w, "plan", 0, 1, &vm->plan, sizeof(vm->plan));
    for (unsigned i = 0; i < img.cpu_count; i++)
        snap_write_section(&w, "cpu", i, 1, &img.cpus[i], sizeof(img.cpus[i]));
    for (unsigned i = 0; i < img.device_count; i++) {
        const struct device *dev = &vm->devices[i];
        const struct device_image *d = &img.devices[i];
        struct snap_device head = {.type = dev->ops->type, .state_version = dev->ops->state_version,
                                   .state_len = (uint32_t)d->state.len};
        memcpy(head.name, dev->name, sizeof(head.name));
        memcpy(head.vector, d->vector, sizeof(head.vector));
        memcpy(head.cpu, d->cpu, sizeof(head.cpu));
        snap_section_begin(&w, "device", i, 1);
        snap_append(&w, &head, sizeof(head));
        snap_append(&w, d->state.data, d->state.len);
        snap_section_end(&w);
    }
    uint32_t index = 0;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        write_memory(&w, &index, vm->mem.ram[i].gpa, vm->mem.ram[i].size, vm->mem.ram[i].host,
                     vm->ram_from_file);
    for (unsigned i = 0; i < vm->mem.extra_count; i++)
        write_memory(&w, &index, vm->mem.extra[i].gpa, vm->mem.extra[i].size, vm->mem.extra[i].host, true);
    for (unsigned i = 0; i < vm->device_count; i++)
        if (vm->devices[i].window)
            write_memory(&w, &index, vm->devices[i].window_gpa, vm->devices[i].window_bytes,
                         vm->devices[i].window, false);
    int rc = snap_writer_end(&w);
    machine_image_free(&img);
    return rc;
}

/* Writes the snapshot into the output file outfile_create made (fd), and puts it in place: all or
 * nothing. 0 or -errno (fd < 0: that error). */
static int save_to(struct vm *vm, struct outfile *out, int fd, bool replace, int caller, uint64_t *bytes)
{
    if (fd < 0)
        return fd;
    int rc = snapshot_write(vm, fd, caller);
    struct stat st;
    *bytes = rc == 0 && fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        rc = outfile_place(out, replace);
    outfile_finish(out);
    return rc;
}

/* --snapshot PATH, on the event thread with the machine held. */
static void save_for_caller(struct vm *vm, int caller)
{
    const char *path = vm->cfg->snapshot_path;
    int64_t started = clock_now_ns();
    uint64_t bytes = 0;
    struct outfile out;
    int rc = save_to(vm, &out, outfile_create(&out, path), true, caller, &bytes);
    if (rc == 0) {
        log_info("snapshot: saved %s (%.1f MiB in %.1f ms)", path, (double)bytes / (1 << 20),
                 (double)(clock_now_ns() - started) / 1e6);
        return;
    }
    if (rc != -EINVAL) /* (-EINVAL: a device or CPU said why already) */
        log_error("--snapshot %s: %s", path, strerror(-rc));
    struct vcpu *cpu = &vm->vcpus[caller];
    struct cpu_state st = {0};
    if (cpu_state_get(cpu, CPU_REGS, &st, NULL) == 0) {
        st.regs.rax = (uint64_t)(int64_t)SLATE_EIO;
        cpu_state_put(cpu, CPU_REGS, &st, NULL);
    }
}

int snapshot_save_at(struct vm *vm, int dirfd, const char *name, bool replace, char *msg, size_t msglen)
{
    if (!vm_hold(vm, HOLD_SNAPSHOT)) {
        snprintf(msg, msglen, "error: the machine is stopping");
        return -ECANCELED;
    }
    uint64_t bytes = 0;
    struct outfile out;
    int rc = save_to(vm, &out, outfile_create_at(&out, dirfd, name), replace, -1, &bytes);
    vm_release(vm, HOLD_SNAPSHOT);
    if (rc == 0)
        snprintf(msg, msglen, "saved %s/%s (%.1f MiB)", vm->cfg->dump_dir, name, (double)bytes / (1 << 20));
    else if (rc == -EEXIST)
        snprintf(msg, msglen, "error: %s exists (snapshot save %s force replaces it)", name, name);
    else
        snprintf(msg, msglen, "error: cannot save %s: %s", name,
                 rc == -EINVAL ? "a device or CPU cannot be saved (see slate's stderr)" : strerror(-rc));
    return rc;
}

/* ---- the hypercall --------------------------------------------------------------------------- */

static int64_t snapshot_hypercall(void *opaque, struct vcpu *cpu, const uint64_t args[4])
{
    struct vm *vm = opaque;
    if (vm->each)
        return each_hypercall(vm, cpu, args);
    if (!vm->cfg->snapshot_path)
        return SLATE_EINVAL;
    int none = -1;
    if (!atomic_compare_exchange_strong(&vm->snapshot_caller, &none, (int)cpu->index))
        return SLATE_EBUSY; /* another CPU's save is under way */
    /* The save happens once every CPU, this one too, has parked: its RAX is 0 by then. */
    vm_request_hold(vm, HOLD_SNAPSHOT);
    eventfd_write(vm->snapshot_wake.fd, 1);
    return 0;
}

static void on_snapshot_wake(void *opaque, uint32_t events)
{
    struct vm *vm = opaque;
    (void)events;
    eventfd_t ignored;
    eventfd_read(vm->snapshot_wake.fd, &ignored);
    if (vm->each) {
        each_serve(vm);
        return;
    }
    int caller = atomic_load(&vm->snapshot_caller);
    if (caller < 0)
        return;
    if (vm_hold(vm, HOLD_SNAPSHOT))
        save_for_caller(vm, caller);
    atomic_store(&vm->snapshot_caller, -1);
    vm_release(vm, HOLD_SNAPSHOT);
}

int snapshot_attach(struct vm *vm)
{
    atomic_store(&vm->snapshot_caller, -1);
    vm->snapshot_wake = (struct event_source){.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
                                              .fn = on_snapshot_wake, .opaque = vm};
    if (vm->snapshot_wake.fd < 0 || event_add(&vm->loop, &vm->snapshot_wake, EPOLLIN)) {
        log_error("snapshot: eventfd: %s", strerror(errno));
        return -1;
    }
    struct hypercall hc = {.function = SLATE_HC_SNAPSHOT, .fn = snapshot_hypercall, .opaque = vm};
    if (vm_add_hypercall(vm, &hc)) {
        log_error("internal: cannot register SLATE_HC_SNAPSHOT");
        return -1;
    }
    return vm->cfg->each ? each_attach(vm) : 0;
}

void snapshot_detach(struct vm *vm)
{
    each_detach(vm);
    if (vm->snapshot_wake.fd >= 0)
        close(vm->snapshot_wake.fd);
    vm->snapshot_wake.fd = -1;
}

/* ---- reading ------------------------------------------------------------------------------- */

void snapshot_close(struct snapshot *snap)
{
    if (!snap)
        return;
    snap_file_free(&snap->file);
    if (snap->bytes)
        munmap((void *)snap->bytes, snap->size);
    if (snap->fd >= 0)
        close(snap->fd);
    free(snap->argv_copy);
    free(snap->argv);
    free(snap);
}

/* The machine section and the saved command line. */
static int read_machine(struct snapshot *snap, char *err, size_t errlen)
{
    const struct snap_section *s = snap_find(&snap->file, "machine", 0);
    if (!s || s->version != 1 || s->length < sizeof(struct snap_machine)) {
        snprintf(err, errlen, "%s", s ? "its machine section is from another slate" : "no machine section");
        return -1;
    }
    snap->machine = (const struct snap_machine *)s->data;
    const struct snap_machine *m = snap->machine;
    size_t text = s->length - sizeof(*m);
    const char *p = (const char *)s->data + sizeof(*m);
    if (m->argc > 4096 || (text && p[text - 1] != 0)) {
        snprintf(err, errlen, "malformed: the saved command line");
        return -1;
    }
    snap->argv_copy = malloc(text + 1);
    snap->argv = calloc(m->argc + 2, sizeof(char *));
    if (!snap->argv_copy || !snap->argv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(snap->argv_copy, p, text);
    snap->argv[0] = "slate";
    size_t at = 0;
    for (uint32_t i = 0; i < m->argc; i++) {
        if (at >= text) {
            snprintf(err, errlen, "malformed: the saved command line has fewer than %u words", m->argc);
            return -1;
        }
        snap->argv[i + 1] = snap->argv_copy + at;
        at += strlen(snap->argv_copy + at) + 1;
    }
    return 0;
}

int snapshot_open(const char *path, bool lazy, struct snapshot **out)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    if (!snap) {
        log_error("out of memory");
        return -1;
    }
    snprintf(snap->path, sizeof(snap->path), "%s", path);
    snap->lazy = lazy;
    snap->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char err[256] = "";
    if (snap->fd < 0 || fstat(snap->fd, &st) < 0) {
        snprintf(err, sizeof(err), "%s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, sizeof(err), "not a regular file");
    } else if (st.st_size < SNAP_HEADER_SIZE) {
        snprintf(err, sizeof(err), "not a slate snapshot (%lld bytes)", (long long)st.st_size);
    } else {
        snap->size = (size_t)st.st_size;
        void *map = mmap(NULL, snap->size, PROT_READ, MAP_PRIVATE, snap->fd, 0);
        if (map == MAP_FAILED)
            snprintf(err, sizeof(err), "mmap: %s", strerror(errno));
        else
            snap->bytes = map;
    }
    if (!err[0] && !snap_parse(snap->bytes, snap->size, !lazy, &snap->file, err, sizeof(err)))
        read_machine(snap, err, sizeof(err));
    if (err[0]) {
        log_error("--restore %s: %s", path, err);
        snapshot_close(snap);
        return -1;
    }
    *out = snap;
    return 0;
}

int snapshot_config(struct snapshot *snap, const struct slate_config *given, struct slate_config *out)
{
    char err[512];
    int argc = (int)snap->machine->argc + 1;
    enum options_result r = options_parse(argc, snap->argv, out, err, sizeof(err));
    if (r != OPTIONS_RUN || out->restore_path[0]) { /* (--each in it: the run of a --jobs worker) */
        log_error("--restore %s: the saved command line does not parse%s%s", snap->path,
                  r == OPTIONS_ERROR ? ": " : "", r == OPTIONS_ERROR ? err : "");
        return -1;
    }
    if (out->ram_size != snap->machine->ram_size || out->smp != snap->machine->smp) {
        log_error("--restore %s: malformed: the saved command line does not describe the saved machine",
                  snap->path);
        return -1;
    }
    if (options_merge_restore(out, given, err, sizeof(err))) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

int snapshot_load_plan(struct vm *vm, const struct snapshot *snap)
{
    const struct snap_section *s = snap_find(&snap->file, "plan", 0);
    if (!s || s->version != 1 || s->length != sizeof(vm->plan)) {
        log_error("--restore %s: %s", snap->path, s ? "its boot plan is from another version of slate"
                                                   : "no plan section");
        return -1;
    }
    memcpy(&vm->plan, s->data, sizeof(vm->plan));
    struct boot_plan *p = &vm->plan;
    bool ok = p->protocol >= BOOT_NATIVE && p->protocol <= BOOT_LIMINE && p->image_count <= 1 + MAX_LOADS &&
              p->data_count <= BOOT_DATA_MAX && p->paging.segment_count <= BOOT_SEGMENTS_MAX;
    for (unsigned i = 0; ok && i < p->image_count; i++)
        ok = memchr(p->images[i].name, 0, sizeof(p->images[i].name)) != NULL;
    if (!ok) {
        log_error("--restore %s: malformed: the boot plan", snap->path);
        return -1;
    }
    return 0;
}

static int restore_fail(const struct snapshot *snap, const char *what)
{
    log_error("--restore %s: %s", snap->path, what);
    return -1;
}

/* Where a memory section goes: a RAM region, the info block or boot tables, a device window. */
static uint8_t *memory_target(struct vm *vm, const struct snap_memory *m, bool *is_ram)
{
    *is_ram = false;
    for (unsigned i = 0; i < vm->mem.ram_count; i++)
        if (vm->mem.ram[i].gpa == m->gpa && vm->mem.ram[i].size == m->size)
            return *is_ram = true, vm->mem.ram[i].host;
    for (unsigned i = 0; i < vm->mem.extra_count; i++)
        if (vm->mem.extra[i].gpa == m->gpa && vm->mem.extra[i].size == m->size)
            return vm->mem.extra[i].host;
    for (unsigned i = 0; i < vm->device_count; i++)
        if (vm->devices[i].window && vm->devices[i].window_gpa == m->gpa && vm->devices[i].window_bytes == m->size)
            return vm->devices[i].window;
    return NULL;
}

/* lazy: RAM pages map the file copy-on-write (runs of present pages, each one mmap). */
static int restore_memory(struct vm *vm, const struct snapshot *snap)
{
    char err[256];
    unsigned found = 0;
    for (unsigned i = 0; i < snap->file.count; i++) {
        const struct snap_section *s = &snap->file.sections[i];
        if (strcmp(s->kind, "memory"))
            continue;
        struct snap_memory m;
        bool is_ram;
        if (snap_memory(s, &m, err, sizeof(err)))
            return restore_fail(snap, err);
        uint8_t *host = memory_target(vm, &m, &is_ram);
        if (!host) {
            snprintf(err, sizeof(err), "malformed: memory at %#" PRIx64 "+%#" PRIx64 " is not part of this machine",
                     m.gpa, m.size);
            return restore_fail(snap, err);
        }
        found++;
        if (!is_ram)
            memset(host, 0, m.size); /* what setup wrote there is replaced whole */
        const uint8_t *page = m.pages;
        uint64_t pages = m.size / PAGE;
        for (uint64_t p = 0; p < pages;) {
            if (!snap_page_present(&m, p)) {
                p++;
                continue;
            }
            uint64_t end = p;
            while (end < pages && snap_page_present(&m, end))
                end++;
            size_t len = (size_t)((end - p) * PAGE);
            if (snap->lazy && is_ram) {
                off_t off = (off_t)(m.pages_offset + (uint64_t)(page - m.pages));
                if (mmap(host + p * PAGE, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, snap->fd, off) ==
                    MAP_FAILED)
                    return restore_fail(snap, "cannot map its RAM (mmap failed)");
            } else {
                memcpy(host + p * PAGE, page, len);
            }
            page += len;
            p = end;
        }
    }
    unsigned expected = vm->mem.ram_count + vm->mem.extra_count;
    for (unsigned i = 0; i < vm->device_count; i++)
        expected += vm->devices[i].window != NULL;
    if (found != expected)
        return restore_fail(snap, "malformed: memory sections are missing or repeated");
    vm->ram_from_file = snap->lazy;
    return 0;
}

/* Reads every CPU and device section into an image, checking each against this machine. */
static int read_image(struct vm *vm, const struct snapshot *snap, struct machine_image *img)
{
    const struct snap_machine *m = snap->machine;
    char err[256];
    *img = (struct machine_image){.clock_ns = m->clock_ns, .kvmclock = m->kvmclock,
                                  .have_kvmclock = m->have_kvmclock != 0,
                                  .user_hypercalls = m->user_hypercalls & ~(1ULL << SLATE_HC_USER_HYPERCALLS)};
    if (m->smp != vm->vcpu_count || m->device_count != vm->device_count || m->clock_ns < 0 ||
        (m->caller != NO_CALLER && m->caller >= vm->vcpu_count))
        return restore_fail(snap, "malformed: its machine section does not match its command line");
    img->cpus = calloc(vm->vcpu_count, sizeof(*img->cpus));
    if (!img->cpus)
        return restore_fail(snap, "out of memory");
    for (unsigned i = 0; i < vm->vcpu_count; i++, img->cpu_count++) {
        const struct snap_section *s = snap_find(&snap->file, "cpu", i);
        if (!s || s->version != 1 || s->length != sizeof(struct cpu_image)) {
            snprintf(err, sizeof(err), "%s cpu %u", s ? "another version of slate wrote" : "no section for", i);
            return restore_fail(snap, err);
        }
        struct cpu_image *c = &img->cpus[i];
        memcpy(c, s->data, sizeof(*c));
        bool ok = (c->st.have & (CPU_REGS | CPU_SREGS | CPU_FPU | CPU_MSRS | CPU_LAPIC | CPU_MP)) ==
                      (CPU_REGS | CPU_SREGS | CPU_FPU | CPU_MSRS | CPU_LAPIC | CPU_MP) &&
                  !(c->st.have & ~(unsigned)CPU_ALL) && c->st.msr_count <= CPU_STATE_MSRS && c->started <= 1;
        for (unsigned k = 0; ok && k < c->st.msr_count; k++) {
            ok = false;
            for (unsigned j = 0; j < CPU_STATE_MSRS; j++)
                ok = ok || c->st.msrs[k].index == cpu_state_msrs[j];
        }
        if (!ok) {
            snprintf(err, sizeof(err), "malformed: cpu %u's state", i);
            return restore_fail(snap, err);
        }
    }
    for (unsigned i = 0; i < vm->device_count; i++, img->device_count++) {
        const struct snap_section *s = snap_find(&snap->file, "device", i);
        const struct device *dev = &vm->devices[i];
        struct snap_device head;
        if (!s || s->version != 1 || s->length < sizeof(head)) {
            snprintf(err, sizeof(err), "no section for %s", dev->name);
            return restore_fail(snap, err);
        }
        memcpy(&head, s->data, sizeof(head));
        if (memcmp(head.name, dev->name, sizeof(head.name)) || head.type != dev->ops->type ||
            head.state_len != s->length - sizeof(head)) {
            snprintf(err, sizeof(err), "malformed: device %u is not %s", i, dev->name);
            return restore_fail(snap, err);
        }
        if (head.state_version != dev->ops->state_version) {
            snprintf(err, sizeof(err), "%s's state has layout %u; this slate reads %u", dev->name,
                     head.state_version, dev->ops->state_version);
            return restore_fail(snap, err);
        }
        for (unsigned l = 0; l < DEVICE_MAX_IRQS; l++) {
            bool unused = l >= dev->ops->irq_count;
            if ((unused && (head.vector[l] || head.cpu[l])) ||
                (head.vector[l] && (head.vector[l] < 32 || head.vector[l] > 255)) || head.cpu[l] >= vm->vcpu_count) {
                snprintf(err, sizeof(err), "malformed: %s's interrupt line %u", dev->name, l);
                return restore_fail(snap, err);
            }
        }
        struct device_image *d = &img->devices[i];
        memcpy(d->vector, head.vector, sizeof(d->vector));
        memcpy(d->cpu, head.cpu, sizeof(d->cpu));
        d->state.data = malloc(head.state_len ? head.state_len : 1);
        if (!d->state.data)
            return restore_fail(snap, "out of memory");
        memcpy(d->state.data, s->data + sizeof(head), head.state_len);
        d->state.len = d->state.cap = head.state_len;
    }
    return 0;
}

int snapshot_restore(struct vm *vm, const struct snapshot *snap)
{
    const struct snap_machine *m = snap->machine;
    if (m->tsc_khz != vm->tsc_khz)
        log_warn("--restore %s: the TSC ran at %" PRIu64 " kHz where it was saved, %" PRIu64 " kHz here: "
                 "a kernel that calibrated it keeps the old rate", snap->path, m->tsc_khz, vm->tsc_khz);
    vm->boot_unix_ns = m->boot_unix_ns, vm->boot_tsc = m->boot_tsc;
    struct machine_image img;
    int rc = read_image(vm, snap, &img);
    if (rc == 0)
        rc = restore_memory(vm, snap);
    if (rc == 0 && machine_apply(vm, &img, false))
        rc = restore_fail(snap, "the saved machine cannot be put back (see above)");
    machine_image_free(&img);
    if (rc == 0 && vm->each) /* a --jobs worker: its cases start from here */
        rc = m->caller == NO_CALLER ? restore_fail(snap, "no CPU called SLATE_HC_SNAPSHOT in it") :
             each_restored(vm, m->caller);
    return rc;
}
