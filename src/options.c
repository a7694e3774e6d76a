/* options.c - parses slate's command line into a struct slate_config. */
#include "options.h"

#include "device.h"
#include "flight.h"
#include "log.h"


#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef SLATE_VERSION
#define SLATE_VERSION "0.1.0"
#endif
#ifndef SLATE_COMMIT
#define SLATE_COMMIT "unknown" /* (built outside the Makefile) */
#endif

/* --profile PATH[,hz=N][,paused]: fills path (its own copy), hz and paused. */
/* "df,pf,gp,ud" (names or numbers 0..31) into a vector mask for --trace exc=...; "" gives the
 * default #DE #UD #GP #PF, the faults a kernel's own bugs raise most. At most EXC_WATCHED
 * vectors (the debug registers). */
static int exc_trace_parse(const char *list, uint32_t *vectors, char *err, size_t errlen)
{
    static const char *const names[32] = {"de", "db", "nmi", "bp", "of", "br", "ud", "nm", "df", NULL,
                                          "ts", "np", "ss", "gp", "pf", NULL, "mf", "ac", "mc", "xm",
                                          "ve", "cp"};
    *vectors = 0;
    if (!*list) {
        *vectors = 1u << 0 | 1u << 6 | 1u << 13 | 1u << 14; /* #DE #UD #GP #PF */
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, "+,");
        int v = -1;
        for (int i = 0; i < 32; i++)
            if (names[i] && strlen(names[i]) == len && !strncasecmp(p, names[i], len))
                v = i;
        char *end;
        long n = strtol(p, &end, 0);
        if (v < 0 && end == p + len && n >= 0 && n < 32)
            v = (int)n;
        if (v < 0)
            return error_text(err, errlen, "--trace exc=%s: '%.*s' is not an exception (de, db, bp, ud, "
                              "df, gp, pf, ... or 0..31)", list, (int)len, p);
        *vectors |= 1u << v;
        p += len + (p[len] != 0);
    }
    if (__builtin_popcount(*vectors) > EXC_WATCHED)
        return error_text(err, errlen, "--trace exc=%s: at most %d exceptions (one debug register "
                          "each)", list, EXC_WATCHED);
    return 0;
}


static int trace_parse(const char *list, unsigned *mask, uint32_t *exc_vectors, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        unsigned bits;
    } kinds[] = {{"io", TRACE_IO}, {"mmio", TRACE_MMIO}, {"hypercall", TRACE_HYPERCALL},
                 {"irq", TRACE_IRQ}, {"all", TRACE_IO | TRACE_MMIO | TRACE_HYPERCALL | TRACE_IRQ}};
    *mask = 0;
    *exc_vectors = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        unsigned bits = 0;
        if ((len == 3 || (len > 4 && p[3] == '=')) && !strncmp(p, "exc", 3)) {
            char vectors[64] = "";
            if (len > 4)
                snprintf(vectors, sizeof(vectors), "%.*s", (int)(len - 4), p + 4);
            if (exc_trace_parse(vectors, exc_vectors, err, errlen))
                return -1;
            *mask |= TRACE_EXC;
            p += len + (p[len] == ',');
            continue;
        }
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (strlen(kinds[i].name) == len && !strncmp(p, kinds[i].name, len))
                bits = kinds[i].bits;
        if (!bits) {
            snprintf(err, errlen, "--trace %s: unknown event '%.*s' (expected io, mmio, hypercall, "
                     "irq, exc[=VECTORS] or all)", list, (int)len, p);
            return -1;
        }
        *mask |= bits;
        p += len + (p[len] == ',');
    }
    if (!*mask) {
        snprintf(err, errlen, "--trace: expected io, mmio, hypercall, irq, exc or all");
        return -1;
    }
    return 0;
}

static int profile_parse(const char *arg, char *path, size_t pathlen, unsigned *hz, bool *paused, char *err,
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


static const char help_head[] =
    "usage: slate [OPTIONS] KERNEL\n"
    "\n"
    "Runs KERNEL (a flat binary loaded at physical 0, or an ELF32/ELF64 file) on the slate\n"
    "machine. The machine is described in docs/machine.md.\n"
    "\n"
    "  -m SIZE                RAM size with a K, M, G or T suffix (binary: 1K = 1024; no\n"
    "                         suffix: MiB), a multiple of 4K from 1M to 256G; default 128M\n"
    "  --smp N                number of CPUs, 1 to 1024 (and at most what KVM allows); default 1\n"
    "  --entry MODE           real | protected | long; default real for a flat binary,\n"
    "                         protected for ELF32, long for ELF64\n"
    "  --load FILE[@ADDR][,string=S]\n"
    "                         load FILE at guest-physical ADDR, or page-aligned above the\n"
    "                         kernel (repeatable, up to 16): in the info block, and the\n"
    "                         modules of a Multiboot or Limine kernel, whose string is S\n"
    "                         (its command line; default: FILE as given)\n"
    "  --boot PROTOCOL        native | multiboot2 | multiboot | limine; default: detected from\n"
    "                         the kernel (Limine requests, then Multiboot2, then Multiboot)\n"
    "  --append STRING        the kernel command line (up to 4095 bytes), in the info block\n"
    "  --serial BACKEND       stdio | file:PATH | none; default stdio\n"
    "  --timeout SECONDS      stop the guest after SECONDS and exit with 124\n"
    "  --strict               stop on any access to an unclaimed port or address\n"
    "  --gdb [HOST:]PORT|unix:PATH\n"
    "                         serve the GDB remote protocol (default host 127.0.0.1)\n"
    "  --gdb-wait             hold the first instruction until gdb attaches\n"
    "  --trace LIST           log io, mmio, hypercall, irq events (comma-separated, or all)\n"
    "                         with the CPU and RIP, to stderr or --trace-file PATH; exc logs\n"
    "                         exceptions (exc=pf+gp: which; default de+ud+gp+pf, at most 4)\n"
    "  --stats                print a table of exits by reason and by device at the end\n"
    "  --monitor stdio|unix:PATH|tcp:HOST:PORT\n"
    "                         a text monitor: info registers, info mem, x/Ni, stop, cont...\n"
    "  --dump-dir DIR         where monitor commands (screendump) may write files; without it\n"
    "                         they write none\n"
    "  --flight N             keep the last N events (0 to 4096; default 32; 0: off) for\n"
    "                         crash and hang reports (the flight recorder)\n"
    "  --report PATH.json     write how the machine ended (status, reason, CPUs, the last\n"
    "                         events) as JSON, for CI\n"
    "  --on-crash pause|exit  pause: keep a crashed machine stopped for gdb and the monitor\n"
    "                         (slate exits with 126 when told to quit); default exit\n"
    "  --dump-core PATH       when the guest crashes, write an ELF core file of it (every CPU's\n"
    "                         registers, RAM) for gdb KERNEL PATH\n"
    "  --profile PATH[,hz=N][,paused]\n"
    "                         sample where the kernel spends its time (default 997 Hz): folded\n"
    "                         stacks at PATH, or a flame graph when PATH ends in .svg\n"
    "  --symbols ELF          function names and source lines from ELF (for a flat-binary\n"
    "                         kernel, which has none) in reports, traces and profiles\n"
    "  --exit-port PORT       QEMU's isa-debug-exit: a write of V to PORT exits with status\n"
    "                         (V << 1) | 1, as under QEMU (e.g. --exit-port 0xf4)\n"
    "  --check                check the kernel, images, disks and options without KVM, print\n"
    "                         what would boot, and exit 0 (or 125 naming the problem)\n"
    "\n"
    "Snapshots (docs/machine.md, \"Snapshots\"):\n"
    "  --snapshot PATH        the guest's SLATE_HC_SNAPSHOT saves the whole machine to PATH\n"
    "  --restore PATH[,lazy]  resume a saved machine (no KERNEL): its RAM, CPUs and devices\n"
    "                         come from PATH; back ends (--disk, --net, --serial, --vnc,\n"
    "                         --gdb) may be given anew; lazy maps RAM from the file instead\n"
    "                         of reading and checking it all\n"
    "  --each CASE... KERNEL  boot once; at SLATE_HC_SNAPSHOT run each case file from that\n"
    "                         point (the hypercall returns its number, its bytes in the\n"
    "                         kernel's buffer) until the kernel exits; TAP on stdout, exit 0\n"
    "                         only if every case exited 0 (1 otherwise)\n"
    "  --each-dir DIR         the files in DIR are cases too (in name order)\n"
    "  --each-out DIR         each case's serial output, N-NAME.log (default slate-each)\n"
    "  --case-timeout SECONDS a case that runs longer fails (default 10)\n"
    "  --jobs N               run the cases in N machines side by side, each restored from\n"
    "                         the snapshot (default 1)\n"
    "\n"
    "Record and replay (docs/debugging.md, \"Record and replay\"):\n"
    "  --record PATH          log every value the guest reads and where each interrupt enters\n"
    "                         (one CPU; no --disk or --net yet)\n"
    "  --replay PATH          run the recorded kernel again (no KERNEL) with the logged inputs:\n"
    "                         the same output and status; a divergence stops it, named\n";

static const char help_tail[] =
    "  -h, --help             print this text\n"
    "  -V, --version          print the version\n"
    "\n"
    "On a terminal the console is in raw mode: Ctrl-A x quits, Ctrl-A p pauses or resumes,\n"
    "Ctrl-A Ctrl-A sends Ctrl-A.\n"
    "\n"
    "Needs Linux 4.17 or later with /dev/kvm readable and writable (the kvm group), on x86-64.\n"
    "Limits: 1M to 256G of RAM, 1024 CPUs, 8 disks, 4 network cards, 16 --load images.\n"
    "\n"
    "Exit status:\n"
    "  0-123  the guest's own exit code (power device or exit hypercall)\n"
    "  124    --timeout expired\n"
    "  125    slate failed: bad usage, unreadable or invalid kernel, KVM unavailable\n"
    "  126    the guest crashed: triple fault, KVM internal error, --strict violation\n"
    "  130    interrupted by SIGINT (143 SIGTERM, 129 SIGHUP)\n";

enum {
    OPT_SMP = 256,
    OPT_ENTRY,
    OPT_LOAD,
    OPT_APPEND,
    OPT_SERIAL,
    OPT_TIMEOUT,
    OPT_STRICT,
    OPT_GDB,
    OPT_GDB_WAIT,
    OPT_TRACE,
    OPT_TRACE_FILE,
    OPT_STATS,
    OPT_MONITOR,
    OPT_SNAPSHOT,
    OPT_RESTORE,
    OPT_EACH,
    OPT_EACH_DIR,
    OPT_EACH_OUT,
    OPT_CASE_TIMEOUT,
    OPT_JOBS,
    OPT_RECORD,
    OPT_REPLAY,
    OPT_EACH_WORKER,
    OPT_CHECK,
    OPT_DUMP_DIR,
    OPT_REPORT,
    OPT_ON_CRASH,
    OPT_DUMP_CORE,
    OPT_PROFILE,
    OPT_SYMBOLS,
    OPT_EXIT_PORT,
    OPT_BOOT,
    OPT_FLIGHT,
};

static const struct option core_options[] = {
    {"smp", required_argument, NULL, OPT_SMP},
    {"entry", required_argument, NULL, OPT_ENTRY},
    {"load", required_argument, NULL, OPT_LOAD},
    {"append", required_argument, NULL, OPT_APPEND},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"gdb", required_argument, NULL, OPT_GDB},
    {"gdb-wait", no_argument, NULL, OPT_GDB_WAIT},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"trace-file", required_argument, NULL, OPT_TRACE_FILE},
    {"stats", no_argument, NULL, OPT_STATS},
    {"monitor", required_argument, NULL, OPT_MONITOR},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"restore", required_argument, NULL, OPT_RESTORE},
    {"each", no_argument, NULL, OPT_EACH},
    {"each-dir", required_argument, NULL, OPT_EACH_DIR},
    {"each-out", required_argument, NULL, OPT_EACH_OUT},
    {"case-timeout", required_argument, NULL, OPT_CASE_TIMEOUT},
    {"jobs", required_argument, NULL, OPT_JOBS},
    {"record", required_argument, NULL, OPT_RECORD},
    {"replay", required_argument, NULL, OPT_REPLAY},
    {"each-worker", required_argument, NULL, OPT_EACH_WORKER},
    {"check", no_argument, NULL, OPT_CHECK},
    {"dump-dir", required_argument, NULL, OPT_DUMP_DIR},
    {"report", required_argument, NULL, OPT_REPORT},
    {"on-crash", required_argument, NULL, OPT_ON_CRASH},
    {"dump-core", required_argument, NULL, OPT_DUMP_CORE},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"symbols", required_argument, NULL, OPT_SYMBOLS},
    {"exit-port", required_argument, NULL, OPT_EXIT_PORT},
    {"boot", required_argument, NULL, OPT_BOOT},
    {"flight", required_argument, NULL, OPT_FLIGHT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"memory", required_argument, NULL, 'm'},
};
#define CORE_OPTIONS (sizeof(core_options) / sizeof(core_options[0]))
#define OPT_DEVICE 1000 /* getopt's value for device option n is OPT_DEVICE + n */
#define DEVICE_OPTIONS_MAX 32

/* Every device type's options, in device_types order: devices own their options (device.h). */
static unsigned device_options(const struct device_option *out[DEVICE_OPTIONS_MAX])
{
    unsigned n = 0;
    for (const struct device_ops *const *ops = device_types; *ops; ops++)
        for (const struct device_option *o = (*ops)->options; o && o->name && n < DEVICE_OPTIONS_MAX; o++)
            out[n++] = o;
    return n;
}

void options_help(FILE *out)
{
    const struct device_option *opts[DEVICE_OPTIONS_MAX];
    unsigned n = device_options(opts);
    fputs(help_head, out);
    for (unsigned i = 0; i < n; i++)
        fputs(opts[i]->usage, out);
    fputs(help_tail, out);
}

int parse_size(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*text || *text == '-' || *text == '+')
        return -1;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text)
        return -1;
    unsigned shift;
    switch (*end) {
    case 'K': case 'k': shift = 10; break;
    case 'M': case 'm': case '\0': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'T': case 't': shift = 40; break;
    default: return -1;
    }
    if (*end && end[1] != '\0')
        return -1;
    if (value > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)value << shift;
    return 0;
}

static int parse_uint(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*text || *text == '-' || *text == '+')
        return -1;
    unsigned long long value = strtoull(text, &end, 0);
    if (errno || *end)
        return -1;
    *out = value;
    return 0;
}

static int parse_ram(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    uint64_t size;
    if (parse_size(arg, &size))
        return error_text(err, errlen, "-m %s: not a size (a number with K, M, G or T, binary units; no "
                    "suffix means MiB; examples: 512M, 2G)", arg);
    if (size < RAM_MIN || size > RAM_MAX)
        return error_text(err, errlen, "-m %s: RAM must be between 1M and 256G", arg);
    if (size & 0xFFF)
        return error_text(err, errlen, "-m %s: RAM must be a multiple of 4K", arg);
    cfg->ram_size = size;
    return 0;
}

static int parse_smp(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    uint64_t n;
    if (parse_uint(arg, &n) || n < 1 || n > SMP_MAX)
        return error_text(err, errlen, "--smp %s: expected a number of CPUs from 1 to %d", arg, SMP_MAX);
    cfg->smp = (unsigned)n;
    return 0;
}

static int parse_entry(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (!strcmp(arg, "real"))
        cfg->entry = ENTRY_REAL;
    else if (!strcmp(arg, "protected"))
        cfg->entry = ENTRY_PROTECTED;
    else if (!strcmp(arg, "long"))
        cfg->entry = ENTRY_LONG;
    else
        return error_text(err, errlen, "--entry %s: expected real, protected or long", arg);
    return 0;
}

static int parse_boot(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    static const char *const names[] = {[BOOT_NATIVE] = "native", [BOOT_MULTIBOOT2] = "multiboot2",
                                        [BOOT_MULTIBOOT] = "multiboot", [BOOT_LIMINE] = "limine"};
    for (unsigned i = BOOT_NATIVE; i <= BOOT_LIMINE; i++)
        if (!strcmp(arg, names[i])) {
            cfg->boot = (enum boot_protocol)i;
            return 0;
        }
    return error_text(err, errlen, "--boot %s: expected native, multiboot2, multiboot or limine", arg);
}

/* FILE@ADDR, or FILE alone: slate places it; then ,string=S, the module's string (all the rest,
 * commas included), as GRUB's `module FILE S` and Limine's module cmdline give it. */
static int parse_load(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    const char *opt = strstr(arg, ",string=");
    size_t spec_len = opt ? (size_t)(opt - arg) : strlen(arg);
    char spec[LOAD_PATH_MAX];
    if (spec_len >= sizeof(spec))
        return error_text(err, errlen, "--load: the file name is longer than %d bytes", LOAD_PATH_MAX - 1);
    memcpy(spec, arg, spec_len);
    spec[spec_len] = '\0';
    const char *at = strrchr(spec, '@');
    if (!*spec || at == spec)
        return error_text(err, errlen, "--load %s: expected FILE[@ADDR][,string=S]", arg);
    if (cfg->load_count == MAX_LOADS)
        return error_text(err, errlen, "--load: at most %d images", MAX_LOADS);
    uint64_t addr = LOAD_ADDR_AUTO;
    if (at && (parse_uint(at + 1, &addr) || addr == LOAD_ADDR_AUTO))
        return error_text(err, errlen, "--load %s: '%s' is not an address", arg, at + 1);
    const char *string = opt ? opt + strlen(",string=") : NULL;
    if (string && strlen(string) >= LOAD_PATH_MAX)
        return error_text(err, errlen, "--load: the module string is longer than %d bytes", LOAD_PATH_MAX - 1);
    struct load_spec *load = &cfg->loads[cfg->load_count++];
    size_t path_len = at ? (size_t)(at - spec) : spec_len;
    memcpy(load->path, spec, path_len);
    load->path[path_len] = '\0';
    snprintf(load->string, sizeof(load->string), "%s", string ? string : load->path);
    load->addr = addr;
    return 0;
}

static int parse_serial(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (!strcmp(arg, "stdio"))
        cfg->serial = SERIAL_STDIO;
    else if (!strcmp(arg, "none"))
        cfg->serial = SERIAL_NONE;
    else if (!strncmp(arg, "file:", 5) && arg[5]) {
        cfg->serial = SERIAL_FILE;
        cfg->serial_path = arg + 5;
    } else
        return error_text(err, errlen, "--serial %s: expected stdio, file:PATH or none", arg);
    return 0;
}

static int parse_timeout(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double seconds = strtod(arg, &end);
    if (errno || end == arg || *end || !(seconds > 0) || seconds > 1e6)
        return error_text(err, errlen, "--timeout %s: expected a number of seconds above 0", arg);
    cfg->timeout_s = seconds;
    return 0;
}

static int parse_one(int opt, char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    switch (opt) {
    case 'm': return parse_ram(arg, cfg, err, errlen);
    case OPT_SMP: return parse_smp(arg, cfg, err, errlen);
    case OPT_ENTRY: return parse_entry(arg, cfg, err, errlen);
    case OPT_LOAD: return parse_load(arg, cfg, err, errlen);
    case OPT_BOOT: return parse_boot(arg, cfg, err, errlen);
    case OPT_SERIAL: return parse_serial(arg, cfg, err, errlen);
    case OPT_TIMEOUT: return parse_timeout(arg, cfg, err, errlen);
    case OPT_APPEND:
        if (strlen(arg) > MAX_APPEND)
            return error_text(err, errlen, "--append: the command line is longer than %d bytes",
                        MAX_APPEND);
        cfg->append = arg;
        return 0;
    case OPT_STRICT: cfg->strict = true; return 0;
    case OPT_CHECK: cfg->check_only = true; return 0;
    case OPT_DUMP_DIR: cfg->dump_dir = arg; return 0;
    case OPT_REPORT: cfg->report = arg; return 0;
    case OPT_DUMP_CORE: cfg->dump_core = arg; return 0;
    case OPT_SYMBOLS: cfg->symbols = arg; return 0;
    case OPT_EXIT_PORT: {
        uint64_t port;
        if (parse_uint(arg, &port) || port == 0 || port > 0xFFFF)
            return error_text(err, errlen, "--exit-port %s: expected a port number from 1 to 0xffff", arg);
        cfg->exit_port = (int)port;
        return 0;
    }
    case OPT_FLIGHT: {
        uint64_t events;
        if (parse_uint(arg, &events) || events > FLIGHT_EVENTS_MAX)
            return error_text(err, errlen, "--flight %s: expected a number of events from 0 to %d", arg,
                              FLIGHT_EVENTS_MAX);
        cfg->flight_events = (unsigned)events;
        return 0;
    }
    case OPT_PROFILE:
        return profile_parse(arg, cfg->profile_path, sizeof(cfg->profile_path), &cfg->profile_hz,
                             &cfg->profile_paused, err, errlen);
    case OPT_ON_CRASH:
        if (strcmp(arg, "pause") && strcmp(arg, "exit"))
            return error_text(err, errlen, "--on-crash %s: expected pause or exit", arg);
        cfg->on_crash_pause = !strcmp(arg, "pause");
        return 0;
    case OPT_GDB: cfg->gdb = arg; return 0;
    case OPT_GDB_WAIT: cfg->gdb_wait = true; return 0;
    case OPT_TRACE: return trace_parse(arg, &cfg->trace, &cfg->exc_vectors, err, errlen);
    case OPT_TRACE_FILE: cfg->trace_file = arg; return 0;
    case OPT_STATS: cfg->stats = true; return 0;
    case OPT_MONITOR: cfg->monitor = arg; return 0;
    case OPT_SNAPSHOT: cfg->snapshot_path = arg; return 0;
    case OPT_RESTORE: {
        size_t n = strlen(arg);
        cfg->restore_lazy = n > 5 && !strcmp(arg + n - 5, ",lazy");
        n -= cfg->restore_lazy ? 5 : 0;
        if (n == 0 || n >= sizeof(cfg->restore_path))
            return error_text(err, errlen, "--restore %s: expected PATH[,lazy]", arg);
        memcpy(cfg->restore_path, arg, n);
        cfg->restore_path[n] = 0;
        return 0;
    }
    case OPT_EACH: cfg->each = true; return 0;
    case OPT_EACH_DIR: cfg->each = true, cfg->each_dir = arg; return 0;
    case OPT_EACH_OUT: cfg->each_out = arg; return 0;
    case OPT_RECORD: cfg->record_path = arg; return 0;
    case OPT_REPLAY: cfg->replay_path = arg; return 0;
    case OPT_JOBS: {
        uint64_t n;
        if (parse_uint(arg, &n) || n < 1 || n > EACH_JOBS_MAX)
            return error_text(err, errlen, "--jobs %s: expected a number from 1 to %d", arg, EACH_JOBS_MAX);
        cfg->jobs = (unsigned)n;
        return 0;
    }
    case OPT_EACH_WORKER: {
        unsigned k, n;
        int used = 0;
        if (sscanf(arg, "%u/%u%n", &k, &n, &used) != 2 || arg[used] || n < 2 || n > EACH_JOBS_MAX || k >= n)
            return error_text(err, errlen, "--each-worker %s: expected K/N (slate's own option for --jobs)", arg);
        cfg->worker_index = k, cfg->worker_count = n;
        return 0;
    }
    case OPT_CASE_TIMEOUT: {
        char *end;
        double s = strtod(arg, &end);
        if (end == arg || *end || !(s > 0) || s > 86400)
            return error_text(err, errlen, "--case-timeout %s: expected seconds (0 < S <= 86400)", arg);
        cfg->case_timeout_s = s;
        return 0;
    }
    }
    return error_text(err, errlen, "internal: unhandled option %d", opt);
}

static void config_defaults(struct slate_config *cfg);

int options_merge_restore(struct slate_config *m, const struct slate_config *g, char *err, size_t errlen)
{
    struct slate_config defaults;
    config_defaults(&defaults);
    if (g->ram_size != defaults.ram_size || g->smp != defaults.smp || g->load_count || g->append ||
        g->entry != defaults.entry || g->boot != defaults.boot)
        return error_text(err, errlen, "--restore: the machine (-m, --smp, --load, --append, --entry, "
                          "--boot) comes from the snapshot");
    if (g->disk_count && g->disk_count != m->disk_count)
        return error_text(err, errlen, "--restore: the snapshot's machine has %u disk%s; give --disk %u "
                          "time%s or not at all", m->disk_count, m->disk_count == 1 ? "" : "s",
                          m->disk_count, m->disk_count == 1 ? "" : "s");
    if (g->nic_count && g->nic_count != m->nic_count)
        return error_text(err, errlen, "--restore: the snapshot's machine has %u network card%s; give "
                          "--net %u time%s or not at all", m->nic_count, m->nic_count == 1 ? "" : "s",
                          m->nic_count, m->nic_count == 1 ? "" : "s");
    if (g->display && !m->display)
        return error_text(err, errlen, "--restore: the snapshot's machine has no display");
    if (g->disk_count)
        memcpy(m->disks, g->disks, sizeof(m->disks));
    if (g->nic_count)
        memcpy(m->nics, g->nics, sizeof(m->nics));
    if (g->serial != SERIAL_STDIO || m->serial == SERIAL_FILE) /* never over the saver's file */
        m->serial = g->serial, m->serial_path = g->serial_path;
    if (g->vnc_host[0] || g->web_host[0] || g->sdl || g->screenshot || g->vnc_password_file) {
        memcpy(m->vnc_host, g->vnc_host, sizeof(m->vnc_host));
        memcpy(m->web_host, g->web_host, sizeof(m->web_host));
        m->vnc_port = g->vnc_port, m->web_port = g->web_port, m->sdl = g->sdl, m->screenshot = g->screenshot;
        m->vnc_password_file = g->vnc_password_file;
    } else { /* the saver's own front ends */
        m->vnc_host[0] = m->web_host[0] = 0, m->sdl = false, m->screenshot = NULL;
    }
    /* Everything else is how this run watches the machine: the user's alone. */
    m->timeout_s = g->timeout_s, m->gdb = g->gdb, m->gdb_wait = g->gdb_wait, m->monitor = g->monitor;
    m->dump_dir = g->dump_dir, m->report = g->report, m->on_crash_pause = g->on_crash_pause;
    m->dump_core = g->dump_core, m->flight_events = g->flight_events, m->trace = g->trace;
    m->exc_vectors = g->exc_vectors, m->trace_file = g->trace_file, m->stats = g->stats;
    m->strict = g->strict, m->check_only = g->check_only, m->symbols = g->symbols ? g->symbols : m->symbols;
    memcpy(m->profile_path, g->profile_path, sizeof(m->profile_path));
    m->profile_hz = g->profile_hz, m->profile_paused = g->profile_paused;
    m->snapshot_path = NULL, m->each = g->each, m->cases = g->cases, m->case_count = g->case_count;
    m->each_dir = NULL, m->each_out = g->each_out, m->case_timeout_s = g->case_timeout_s, m->jobs = 1;
    m->worker_index = g->worker_index, m->worker_count = g->worker_count;
    memcpy(m->restore_path, g->restore_path, sizeof(m->restore_path));
    m->restore_lazy = g->restore_lazy;
    return 0;
}

static void config_defaults(struct slate_config *cfg)
{
    *cfg = (struct slate_config){
        .ram_size = 128ULL << 20,
        .smp = 1,
        .entry = ENTRY_DEFAULT,
        .serial = SERIAL_STDIO,
        .exit_port = -1,
        .flight_events = FLIGHT_EVENTS,
        .case_timeout_s = EACH_CASE_TIMEOUT,
        .each_out = EACH_OUT_DEFAULT,
        .jobs = 1,
    };
}

enum options_result options_parse(int argc, char **argv, struct slate_config *cfg, char *err,
                                  size_t errlen)
{
    config_defaults(cfg);
    const struct device_option *dev_opts[DEVICE_OPTIONS_MAX];
    unsigned dev_count = device_options(dev_opts);
    struct option long_options[CORE_OPTIONS + DEVICE_OPTIONS_MAX + 1];
    memcpy(long_options, core_options, sizeof(core_options));
    for (unsigned i = 0; i < dev_count; i++)
        long_options[CORE_OPTIONS + i] = (struct option){dev_opts[i]->name,
                                                         dev_opts[i]->has_arg ? required_argument : no_argument,
                                                         NULL, OPT_DEVICE + (int)i};
    long_options[CORE_OPTIONS + dev_count] = (struct option){0};
    opterr = 0;
    optind = 0; /* glibc: 0 also resets getopt's internal state, so tests can parse twice */
    int opt;
    while ((opt = getopt_long(argc, argv, ":m:hV", long_options, NULL)) != -1) {
        if (opt == 'h') {
            options_help(stdout);
            return OPTIONS_EXIT_OK;
        }
        if (opt == 'V') {
            printf("slate %s (git %s)\n", SLATE_VERSION, SLATE_COMMIT);
            return OPTIONS_EXIT_OK;
        }
        if (opt == '?' || opt == ':') {
            const char *name = argv[optind - 1];
            error_text(err, errlen, "%s: %s (see slate --help)", name,
                 opt == '?' ? "unknown option" : "missing argument");
            return OPTIONS_ERROR;
        }
        if (opt >= OPT_DEVICE && opt < OPT_DEVICE + (int)dev_count
                ? dev_opts[opt - OPT_DEVICE]->parse(cfg, optarg, err, errlen) != 0
                : parse_one(opt, optarg, cfg, err, errlen) != 0)
            return OPTIONS_ERROR;
    }
    cfg->argc = argc, cfg->argv = argv;
    if (cfg->replay_path) { /* the machine and its kernel are the recording's */
        if (optind < argc || cfg->record_path || cfg->restore_path[0] || cfg->each) {
            error_text(err, errlen, "--replay PATH: %s", optind < argc ? "takes no kernel (the recording names it)"
                       : "not with --record, --restore or --each");
            return OPTIONS_ERROR;
        }
        return OPTIONS_RUN;
    }
    if (cfg->restore_path[0] && cfg->worker_count) { /* a --jobs worker: the cases follow */
        cfg->each = true;
        cfg->cases = argv + optind;
        cfg->case_count = (unsigned)(argc - optind);
        return OPTIONS_RUN;
    }
    if (cfg->worker_count) {
        error_text(err, errlen, "--each-worker: slate's own option for --jobs, with --restore");
        return OPTIONS_ERROR;
    }
    if (cfg->restore_path[0]) {
        if (optind < argc) {
            error_text(err, errlen, "%s: --restore takes no kernel (the machine comes from %s)", argv[optind],
                       cfg->restore_path);
            return OPTIONS_ERROR;
        }
        if (cfg->each || cfg->snapshot_path) {
            error_text(err, errlen, "--restore: not with %s", cfg->each ? "--each" : "--snapshot");
            return OPTIONS_ERROR;
        }
        return OPTIONS_RUN;
    }
    if (optind >= argc) {
        error_text(err, errlen, "no kernel given (usage: slate [OPTIONS] KERNEL; see slate --help)");
        return OPTIONS_ERROR;
    }
    if (cfg->each) {
        cfg->cases = argv + optind;
        cfg->case_count = (unsigned)(argc - optind - 1);
        if (!cfg->case_count && !cfg->each_dir) {
            error_text(err, errlen, "--each: no cases (usage: slate --each CASE... KERNEL, or --each-dir DIR)");
            return OPTIONS_ERROR;
        }
        if (cfg->snapshot_path || cfg->on_crash_pause || cfg->gdb_wait) {
            error_text(err, errlen, "--each: not with %s", cfg->snapshot_path ? "--snapshot"
                       : cfg->on_crash_pause ? "--on-crash pause" : "--gdb-wait");
            return OPTIONS_ERROR;
        }
        cfg->kernel = argv[argc - 1];
        return OPTIONS_RUN;
    }
    if (optind + 1 < argc) {
        error_text(err, errlen, "%s: unexpected argument after the kernel %s", argv[optind + 1],
             argv[optind]);
        return OPTIONS_ERROR;
    }
    if (cfg->gdb_wait && !cfg->gdb) {
        error_text(err, errlen, "--gdb-wait needs --gdb [HOST:]PORT");
        return OPTIONS_ERROR;
    }
    cfg->kernel = argv[optind];
    return OPTIONS_RUN;
}
