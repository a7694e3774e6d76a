/* main.c - slate's entry: parse options, open the console, build and run the machine (again after
 * each guest reset), and turn the outcome into the documented exit status. */
#include "console.h"
#include "debug.h"
#include "gdb.h"
#include "monitor.h"
#include "log.h"
#include "options.h"
#include "preflight.h"
#include "record.h"
#include "snapshot.h"
#include "vm.h"

#include <signal.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Stop signals (and SIGQUIT) are blocked on every thread and read from a signalfd by the event
 * loop. */
static void block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT); /* a hang report (vm.c) */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout becomes EPIPE, handled by the console */
    signal(SIGXFSZ, SIG_IGN); /* a write past ulimit -f is EFBIG: an I/O error for the guest */
}

/* What outlives a guest reset: the console, the trace file, gdb's and the monitor's servers
 * (their clients stay attached). */
struct session {
    struct console console;
    FILE *trace_out;
    struct gdb_server *gdb;
    struct monitor *monitor;
    bool started; /* a machine was built: the --serial file is in place */
};

/* --trace-file, in place at once: the trace can be followed as it is written. NULL (logged). */
static FILE *open_trace(const char *path)
{
    struct outfile file;
    int fd = outfile_create(&file, path), rc = fd;
    if (fd >= 0) {
        rc = outfile_place(&file, true);
        outfile_finish(&file);
    }
    FILE *out = rc < 0 ? NULL : fdopen(fd, "w");
    if (!out) {
        log_error("--trace-file %s: %s", path, strerror(rc < 0 ? -rc : errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    setvbuf(out, NULL, _IOLBF, 0);
    return out;
}

static void session_close(struct session *s)
{
    if (!s->started)
        console_abandon(&s->console);
    console_close(&s->console);
    gdb_server_close(s->gdb);
    monitor_close(s->monitor);
    if (s->trace_out)
        fclose(s->trace_out);
}

static int session_open(struct session *s, const struct slate_config *cfg)
{
    *s = (struct session){0};
    if (console_open(&s->console, cfg))
        return -1;
    if ((cfg->trace_file && !(s->trace_out = open_trace(cfg->trace_file))) ||
        (cfg->gdb && !(s->gdb = gdb_server_open(cfg->gdb, cfg->gdb_wait))) ||
        (cfg->monitor && !(s->monitor = monitor_open(cfg->monitor, cfg->serial == SERIAL_STDIO, cfg->dump_dir)))) {
        session_close(s);
        return -1;
    }
    return 0;
}

/* One machine, from building it to taking it apart: its exit status, or VM_STATUS_RESET. The
 * debugging room, gdb and the monitor attach to it; main names nothing else. */
static int run_machine(struct session *s, const struct slate_config *cfg, int64_t deadline,
                       const struct snapshot *from)
{
    struct vm *vm;
    if (vm_create_restored(cfg, &s->console, from, &vm))
        return EXIT_FAILURE_SLATE;
    if (debug_attach(vm)) { /* the crash and hang reports, --trace exc, --profile, ... */
        vm_destroy(vm);
        return EXIT_FAILURE_SLATE;
    }
    if (!s->started)
        console_begin(&s->console);
    s->started = true;
    vm->trace_out = s->trace_out;
    int status = EXIT_FAILURE_SLATE;
    if (!(s->gdb && gdb_attach(s->gdb, vm)) && !(s->monitor && monitor_attach(s->monitor, vm)))
        status = vm_run(vm, deadline);
    vm_destroy(vm);
    return status;
}

int main(int argc, char **argv)
{
    struct slate_config cfg;
    char err[512];
    switch (options_parse(argc, argv, &cfg, err, sizeof(err))) {
    case OPTIONS_EXIT_OK: return 0;
    case OPTIONS_ERROR: log_error("%s", err); return EXIT_FAILURE_SLATE;
    case OPTIONS_RUN: break;
    }
    /* --restore: the machine is the file's, the back ends may be the user's. */
    struct snapshot *snap = NULL;
    struct slate_config given = cfg;
    if (given.restore_path[0] &&
        (snapshot_open(given.restore_path, given.restore_lazy, &snap) || snapshot_config(snap, &given, &cfg))) {
        snapshot_close(snap);
        return EXIT_FAILURE_SLATE;
    }
    if (given.replay_path && record_replay_config(given.replay_path, &given, &cfg))
        return EXIT_FAILURE_SLATE;
    /* Everything that can be wrong with the user's files and options is found before KVM. */
    struct preflight pf;
    if (preflight_check(&cfg, &pf)) {
        snapshot_close(snap);
        return EXIT_FAILURE_SLATE;
    }
    if (cfg.check_only) {
        preflight_report(stdout, &cfg, &pf);
        snapshot_close(snap);
        return 0;
    }
    block_stop_signals();
    int64_t deadline = cfg.timeout_s > 0 ? clock_now_ns() + (int64_t)(cfg.timeout_s * 1e9) : 0;
    struct session session;
    if (session_open(&session, &cfg)) {
        snapshot_close(snap);
        return EXIT_FAILURE_SLATE;
    }
    int status = run_machine(&session, &cfg, deadline, snap);
    while (status == VM_STATUS_RESET) /* a reset boots the kernel afresh, restored or not */
        status = run_machine(&session, &cfg, deadline, NULL);
    session_close(&session);
    snapshot_close(snap);
    return status;
}
