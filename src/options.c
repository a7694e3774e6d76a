/* options.c - parses slate's command line into a struct slate_config. */
#include "options.h"
#include "log.h"

#include "trace.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SLATE_VERSION
#define SLATE_VERSION "0.1.0"
#endif

const char options_help[] =
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
    "  --load FILE@ADDR       load FILE at guest-physical ADDR (repeatable, up to 16); listed\n"
    "                         in the info block\n"
    "  --append STRING        the kernel command line (up to 4095 bytes), in the info block\n"
    "  --serial BACKEND       stdio | file:PATH | none; default stdio\n"
    "  --timeout SECONDS      stop the guest after SECONDS and exit with 124\n"
    "  --strict               stop on any access to an unclaimed port or address\n"
    "  --disk PATH[,ro][,cache=writeback|none]\n"
    "                         a raw disk image or block device (repeatable, up to 8);\n"
    "                         locked while in use; cache=none uses O_DIRECT\n"
    "  --gdb [HOST:]PORT|unix:PATH\n"
    "                         serve the GDB remote protocol (default host 127.0.0.1)\n"
    "  --gdb-wait             hold the first instruction until gdb attaches\n"
    "  --trace LIST           log io, mmio, hypercall, irq events (comma-separated, or all)\n"
    "                         with the CPU and RIP, to stderr or --trace-file PATH\n"
    "  --stats                print a table of exits by reason and by device at the end\n"
    "  --net tap:IFNAME|user|socket:PATH[,mac=XX:XX:XX:XX:XX:XX]\n"
    "                         a network card (repeatable, up to 4); user mode takes\n"
    "                         ,hostfwd=tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT (repeatable)\n"
    "                         and ,loopback=on to let the guest reach the host's 127.0.0.1\n"
    "  --display vnc|sdl|none a display, keyboard and pointer, served over VNC or shown\n"
    "                         in a local SDL window\n"
    "  --vnc [HOST:]PORT|none where VNC listens (default 127.0.0.1:5900 with --display vnc)\n"
    "  --vnc-password FILE    VNC clients must give the password on the file's first line\n"
    "  --screenshot PATH.png  write the screen as a PNG when the guest exits\n"
    "  --monitor stdio|unix:PATH|tcp:HOST:PORT\n"
    "                         a text monitor: info registers, info mem, x/Ni, stop, cont...\n"
    "  --dump-dir DIR         where monitor commands (screendump) may write files; without it\n"
    "                         they write none\n"
    "  --check                check the kernel, images, disks and options without KVM, print\n"
    "                         what would boot, and exit 0 (or 125 naming the problem)\n"
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
    OPT_DISK,
    OPT_GDB,
    OPT_GDB_WAIT,
    OPT_TRACE,
    OPT_TRACE_FILE,
    OPT_STATS,
    OPT_MONITOR,
    OPT_NET,
    OPT_DISPLAY,
    OPT_VNC,
    OPT_VNC_PASSWORD,
    OPT_SCREENSHOT,
    OPT_CHECK,
    OPT_DUMP_DIR,
};

static const struct option long_options[] = {
    {"smp", required_argument, NULL, OPT_SMP},
    {"entry", required_argument, NULL, OPT_ENTRY},
    {"load", required_argument, NULL, OPT_LOAD},
    {"append", required_argument, NULL, OPT_APPEND},
    {"serial", required_argument, NULL, OPT_SERIAL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"disk", required_argument, NULL, OPT_DISK},
    {"gdb", required_argument, NULL, OPT_GDB},
    {"gdb-wait", no_argument, NULL, OPT_GDB_WAIT},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"trace-file", required_argument, NULL, OPT_TRACE_FILE},
    {"stats", no_argument, NULL, OPT_STATS},
    {"monitor", required_argument, NULL, OPT_MONITOR},
    {"net", required_argument, NULL, OPT_NET},
    {"display", required_argument, NULL, OPT_DISPLAY},
    {"vnc", required_argument, NULL, OPT_VNC},
    {"vnc-password", required_argument, NULL, OPT_VNC_PASSWORD},
    {"screenshot", required_argument, NULL, OPT_SCREENSHOT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"dump-dir", required_argument, NULL, OPT_DUMP_DIR},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"memory", required_argument, NULL, 'm'},
    {NULL, 0, NULL, 0},
};

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

/* --display vnc|sdl|none. sdl opens a local window; VNC stays off unless --vnc asks for it. */
static int parse_display(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (!strcmp(arg, "none")) {
        cfg->display = false;
        cfg->sdl = false;
        cfg->vnc_host[0] = 0;
    } else if (!strcmp(arg, "vnc")) {
        cfg->display = true;
        if (!cfg->vnc_host[0]) {
            snprintf(cfg->vnc_host, sizeof(cfg->vnc_host), "127.0.0.1");
            cfg->vnc_port = 5900;
        }
    } else if (!strcmp(arg, "sdl")) {
        cfg->display = true;
        cfg->sdl = true;
    } else {
        return error_text(err, errlen, "--display %s: expected vnc, sdl or none", arg);
    }
    return 0;
}

/* --vnc [HOST:]PORT|none. The host defaults to loopback: anything else must be asked for. */
static int parse_vnc(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (!strcmp(arg, "none")) {
        cfg->vnc_host[0] = 0;
        return 0;
    }
    const char *colon = strrchr(arg, ':');
    const char *port_text = colon ? colon + 1 : arg;
    char *end;
    long port = strtol(port_text, &end, 10);
    size_t host_len = colon ? (size_t)(colon - arg) : 0;
    if (!*port_text || *end || port < 1 || port > 65535 || host_len >= sizeof(cfg->vnc_host) ||
        (colon && host_len == 0))
        return error_text(err, errlen, "--vnc %s: expected [HOST:]PORT or none", arg);
    if (colon)
        snprintf(cfg->vnc_host, sizeof(cfg->vnc_host), "%.*s", (int)host_len, arg);
    else
        snprintf(cfg->vnc_host, sizeof(cfg->vnc_host), "127.0.0.1");
    cfg->vnc_port = (int)port;
    cfg->display = true;
    return 0;
}

/* tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT, as QEMU writes it. */
static int parse_hostfwd(const char *text, size_t len, struct hostfwd *fwd)
{
    char buf[96], addr[16] = "";
    unsigned host_port, guest_port;
    int used = 0;
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    fwd->udp = !strncmp(buf, "udp:", 4);
    if (strncmp(buf, "tcp:", 4) && !fwd->udp)
        return -1;
    const char *p = buf + 4;
    if (*p == ':') {
        p++;
    } else if (sscanf(p, "%15[0-9.]:%n", addr, &used) == 1 && used) {
        p += used;
    } else {
        return -1;
    }
    if (sscanf(p, "%u-:%u%n", &host_port, &guest_port, &used) != 2 || p[used] || !host_port ||
        !guest_port || host_port > 65535 || guest_port > 65535)
        return -1;
    snprintf(fwd->host_addr, sizeof(fwd->host_addr), "%s", addr[0] ? addr : "127.0.0.1");
    fwd->host_port = (uint16_t)host_port;
    fwd->guest_port = (uint16_t)guest_port;
    return 0;
}

/* tap:IFNAME | user | socket:PATH, then ,mac=... and (user) ,hostfwd=... options. */
static int parse_net(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (cfg->nic_count == MAX_NICS)
        return error_text(err, errlen, "--net: at most %d network cards", MAX_NICS);
    struct net_spec *net = &cfg->nics[cfg->nic_count];
    *net = (struct net_spec){0};
    size_t len = strcspn(arg, ",");
    if (len == 4 && !strncmp(arg, "user", 4)) {
        net->kind = NET_USER;
    } else if (len > 4 && !strncmp(arg, "tap:", 4) && len - 4 < 16) {
        net->kind = NET_TAP;
        memcpy(net->name, arg + 4, len - 4);
    } else if (len > 7 && !strncmp(arg, "socket:", 7) && len - 7 < 100) {
        net->kind = NET_SOCKET;
        memcpy(net->name, arg + 7, len - 7);
    } else {
        return error_text(err, errlen, "--net %s: expected tap:IFNAME (up to 15 characters), user, or "
                    "socket:PATH", arg);
    }
    for (const char *p = arg + len; *p == ',';) {
        const char *opt = p + 1;
        size_t n = strcspn(opt, ",");
        unsigned m[6];
        int used = 0;
        if (n == 21 && sscanf(opt, "mac=%2x:%2x:%2x:%2x:%2x:%2x%n", &m[0], &m[1], &m[2], &m[3], &m[4],
                              &m[5], &used) == 6 && used == 21) {
            for (int i = 0; i < 6; i++)
                net->mac[i] = (uint8_t)m[i];
            if (net->mac[0] & 1)
                return error_text(err, errlen, "--net %s: the MAC address is a multicast address", arg);
            net->has_mac = true;
        } else if (net->kind == NET_USER && n == 11 && !strncmp(opt, "loopback=on", 11)) {
            net->host_loopback = true;
        } else if (net->kind == NET_USER && n == 12 && !strncmp(opt, "loopback=off", 12)) {
            net->host_loopback = false;
        } else if (net->kind == NET_USER && !strncmp(opt, "hostfwd=", 8)) {
            if (net->fwd_count == MAX_HOSTFWD)
                return error_text(err, errlen, "--net: at most %d hostfwd rules", MAX_HOSTFWD);
            if (parse_hostfwd(opt + 8, n - 8, &net->fwd[net->fwd_count++]))
                return error_text(err, errlen, "--net %s: '%.*s' is not tcp|udp:[HOSTADDR]:HOSTPORT-:GUESTPORT",
                            arg, (int)(n - 8), opt + 8);
        } else {
            return error_text(err, errlen, "--net %s: unknown option '%.*s'", arg, (int)n, opt);
        }
        p = opt + n;
    }
    cfg->nic_count++;
    return 0;
}

/* PATH[,ro][,cache=writeback|none]. A path containing commas is not supported. */
static int parse_disk(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    if (cfg->disk_count == MAX_DISKS)
        return error_text(err, errlen, "--disk: at most %d disks", MAX_DISKS);
    struct disk_spec disk = {0};
    const char *comma = strchr(arg, ',');
    size_t path_len = comma ? (size_t)(comma - arg) : strlen(arg);
    if (path_len == 0)
        return error_text(err, errlen, "--disk %s: expected PATH[,ro][,cache=writeback|none]", arg);
    if (path_len >= LOAD_PATH_MAX)
        return error_text(err, errlen, "--disk: the file name is longer than %d bytes", LOAD_PATH_MAX - 1);
    memcpy(disk.path, arg, path_len);
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
        if (len == 2 && !strncmp(opt, "ro", 2))
            disk.read_only = true;
        else if (len == 15 && !strncmp(opt, "cache=writeback", 15))
            disk.cache_none = false;
        else if (len == 10 && !strncmp(opt, "cache=none", 10))
            disk.cache_none = true;
        else
            return error_text(err, errlen, "--disk %s: unknown option '%.*s' (expected ro, "
                        "cache=writeback or cache=none)", arg, (int)len, opt);
    }
    cfg->disks[cfg->disk_count++] = disk;
    return 0;
}

static int parse_load(const char *arg, struct slate_config *cfg, char *err, size_t errlen)
{
    char *at = strrchr(arg, '@');
    if (!at || at == arg || !at[1])
        return error_text(err, errlen, "--load %s: expected FILE@ADDR", arg);
    if (cfg->load_count == MAX_LOADS)
        return error_text(err, errlen, "--load: at most %d images", MAX_LOADS);
    uint64_t addr;
    if (parse_uint(at + 1, &addr))
        return error_text(err, errlen, "--load %s: '%s' is not an address", arg, at + 1);
    size_t path_len = (size_t)(at - arg);
    if (path_len >= LOAD_PATH_MAX)
        return error_text(err, errlen, "--load: the file name is longer than %d bytes", LOAD_PATH_MAX - 1);
    struct load_spec *load = &cfg->loads[cfg->load_count++];
    memcpy(load->path, arg, path_len);
    load->path[path_len] = '\0';
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
    case OPT_DISK: return parse_disk(arg, cfg, err, errlen);
    case OPT_GDB: cfg->gdb = arg; return 0;
    case OPT_GDB_WAIT: cfg->gdb_wait = true; return 0;
    case OPT_TRACE: return trace_parse(arg, &cfg->trace, err, errlen);
    case OPT_TRACE_FILE: cfg->trace_file = arg; return 0;
    case OPT_STATS: cfg->stats = true; return 0;
    case OPT_MONITOR: cfg->monitor = arg; return 0;
    case OPT_NET: return parse_net(arg, cfg, err, errlen);
    case OPT_DISPLAY: return parse_display(arg, cfg, err, errlen);
    case OPT_VNC: return parse_vnc(arg, cfg, err, errlen);
    case OPT_VNC_PASSWORD: cfg->vnc_password_file = arg; return 0;
    case OPT_SCREENSHOT:
        cfg->screenshot = arg;
        cfg->display = true;
        return 0;
    }
    return error_text(err, errlen, "internal: unhandled option %d", opt);
}

static void config_defaults(struct slate_config *cfg)
{
    *cfg = (struct slate_config){
        .ram_size = 128ULL << 20,
        .smp = 1,
        .entry = ENTRY_DEFAULT,
        .serial = SERIAL_STDIO,
    };
}

enum options_result options_parse(int argc, char **argv, struct slate_config *cfg, char *err,
                                  size_t errlen)
{
    config_defaults(cfg);
    opterr = 0;
    optind = 0; /* glibc: 0 also resets getopt's internal state, so tests can parse twice */
    int opt;
    while ((opt = getopt_long(argc, argv, ":m:hV", long_options, NULL)) != -1) {
        if (opt == 'h') {
            fputs(options_help, stdout);
            return OPTIONS_EXIT_OK;
        }
        if (opt == 'V') {
            printf("slate %s\n", SLATE_VERSION);
            return OPTIONS_EXIT_OK;
        }
        if (opt == '?' || opt == ':') {
            const char *name = argv[optind - 1];
            error_text(err, errlen, "%s: %s (see slate --help)", name,
                 opt == '?' ? "unknown option" : "missing argument");
            return OPTIONS_ERROR;
        }
        if (parse_one(opt, optarg, cfg, err, errlen))
            return OPTIONS_ERROR;
    }
    if (optind >= argc) {
        error_text(err, errlen, "no kernel given (usage: slate [OPTIONS] KERNEL; see slate --help)");
        return OPTIONS_ERROR;
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
