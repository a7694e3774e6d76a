/* options.h - the command line, parsed into a config with no side effects (unit-tested). */
#ifndef SLATE_OPTIONS_H
#define SLATE_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of the slate process (also in --help and the README). */
#define EXIT_GUEST_MAX 123 /* 0..123: the guest's own exit code                        */
#define EXIT_TIMEOUT 124   /* --timeout expired                                         */
#define EXIT_FAILURE_SLATE 125 /* slate itself failed: usage, bad kernel, no KVM        */
#define EXIT_CRASH 126     /* the guest crashed: triple fault, KVM error, --strict stop */

#define MAX_LOADS 16
#define MAX_APPEND 4095
#define RAM_MIN (1ULL << 20)
#define RAM_MAX (256ULL << 30)
#define SMP_MAX 1024

/* --trace: what is logged (cfg->trace is a mask of these). */
enum trace_kind { TRACE_IO = 1, TRACE_MMIO = 2, TRACE_HYPERCALL = 4, TRACE_IRQ = 8, TRACE_EXC = 16 };
/* --trace exc watches at most this many vectors: one debug register each (exctrace.c). */
#define EXC_WATCHED 4
/* --profile's default rate: a prime, so sampling does not beat with the guest's own timers. */
#define PROFILE_HZ_DEFAULT 997

enum entry_mode { ENTRY_DEFAULT, ENTRY_REAL, ENTRY_PROTECTED, ENTRY_LONG };
/* --boot: how the kernel is started (docs/machine.md, "Coming from QEMU, GRUB or Limine"). */
enum boot_protocol { BOOT_DETECT, BOOT_NATIVE, BOOT_MULTIBOOT2, BOOT_MULTIBOOT, BOOT_LIMINE };
#define LOAD_ADDR_AUTO UINT64_MAX /* --load FILE without @ADDR: slate places it */
enum serial_kind { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

#define LOAD_PATH_MAX 4096

struct load_spec {
    char path[LOAD_PATH_MAX]; /* a copy: argv is left as it was */
    char string[LOAD_PATH_MAX]; /* the module's string for Multiboot and Limine (its command
                                 * line): ,string=S, else the file name as given */
    uint64_t addr;
};

#define MAX_DISKS 8
#define MAX_NICS 4
#define MAX_HOSTFWD 8

enum net_kind { NET_TAP, NET_USER, NET_SOCKET };

struct hostfwd {
    bool udp;
    char host_addr[16]; /* dotted IPv4; default 127.0.0.1 */
    uint16_t host_port, guest_port;
};

struct net_spec {
    enum net_kind kind;
    char name[LOAD_PATH_MAX]; /* TAP interface name, or the socket path */
    uint8_t mac[6];
    bool has_mac;
    struct hostfwd fwd[MAX_HOSTFWD];
    unsigned fwd_count;
    bool host_loopback; /* user: loopback=on lets the guest reach the host's 127.0.0.1 */
    unsigned max_sockets; /* user: sockets=N, the host sockets its flows may hold (0: default) */
};
/* user networking: each guest flow (a TCP connection, a UDP source port, a ping) is a host
 * socket in libslirp; a card holds at most this many (sockets=N), new flows beyond are refused */
#define NET_USER_SOCKETS_DEFAULT 200
#define NET_USER_SOCKETS_MIN 16
#define NET_USER_SOCKETS_MAX 4096

struct disk_spec {
    char path[LOAD_PATH_MAX];
    bool read_only;
    bool cache_none; /* O_DIRECT where the file system allows it */
    bool overlay;    /* ,snapshot: the guest writes to a private copy, dropped at exit */
};

struct slate_config {
    const char *kernel;
    uint64_t ram_size;
    unsigned smp;
    enum entry_mode entry;
    enum boot_protocol boot;
    struct load_spec loads[MAX_LOADS];
    unsigned load_count;
    const char *append;
    enum serial_kind serial;
    const char *serial_path;
    struct disk_spec disks[MAX_DISKS];
    unsigned disk_count;
    struct net_spec nics[MAX_NICS];
    unsigned nic_count;
    double timeout_s; /* 0: none */
    const char *gdb;  /* --gdb address, or NULL */
    const char *monitor; /* --monitor, or NULL */
    bool display;        /* a display, keyboard and pointer (--display, --vnc or --screenshot) */
    bool sdl;            /* --display sdl: a window on this machine's screen */
    char vnc_host[64];   /* "" when VNC is off */
    int vnc_port;
    const char *vnc_password_file;
    char web_host[64];   /* --display web: the page with the screen, "" when off */
    int web_port;
    const char *screenshot; /* PNG written when the guest exits, or on the hypercall */
    const char *dump_dir;   /* --dump-dir: the only directory monitor commands write files in */
    const char *report;     /* --report: a JSON report of how the machine ended */
    bool on_crash_pause;    /* --on-crash pause: keep a crashed machine for gdb and the monitor */
    const char *dump_core;  /* --dump-core: an ELF core file of a machine that crashed */
    char profile_path[LOAD_PATH_MAX]; /* --profile: folded stacks or an SVG ("" without) */
    const char *symbols;    /* --symbols: the ELF with the kernel's symbols (a flat binary has none) */
    unsigned flight_events; /* --flight: the flight recorder's size; 0 turns it off */
    int exit_port;          /* --exit-port: QEMU's isa-debug-exit at this port; -1 without */
    unsigned profile_hz;
    bool profile_paused;
    unsigned trace;   /* TRACE_* mask */
    uint32_t exc_vectors; /* --trace exc: the exceptions watched (bit n: vector n) */
    const char *trace_file;
    bool stats;
    bool gdb_wait;
    bool strict;
    bool check_only; /* --check: validate everything, print what would boot, never run */
    /* Snapshots (snapshot.c). */
    const char *snapshot_path;   /* --snapshot: where SLATE_HC_SNAPSHOT saves the machine */
    char restore_path[LOAD_PATH_MAX]; /* --restore PATH[,lazy]: "" without */
    bool restore_lazy;
    bool each;                   /* --each: CASE... KERNEL, every case from one boot */
    const char *each_dir;        /* --each-dir DIR: its files are cases too */
    char *const *cases;          /* the cases named on the command line */
    unsigned case_count;
    double case_timeout_s;       /* --case-timeout (default EACH_CASE_TIMEOUT) */
    const char *each_out;        /* --each-out DIR: each case's serial output (default slate-each) */
    unsigned jobs;               /* --jobs N: workers running cases side by side (default 1) */
    /* --each-worker K/N (slate's own, for --jobs): this process restored the snapshot and runs
     * the cases whose number n has (n - 1) % N == K; N is 0 in every other process. */
    unsigned worker_index, worker_count;
    const char *record_path;     /* --record: the log of everything the guest got (record.c) */
    const char *replay_path;     /* --replay: the log to run the guest from again */
    /* The command line as given: a snapshot keeps the part that describes the machine. */
    int argc;
    char *const *argv;
};
#define EACH_CASE_TIMEOUT 10.0
#define EACH_JOBS_MAX 64
#define EACH_OUT_DEFAULT "slate-each"
/* --each: slate's exit status when a case did not exit 0 */
#define EXIT_CASES_FAILED 1

enum options_result { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_ERROR };

/* Where reports and the profiler find function names and source lines: --symbols, else the
 * kernel itself. */
static inline const char *config_symbols(const struct slate_config *cfg)
{
    return cfg->symbols ? cfg->symbols : cfg->kernel;
}

/* Parses argv into cfg. OPTIONS_EXIT_OK: --help or --version was printed to stdout.
 * OPTIONS_ERROR: err holds a one-line message (without the "slate: " prefix). */
enum options_result options_parse(int argc, char **argv, struct slate_config *cfg, char *err,
                                  size_t errlen);

/* "128M", "1G", "4096K", "1T", "64" (binary units; MiB when there is no suffix). 0 on success. */
int parse_size(const char *text, uint64_t *out);

/* --restore: the machine cfg describes (parsed from the snapshot's command line) with what the
 * user gave now: back ends (--disk paths, --net, --serial, --vnc, --gdb, --monitor, reports)
 * replace the saved ones; what describes the machine (-m, --smp, devices) may not change. 0, or
 * -1 with err set. */
int options_merge_restore(struct slate_config *machine, const struct slate_config *given, char *err,
                          size_t errlen);

/* Writes the --help text: the core's options, then each device's (device.h). */
void options_help(FILE *out);

#endif
