/* preflight.c - the checks that need no KVM, and the one place that opens /dev/kvm and explains
 * why it could not. */
#include "preflight.h"

#include "device.h"
#include "listen.h"
#include "log.h"
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Loads the kernel and every --load image into scratch memory that is never touched by KVM:
 * the same loader and checks as the real boot. */
static int check_images(const struct slate_config *cfg, struct preflight *pf)
{
    struct guest_memory mem;
    memory_layout(&mem, cfg->ram_size);
    int rc = memory_map(&mem);
    if (rc < 0) {
        log_error("-m: cannot reserve %llu MiB of guest RAM: %s",
                  (unsigned long long)(cfg->ram_size >> 20), strerror(-rc));
        return -1;
    }
    char err[512];
    rc = loader_load_all(&mem, cfg, &pf->plan, err, sizeof(err));
    if (rc)
        log_error("%s", err);
    memory_unmap(&mem);
    memory_layout(&pf->layout, cfg->ram_size);
    return rc;
}

static int check_listeners(const struct slate_config *cfg)
{
    char err[256];
    struct listen_addr addr;
    if (cfg->gdb && listen_parse(cfg->gdb, LISTEN_GDB, &addr, err, sizeof(err))) {
        log_error("--gdb %s: %s", cfg->gdb, err);
        return -1;
    }
    if (cfg->monitor && strcmp(cfg->monitor, "stdio") &&
        listen_parse(cfg->monitor, LISTEN_MONITOR, &addr, err, sizeof(err))) {
        log_error("--monitor %s: %s", cfg->monitor, err);
        return -1;
    }
    if (cfg->monitor && !strcmp(cfg->monitor, "stdio") && cfg->serial == SERIAL_STDIO) {
        log_error("--monitor stdio needs the serial console elsewhere (--serial file:PATH or none)");
        return -1;
    }
    return 0;
}

static int check_devices(const struct slate_config *cfg)
{
    struct device_place places[DEVICE_MAX];
    char err[256];
    int count = device_plan(cfg, places, err, sizeof(err));
    if (count < 0) {
        log_error("%s", err);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (places[i].ops->check && places[i].ops->check(cfg, places[i].index))
            return -1;
        if (cfg->exit_port >= places[i].port_base &&
            cfg->exit_port < places[i].port_base + places[i].ops->port_count) {
            log_error("--exit-port %#x: the port belongs to %s%u (ports %#x-%#x)", cfg->exit_port,
                      places[i].ops->name, places[i].index, places[i].port_base,
                      places[i].port_base + places[i].ops->port_count - 1);
            return -1;
        }
    }
    if (cfg->exit_port == SLATE_HYPERCALL_PORT || cfg->exit_port == SLATE_CPU_INDEX_PORT ||
        cfg->exit_port == SLATE_DEBUGCON_PORT) {
        log_error("--exit-port %#x: the port is slate's own (hypercall, CPU index or 0xE9 console)",
                  cfg->exit_port);
        return -1;
    }
    return 0;
}

int preflight_check(const struct slate_config *cfg, struct preflight *pf)
{
    *pf = (struct preflight){0};
    if ((!cfg->restore_path[0] && check_images(cfg, pf)) || check_devices(cfg) || check_listeners(cfg))
        return -1;
    if (cfg->serial == SERIAL_FILE && outfile_check("--serial file:", cfg->serial_path))
        return -1;
    if (cfg->symbols && access(cfg->symbols, R_OK) < 0) {
        log_error("--symbols %s: %s", cfg->symbols, strerror(errno));
        return -1;
    }
    if (cfg->report && outfile_check("--report", cfg->report))
        return -1;
    if (cfg->dump_core && outfile_check("--dump-core", cfg->dump_core))
        return -1;
    if (cfg->profile_path[0] && outfile_check("--profile", cfg->profile_path))
        return -1;
    if (cfg->trace_file && outfile_check("--trace-file", cfg->trace_file))
        return -1;
    struct stat st;
    if (cfg->dump_dir) {
        const char *why = stat(cfg->dump_dir, &st) < 0 ? strerror(errno)
                          : !S_ISDIR(st.st_mode)         ? "not a directory"
                          : access(cfg->dump_dir, W_OK | X_OK) < 0 ? strerror(errno) : NULL;
        if (why) {
            log_error("--dump-dir %s: %s", cfg->dump_dir, why);
            return -1;
        }
    }
    return 0;
}

/* ---- /dev/kvm ------------------------------------------------------------------------------- */

/* Whether /proc/cpuinfo shows Intel VT-x or AMD-V. Only a hint for the message: some
 * paravirtualized hosts offer KVM while hiding both flags. */
static bool cpu_has_virtualization_flag(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        if (!strncmp(line, "flags", 5))
            found = strstr(line, " vmx") || strstr(line, " svm");
    fclose(f);
    return found;
}

static void kvm_failure(int err, char *why, size_t whylen)
{
    const char *hint = "";
    if (err == ENOENT || err == ENXIO || err == ENODEV)
        hint = cpu_has_virtualization_flag()
                   ? " (the CPU has VT-x/AMD-V: load the module, modprobe kvm_intel or kvm_amd)"
                   : " (no hardware virtualization here: in a VM, enable nested virtualization; "
                     "`make check-vm` runs the tests under emulation)";
    else if (err == EACCES || err == EPERM)
        hint = " (add yourself to the kvm group: sudo usermod -aG kvm $USER, then log in again)";
    snprintf(why, whylen, "cannot open /dev/kvm: %s%s", strerror(err), hint);
}

int preflight_kvm_usable(char *why, size_t whylen)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        kvm_failure(errno, why, whylen);
        return 0;
    }
    close(fd);
    return 1;
}

int preflight_open_kvm(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        char why[400];
        kvm_failure(errno, why, sizeof(why));
        log_error("%s", why);
    }
    return fd;
}

/* ---- slate --check -------------------------------------------------------------------------- */

static const char *const entry_names[] = {
    [ENTRY_DEFAULT] = "default", [ENTRY_REAL] = "real mode", [ENTRY_PROTECTED] = "protected mode",
    [ENTRY_LONG] = "long mode"};

static const char *const protocol_names[] = {
    [BOOT_DETECT] = "?", [BOOT_NATIVE] = "", [BOOT_MULTIBOOT2] = "Multiboot2, ",
    [BOOT_MULTIBOOT] = "Multiboot, ", [BOOT_LIMINE] = "Limine, "};

void preflight_report(FILE *out, const struct slate_config *cfg, const struct preflight *pf)
{
    fprintf(out, "kernel %s: %s%s entry at %#llx\n", cfg->kernel, protocol_names[pf->plan.protocol],
            entry_names[pf->plan.entry], (unsigned long long)pf->plan.entry_point);
    for (unsigned i = 0; i < pf->plan.data_count; i++)
        fprintf(out, "boot data [%#llx, %#llx)\n", (unsigned long long)pf->plan.data[i].base,
                (unsigned long long)(pf->plan.data[i].base + pf->plan.data[i].size));
    for (unsigned i = 0; i < pf->plan.image_count; i++) {
        const struct loaded_image *im = &pf->plan.images[i];
        fprintf(out, "image %s [%#llx, %#llx)%s\n", im->name, (unsigned long long)im->base,
                (unsigned long long)(im->base + im->size),
                im->flags & SLATE_IMAGE_KERNEL ? " kernel" : "");
    }
    for (unsigned i = 0; i < pf->layout.ram_count; i++)
        fprintf(out, "ram [0x%llx, 0x%llx) %llu MiB\n", (unsigned long long)pf->layout.ram[i].gpa,
                (unsigned long long)(pf->layout.ram[i].gpa + pf->layout.ram[i].size),
                (unsigned long long)(pf->layout.ram[i].size >> 20));
    fprintf(out, "cpus %u\n", cfg->smp);
    struct device_place places[DEVICE_MAX];
    char err[256];
    int count = device_plan(cfg, places, err, sizeof(err));
    for (int i = 0; i < count; i++) {
        const struct device_place *p = &places[i];
        fprintf(out, "device %s%u ports %#x+%u irqs %u", p->ops->name, p->index, p->port_base,
                p->ops->port_count, p->ops->irq_count);
        if (p->window_bytes)
            fprintf(out, " window %#llx+%#llx", (unsigned long long)p->window_gpa,
                    (unsigned long long)p->ops->window_size);
        fputc('\n', out);
    }
    char why[400];
    if (preflight_kvm_usable(why, sizeof(why)))
        fprintf(out, "kvm /dev/kvm is usable\n");
    else
        fprintf(out, "kvm not usable here: %s\n", why);
    fprintf(out, "check: ok\n");
}
