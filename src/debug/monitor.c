/* monitor.c - a line-oriented text console for people and scripts: inspect and control the
 * machine while it runs or is stopped. One client at a time on a Unix or TCP socket, or stdin
 * and stdout when the serial console is elsewhere. Commands that read CPU state pause the
 * machine for the moment they need, unless it is stopped already. */
#include "monitor.h"

#include "core.h"
#include "hang.h"
#include "profile.h"
#include "inspect.h"
#include "cpu_state.h"
#include "debug_room.h"
#include "expr.h"
#include "listen.h"
#include "vm.h"
#include "snapshot.h"
#include "x86.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LINE_MAX_LEN 512

struct monitor {
    int listen_fd;  /* -1 for stdio */
    bool stdio;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int in_fd, out_fd; /* the client, or stdin/stdout */
    int notify_fd;
    pthread_t thread;
    bool thread_started;
    struct vm *vm;
    bool stopped;  /* by the `stop` command */
    unsigned cpu;  /* selected with `cpu N` */
    struct symbols *syms;
    bool syms_tried;
    char line[LINE_MAX_LEN];
    size_t line_len;
    int dump_dir_fd; /* --dump-dir, opened at start (-1 without it) */
    bool gone;       /* a reply could not be sent: the client is dropped */
    struct ratelimit limit; /* warnings about its listener */
};

static void reply(struct monitor *m, const char *text, size_t len)
{
    if (m->out_fd >= 0 && !m->gone && !listen_send_all(m->out_fd, text, len, &m->vm->stopping))
        m->gone = true; /* it stopped reading (or left): dropped after this batch of lines */
}

static struct vcpu *selected(struct monitor *m) { return &m->vm->vcpus[m->cpu]; }

static struct symbols *monitor_symbols(struct monitor *m)
{
    if (!m->syms_tried) {
        m->syms = symbols_open(config_symbols(m->vm->cfg));
        m->syms_tried = true;
    }
    return m->syms;
}

/* Holds the machine for the length of a command that reads CPU state (its own hold: releasing
 * it never lets the guest run while gdb or `stop` holds it); returns whether it must release. */
static bool hold(struct monitor *m)
{
    if (m->stopped)
        return false;
    vm_hold(m->vm, HOLD_PEEK);
    return true;
}

static void release(struct monitor *m, bool held)
{
    if (held)
        vm_release(m->vm, HOLD_PEEK);
}

static bool parse_number(const char *text, uint64_t *v)
{
    char *end;
    errno = 0;
    *v = strtoull(text, &end, 0);
    return text[0] && !errno && (*end == 0 || *end == ' ');
}

/* A register of the selected CPU, by name ("rax", "cr3", "fs_base"). */
static bool monitor_reg(void *ctx, const char *name, uint64_t *v)
{
    struct monitor *m = ctx;
    struct kvm_regs r;
    struct kvm_sregs s;
    if (cpu_state_regs(selected(m), &r, &s))
        return false;
    static const char *const gpr[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9",
                                      "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
    const uint64_t gval[] = {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9,
                             r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags};
    static const char *const sys[] = {"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "fs_base", "gs_base"};
    const uint64_t sval[] = {s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.fs.base, s.gs.base};
    for (size_t i = 0; i < sizeof(gpr) / sizeof(gpr[0]); i++)
        if (!strcmp(name, gpr[i]))
            return *v = gval[i], true;
    for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
        if (!strcmp(name, sys[i]))
            return *v = sval[i], true;
    return false;
}

static bool monitor_sym(void *ctx, const char *name, uint64_t *v)
{
    return symbols_find(monitor_symbols(ctx), name, v);
}

/* An address as typed: a number, $register or function name, plus or minus more of them. */
static bool parse_address(struct monitor *m, const char *text, uint64_t *v, char *err, size_t errlen)
{
    const struct expr_env env = {monitor_reg, monitor_sym, m};
    return expr_eval(text, &env, v, err, errlen) == 0;
}

static void cmd_info_registers(struct monitor *m, FILE *out, const char *arg)
{
    uint64_t n = m->cpu;
    if (*arg && (!parse_number(arg, &n) || n >= m->vm->vcpu_count)) {
        fprintf(out, "error: no CPU %s (0..%u)\n", arg, m->vm->vcpu_count - 1);
        return;
    }
    bool held = hold(m);
    fprintf(out, "cpu %u:\n", (unsigned)n);
    inspect_registers(out, &m->vm->vcpus[n]);
    release(m, held);
}

static void cmd_info_cpus(struct monitor *m, FILE *out)
{
    bool held = hold(m);
    for (unsigned i = 0; i < m->vm->vcpu_count; i++) {
        struct vcpu *cpu = &m->vm->vcpus[i];
        struct kvm_regs r;
        struct kvm_sregs s;
        if (cpu_state_regs(cpu, &r, &s))
            continue;
        const char *mode = !(s.cr0 & X86_CR0_PE) ? "real" : (s.efer & X86_EFER_LMA) && s.cs.l ? "long" : "protected";
        char buf[128];
        const char *state = vcpu_run_state(cpu, buf, sizeof(buf));
        char where[256];
        fprintf(out, "%c cpu %u: %s, %s mode, rip=%#llx %s\n", i == m->cpu ? '*' : ' ', i, state, mode,
                r.rip, symbols_describe(monitor_symbols(m), r.rip, where, sizeof(where)));
    }
    release(m, held);
}

static void cmd_info_devices(struct monitor *m, FILE *out)
{
    for (unsigned i = 0; i < m->vm->device_count; i++) {
        const struct device *d = &m->vm->devices[i];
        fprintf(out, "%-8s type %u v%u  ports %#x-%#x", d->name, d->ops->type, d->ops->version,
                d->port_base, d->port_base + d->ops->port_count - 1);
        if (d->window_gpa)
            fprintf(out, "  window %#" PRIx64 " (%" PRIu64 " bytes)", d->window_gpa, d->ops->window_size);
        for (unsigned l = 0; l < d->ops->irq_count; l++) {
            uint32_t vector = atomic_load(&d->irq[l].vector);
            if (vector)
                fprintf(out, "  irq%u: vector %u -> cpu %u", l, vector, atomic_load(&d->irq[l].cpu));
            else
                fprintf(out, "  irq%u: off", l);
        }
        fputc('\n', out);
    }
}

/* Copies up to len bytes of guest-physical memory at gpa (RAM, the info block, the boot tables),
 * stopping at the first page that is none of those. */
static size_t read_physical(struct vm *vm, uint64_t gpa, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t n = 0x1000 - ((gpa + done) & 0xFFF);
        n = n < len - done ? n : len - done;
        const void *p = gpa + done < gpa ? NULL : memory_readable_ptr(&vm->mem, gpa + done, n);
        if (!p)
            break;
        memcpy(buf + done, p, n);
        done += n;
    }
    return done;
}

/* x/NF ADDR (linear, as the selected CPU sees it) and xp/NF ADDR (physical): F is x (32-bit
 * words), g (64-bit), b (bytes) or i (instructions, x only). */
static void cmd_examine(struct monitor *m, FILE *out, const char *spec, const char *arg)
{
    bool physical = *spec == 'p';
    spec += physical;
    uint64_t count = 1, addr;
    char format = 'x';
    const char *p = spec;
    if (*p == '/') { /* gdb's letters too: a unit (b, w, g) and a format (x, i), in any order */
        char *end;
        p++;
        if (*p >= '0' && *p <= '9')
            count = strtoull(p, &end, 10), p = end;
        for (bool unit = false, hex = false; *p && strchr("bwgxi", *p); p++) {
            if (*p == 'x' && !hex && format != 'i')
                hex = true; /* (the unit stays what it was: x alone is 32-bit) */
            else if (strchr("bwg", *p) && !unit && format != 'i')
                unit = true, format = *p == 'w' ? 'x' : *p;
            else if (*p == 'i' && !unit && !hex)
                format = 'i', unit = hex = true;
            else
                break;
        }
    }
    if (*p || !strchr(physical ? "xgb" : "xgbi", format) || count == 0 || count > 4096 || !*arg) {
        fprintf(out, physical ? "error: usage: xp/NF ADDR with F one of x g b, N up to 4096\n"
                              : "error: usage: x/NF ADDR with F one of x g b i, N up to 4096\n");
        return;
    }
    char err[256];
    if (!parse_address(m, arg, &addr, err, sizeof(err))) {
        fprintf(out, "error: %s: %s\n", arg, err);
        return;
    }
    bool held = hold(m);
    struct vcpu *cpu = selected(m);
    if (format == 'i') {
        struct cpu_state st = {0};
        if (cpu_state_get(cpu, CPU_SREGS, &st, NULL) == 0)
            inspect_disasm(out, cpu, &st.sregs, addr, addr, 0, (unsigned)count, monitor_symbols(m));
        release(m, held);
        return;
    }
    unsigned width = format == 'g' ? 8 : format == 'b' ? 1 : 4, per_line = 16 / width;
    size_t len = (size_t)count * width;
    uint8_t *buf = malloc(len);
    size_t got = !buf ? 0 : physical ? read_physical(m->vm, addr, buf, len) : vcpu_read_virtual(cpu, addr, buf, len);
    release(m, held);
    for (size_t i = 0; i + width <= got; i += width) {
        if (i % 16 == 0)
            fprintf(out, "%s%016" PRIx64 ":", i ? "\n" : "", addr + i);
        uint64_t v = 0;
        memcpy(&v, buf + i, width);
        fprintf(out, " %0*" PRIx64, (int)width * 2, v);
        (void)per_line;
    }
    if (got)
        fputc('\n', out);
    if (got < len)
        fprintf(out, physical ? "error: %#" PRIx64 " is not memory\n" : "error: %#" PRIx64 " is not mapped to memory\n",
                addr + got);
    free(buf);
}

static void cmd_step(struct monitor *m, FILE *out, const char *arg)
{
    uint64_t n = 1;
    if (*arg && (!parse_number(arg, &n) || n == 0 || n > 100000)) {
        fprintf(out, "error: usage: step [N]\n");
        return;
    }
    if (!m->stopped) {
        fprintf(out, "error: the machine runs; `stop` it first\n");
        return;
    }
    struct vcpu *cpu = selected(m);
    /* Through the arbiter: gdb's breakpoints on this CPU stay as they are. */
    struct kvm_guest_debug dbg = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_BLOCKIRQ};
    int rc = vcpu_set_debug(cpu, DEBUG_MONITOR, &dbg);
    if (rc < 0) {
        fprintf(out, "error: KVM_SET_GUEST_DEBUG: %s\n", strerror(-rc));
        return;
    }
    for (uint64_t i = 0; i < n && !atomic_load(&m->vm->stopping); i++) {
        vm_release_one(m->vm, cpu);
        vm_hold(m->vm, HOLD_MONITOR); /* returns once the stepping CPU has parked again */
    }
    vcpu_set_debug(cpu, DEBUG_MONITOR, NULL);
    struct kvm_regs r;
    struct kvm_sregs s;
    if (cpu_state_regs(cpu, &r, &s) == 0) {
        uint64_t rip = (s.efer & X86_EFER_LMA) && s.cs.l ? r.rip : (s.cs.base + r.rip) & 0xFFFFFFFF;
        inspect_disasm(out, cpu, &s, rip, rip, 0, 1, monitor_symbols(m));
    }
}

static const char help_text[] =
    "commands:\n"
    "  info registers [N]   registers of CPU N (default: the selected CPU)\n"
    "  info cpus            every CPU: state, mode, RIP\n"
    "  info devices         devices, their ports, windows and interrupt lines\n"
    "  info mem             the selected CPU's page-table mappings\n"
    "  info tlb ADDR        how the selected CPU translates ADDR, level by level\n"
    "  cpu N                select CPU N for x, step and info mem\n"
    "  x/NF ADDR            examine memory at a virtual address: F = x (32-bit), g (64-bit),\n"
    "                       b (bytes), i (instructions, in the CPU's mode); gdb's gx, bx, wx too\n"
    "  xp/NF ADDR           the same at a physical address (F = x, g or b)\n"
    "                       ADDR: a number, $register ($rsp, $cr3, ...) or function name,\n"
    "                       plus or minus more of them: x/8gx $rsp+16, x/4i kmain+0x20\n"
    "  info hang            what every CPU is doing, why it may be stuck, where it spends time\n"
    "  stop | cont          pause or resume every CPU\n"
    "  step [N]             single-step the selected CPU (machine stopped)\n"
    "  screendump NAME.png [force]\n"
    "  snapshot save NAME [force]   the whole machine, for slate --restore\n"
    "                       save the display as NAME.png in --dump-dir (force: replace it)\n"
    "  dump-core NAME.core [force]\n"
    "                       save an ELF core file of the machine in --dump-dir (gdb KERNEL NAME)\n"
    "  profile start|stop|dump NAME.folded|NAME.svg [force]\n"
    "                       --profile's sampling for one phase; dump writes it in --dump-dir\n"
    "  quit                 stop the machine; slate exits with status 0\n";

/* A file name a client may create in --dump-dir: one plain component, not hidden, so never a
 * path elsewhere, "..", or a temporary file of slate's. */
static bool plain_file_name(const char *name, const char *suffix)
{
    size_t len = strlen(name), slen = strlen(suffix);
    return len > slen && len < 200 && name[0] != '.' && !strchr(name, '/') &&
           !strcmp(name + len - slen, suffix);
}

/* screendump NAME.png [force]: files are written only in the directory the user named with
 * --dump-dir, never through a link, and never over an existing file unless told. */
static void cmd_screendump(struct monitor *m, FILE *out, char *arg)
{
    char *name = arg, *flag = arg + strcspn(arg, " ");
    if (*flag)
        *flag++ = 0;
    flag += strspn(flag, " ");
    bool force = !strcmp(flag, "force");
    if (!m->vm->cfg->display)
        fprintf(out, "error: this machine has no display device\n");
    else if (m->dump_dir_fd < 0)
        fprintf(out, "error: screendump writes files only in a directory named with --dump-dir DIR "
                     "on slate's command line\n");
    else if (!plain_file_name(name, ".png") || (*flag && !force))
        fprintf(out, "error: usage: screendump NAME.png [force] (a plain file name in --dump-dir)\n");
    else {
        int rc = vm_screenshot_at(m->vm, m->dump_dir_fd, name, force);
        if (rc == 0)
            fprintf(out, "saved %s/%s\n", m->vm->cfg->dump_dir, name);
        else if (rc == -EEXIST)
            fprintf(out, "error: %s exists (screendump %s force replaces it)\n", name, name);
        else
            fprintf(out, "error: cannot write %s: %s\n", name, strerror(-rc));
    }
}

/* snapshot save NAME [force]: the whole machine, as --snapshot saves it, in --dump-dir. */
static void cmd_snapshot(struct monitor *m, FILE *out, char *arg)
{
    char *name = arg + strcspn(arg, " ");
    if (strncmp(arg, "save ", 5) || !*name) {
        fprintf(out, "error: usage: snapshot save NAME [force] (a plain file name in --dump-dir)\n");
        return;
    }
    name += strspn(name, " ");
    char *flag = name + strcspn(name, " ");
    if (*flag)
        *flag++ = 0;
    flag += strspn(flag, " ");
    bool force = !strcmp(flag, "force");
    if (m->dump_dir_fd < 0)
        fprintf(out, "error: snapshot save writes files only in a directory named with --dump-dir DIR "
                     "on slate's command line\n");
    else if (!plain_file_name(name, "") || (*flag && !force))
        fprintf(out, "error: usage: snapshot save NAME [force] (a plain file name in --dump-dir)\n");
    else {
        char msg[512];
        snapshot_save_at(m->vm, m->dump_dir_fd, name, force, msg, sizeof(msg));
        fprintf(out, "%s\n", msg);
    }
}

/* info tlb ADDR: how the selected CPU translates one linear address, level by level. */
static void cmd_info_tlb(struct monitor *m, FILE *out, const char *arg)
{
    uint64_t va;
    char err[256];
    if (!*arg) {
        fprintf(out, "error: usage: info tlb ADDR\n");
        return;
    }
    if (!parse_address(m, arg, &va, err, sizeof(err))) {
        fprintf(out, "error: %s: %s\n", arg, err);
        return;
    }
    bool held = hold(m);
    struct cpu_state st = {0};
    const char *failed;
    int rc = cpu_state_get(selected(m), CPU_SREGS, &st, &failed);
    if (rc == 0)
        inspect_page_walk(out, selected(m), &st.sregs, "address", va);
    else
        fprintf(out, "error: %s: %s\n", failed, strerror(-rc));
    release(m, held);
}

/* profile start|stop|dump NAME: --profile's sampling, for one phase; dump writes the samples so
 * far (folded, or an SVG for NAME.svg) in --dump-dir. */
static void cmd_profile(struct monitor *m, FILE *out, char *arg)
{
    if (!debug_room(m->vm)->profiler) {
        fprintf(out, "error: profile needs --profile PATH on slate's command line\n");
        return;
    }
    if (!strcmp(arg, "start") || !strcmp(arg, "stop")) {
        profile_run(m->vm, arg[2] == 'a');
        fprintf(out, "profile %sed\n", arg[2] == 'a' ? "start" : "stopp");
        return;
    }
    char *name = strncmp(arg, "dump ", 5) ? NULL : arg + 5, *flag = name ? name + strcspn(name, " ") : NULL;
    if (flag && *flag)
        *flag++ = 0;
    bool force = flag && !strcmp(flag + strspn(flag, " "), "force");
    if (!name || (!plain_file_name(name, ".svg") && !plain_file_name(name, ".folded")) ||
        (flag[strspn(flag, " ")] && !force)) {
        fprintf(out, "error: usage: profile start|stop|dump NAME.folded|NAME.svg [force]\n");
        return;
    }
    if (m->dump_dir_fd < 0) {
        fprintf(out, "error: profile dump writes files only in a directory named with --dump-dir DIR\n");
        return;
    }
    char shown[4200];
    snprintf(shown, sizeof(shown), "%s/%s", m->vm->cfg->dump_dir, name);
    bool held = hold(m);
    int rc = profile_write(m->vm, m->dump_dir_fd, name, force, shown, out);
    release(m, held);
    if (rc == -EEXIST)
        fprintf(out, "error: %s exists (profile dump %s force replaces it)\n", name, name);
    else if (rc)
        fprintf(out, "error: cannot write %s: %s\n", name, strerror(-rc));
}

/* dump-core NAME [force]: an ELF core file of the machine, held still while it is written. */
static void cmd_dump_core(struct monitor *m, FILE *out, char *arg)
{
    char *name = arg, *flag = arg + strcspn(arg, " ");
    if (*flag)
        *flag++ = 0;
    flag += strspn(flag, " ");
    bool force = !strcmp(flag, "force");
    if (m->dump_dir_fd < 0) {
        fprintf(out, "error: dump-core writes files only in a directory named with --dump-dir DIR "
                     "on slate's command line\n");
        return;
    }
    if (!plain_file_name(name, ".core") || (*flag && !force)) {
        fprintf(out, "error: usage: dump-core NAME.core [force] (a plain file name in --dump-dir)\n");
        return;
    }
    bool held = hold(m);
    int rc = core_dump_at(m->vm, m->dump_dir_fd, name, force);
    release(m, held);
    if (rc == 0)
        fprintf(out, "saved %s/%s (gdb KERNEL %s)\n", m->vm->cfg->dump_dir, name, name);
    else if (rc == -EEXIST)
        fprintf(out, "error: %s exists (dump-core %s force replaces it)\n", name, name);
    else
        fprintf(out, "error: cannot write %s: %s\n", name, strerror(-rc));
}

static void execute(struct monitor *m, char *line, FILE *out)
{
    char *cmd = line + strspn(line, " \t");
    cmd[strcspn(cmd, "\r\n")] = 0;
    char *arg = cmd + strcspn(cmd, " ");
    if (*arg)
        *arg++ = 0;
    arg += strspn(arg, " ");
    uint64_t n;
    if (!*cmd)
        return;
    if (!strcmp(cmd, "help"))
        fputs(help_text, out);
    else if (!strcmp(cmd, "info") && !strncmp(arg, "registers", 9))
        cmd_info_registers(m, out, arg + 9 + strspn(arg + 9, " "));
    else if (!strcmp(cmd, "info") && !strcmp(arg, "hang"))
        hang_report(m->vm, out, "monitor");
    else if (!strcmp(cmd, "info") && !strcmp(arg, "cpus"))
        cmd_info_cpus(m, out);
    else if (!strcmp(cmd, "info") && !strcmp(arg, "devices"))
        cmd_info_devices(m, out);
    else if (!strcmp(cmd, "info") && !strncmp(arg, "tlb", 3) && (arg[3] == ' ' || !arg[3]))
        cmd_info_tlb(m, out, arg + 3 + strspn(arg + 3, " "));
    else if (!strcmp(cmd, "info") && !strcmp(arg, "mem")) {
        bool held = hold(m);
        inspect_mappings(out, selected(m), 200);
        release(m, held);
    } else if (!strcmp(cmd, "cpu")) {
        if (parse_number(arg, &n) && n < m->vm->vcpu_count)
            m->cpu = (unsigned)n;
        else
            fprintf(out, "error: no CPU %s (0..%u)\n", arg, m->vm->vcpu_count - 1);
    } else if (cmd[0] == 'x' && (cmd[1] == 0 || cmd[1] == '/' || (cmd[1] == 'p' && (cmd[2] == 0 || cmd[2] == '/'))))
        cmd_examine(m, out, cmd + 1, arg);
    else if (!strcmp(cmd, "stop")) {
        if (!m->stopped && vm_hold(m->vm, HOLD_MONITOR))
            m->stopped = true;
        fprintf(out, "stopped\n");
    } else if (!strcmp(cmd, "cont")) {
        if (m->stopped)
            vm_release(m->vm, HOLD_MONITOR);
        m->stopped = false;
        fprintf(out, vm_held_by(m->vm, HOLD_GDB | HOLD_CONSOLE)
                         ? "running (once gdb or Ctrl-A p lets the machine go too)\n"
                         : "running\n");
    } else if (!strcmp(cmd, "step"))
        cmd_step(m, out, arg);
    else if (!strcmp(cmd, "screendump"))
        cmd_screendump(m, out, arg);
    else if (!strcmp(cmd, "snapshot"))
        cmd_snapshot(m, out, arg);
    else if (!strcmp(cmd, "dump-core"))
        cmd_dump_core(m, out, arg);
    else if (!strcmp(cmd, "profile"))
        cmd_profile(m, out, arg);
    else if (!strcmp(cmd, "quit")) {
        fprintf(out, "bye\n");
        vm_request_stop(m->vm, 0);
    } else
        fprintf(out, "error: unknown command '%s' (try help)\n", cmd);
}

/* Runs every complete line in the buffer. */
static void serve_lines(struct monitor *m)
{
    char *nl;
    while (!m->gone && (nl = memchr(m->line, '\n', m->line_len))) {
        *nl = 0;
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        if (!out)
            return;
        execute(m, m->line, out);
        fputs("(slate) ", out);
        fclose(out);
        reply(m, text, size);
        free(text);
        size_t used = (size_t)(nl + 1 - m->line);
        memmove(m->line, nl + 1, m->line_len - used);
        m->line_len -= used;
    }
    if (m->line_len == sizeof(m->line)) {
        m->line_len = 0;
        reply(m, "error: line too long\n(slate) ", 29);
    }
}

static void close_client(struct monitor *m)
{
    if (!m->stdio && m->in_fd >= 0)
        close(m->in_fd);
    m->in_fd = m->out_fd = -1;
    m->line_len = 0;
    m->gone = false;
    if (m->stopped && m->vm)
        vm_release(m->vm, HOLD_MONITOR); /* nobody is left to say `cont` */
    m->stopped = false;
}

static void *monitor_thread(void *arg)
{
    struct monitor *m = arg;
    if (m->stopped) /* stopped across a reset: the new machine starts stopped too */
        vm_hold(m->vm, HOLD_MONITOR);
    while (!atomic_load(&m->vm->stopping)) {
        int waiting = m->in_fd >= 0 ? m->in_fd : m->listen_fd;
        struct pollfd fds[2] = {{.fd = m->notify_fd, .events = POLLIN}, {.fd = waiting, .events = POLLIN}};
        if (poll(fds, waiting >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            eventfd_t ignored;
            eventfd_read(m->notify_fd, &ignored);
            continue;
        }
        if (!(fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        if (m->in_fd < 0) {
            int fd = listen_accept(m->listen_fd, &m->limit, "monitor");
            if (fd >= 0) {
                listen_client_timeout(fd);
                m->in_fd = m->out_fd = fd;
                reply(m, "slate monitor (help for commands)\n(slate) ", 42);
            }
            continue;
        }
        ssize_t n = read(m->in_fd, m->line + m->line_len, sizeof(m->line) - m->line_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close_client(m);
            if (m->stdio)
                break; /* stdin ended: nothing more will come */
            continue;
        }
        m->line_len += (size_t)n;
        serve_lines(m);
        if (m->gone) {
            log_info("monitor: a client stopped reading its replies; dropped it");
            close_client(m);
            if (m->stdio)
                break;
        }
    }
    return NULL;
}

static int monitor_vm_start(void *opaque, struct vm *vm)
{
    struct monitor *m = opaque;
    m->vm = vm;
    if (m->cpu >= vm->vcpu_count)
        m->cpu = 0;
    eventfd_t ignored;
    eventfd_read(m->notify_fd, &ignored);
    int rc = pthread_create(&m->thread, NULL, monitor_thread, m);
    if (rc) {
        log_error("cannot start the monitor thread: %s", strerror(rc));
        return -1;
    }
    m->thread_started = true;
    return 0;
}

static void monitor_vm_end(void *opaque, int status)
{
    struct monitor *m = opaque;
    (void)status;
    if (m->thread_started) {
        eventfd_write(m->notify_fd, 1);
        pthread_join(m->thread, NULL);
        m->thread_started = false;
    }
    m->vm = NULL;
}

static void monitor_notify_stop(void *opaque)
{
    struct monitor *m = opaque;
    eventfd_write(m->notify_fd, 1);
}

int monitor_attach(struct monitor *m, struct vm *vm)
{
    return vm_add_observer(vm, &(struct vm_observer){.start = monitor_vm_start,
                                                      .stop = monitor_notify_stop,
                                                      .end = monitor_vm_end, .opaque = m});
}

struct monitor *monitor_open(const char *spec, bool serial_on_stdio, const char *dump_dir)
{
    struct monitor *m = calloc(1, sizeof(*m));
    if (!m) {
        log_error("out of memory");
        return NULL;
    }
    m->listen_fd = m->in_fd = m->out_fd = m->dump_dir_fd = -1;
    m->limit = (struct ratelimit)RATELIMIT_INIT;
    m->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (dump_dir && (m->dump_dir_fd = open(dump_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC)) < 0) {
        log_error("--dump-dir %s: %s", dump_dir, strerror(errno));
        monitor_close(m);
        return NULL;
    }
    if (!strcmp(spec, "stdio")) {
        if (serial_on_stdio) {
            log_error("--monitor stdio needs the serial console elsewhere (--serial file:PATH or none)");
            monitor_close(m);
            return NULL;
        }
        m->stdio = true;
        m->in_fd = STDIN_FILENO;
        m->out_fd = STDOUT_FILENO;
    } else if ((m->listen_fd = listen_start(spec, LISTEN_MONITOR, "--monitor", m->unix_path)) < 0) {
        monitor_close(m);
        return NULL;
    }
    if (m->notify_fd < 0) {
        log_error("eventfd: %s", strerror(errno));
        monitor_close(m);
        return NULL;
    }
    return m;
}

void monitor_close(struct monitor *m)
{
    if (!m)
        return;
    if (!m->stdio && m->in_fd >= 0)
        close(m->in_fd);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    if (m->unix_path[0])
        unlink(m->unix_path);
    if (m->notify_fd >= 0)
        close(m->notify_fd);
    if (m->dump_dir_fd >= 0)
        close(m->dump_dir_fd);
    symbols_close(m->syms);
    free(m);
}
