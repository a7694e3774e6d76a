/* main.c - slate's entry: parse options, open the console, build and run the machine (again after
 * each guest reset), and turn the outcome into the documented exit status. */
#include "console.h"
#include "gdb.h"
#include "monitor.h"
#include "log.h"
#include "options.h"
#include "preflight.h"
#include "vm.h"

#include <signal.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
{
    struct slate_config cfg;
    char err[512];
    switch (options_parse(argc, argv, &cfg, err, sizeof(err))) {
    case OPTIONS_EXIT_OK: return 0;
    case OPTIONS_ERROR: log_error("%s", err); return EXIT_FAILURE_SLATE;
    case OPTIONS_RUN: break;
    }
    /* Everything that can be wrong with the user's files and options is found before KVM. */
    struct preflight pf;
    if (preflight_check(&cfg, &pf))
        return EXIT_FAILURE_SLATE;
    if (cfg.check_only) {
        preflight_report(stdout, &cfg, &pf);
        return 0;
    }
    block_stop_signals();
    int64_t deadline = cfg.timeout_s > 0 ? clock_now_ns() + (int64_t)(cfg.timeout_s * 1e9) : 0;
    struct console console;
    if (console_open(&console, &cfg))
        return EXIT_FAILURE_SLATE;
    FILE *trace_out = NULL;
    struct outfile trace_file;
    int trace_fd = cfg.trace_file ? outfile_create(&trace_file, cfg.trace_file) : -1, trace_rc = trace_fd;
    if (trace_fd >= 0) { /* in place at once: the trace can be followed as it is written */
        trace_rc = outfile_place(&trace_file, true);
        outfile_finish(&trace_file);
    }
    if (cfg.trace_file && (trace_rc < 0 || !(trace_out = fdopen(trace_fd, "w")))) {
        if (trace_fd >= 0)
            close(trace_fd);
        log_error("--trace-file %s: %s", cfg.trace_file, strerror(trace_rc < 0 ? -trace_rc : errno));
        console_abandon(&console);
        console_close(&console);
        return EXIT_FAILURE_SLATE;
    }
    if (trace_out)
        setvbuf(trace_out, NULL, _IOLBF, 0);
    struct gdb_server *gdb = NULL; /* both outlive resets: their clients stay attached */
    struct monitor *monitor = NULL;
    if ((cfg.gdb && !(gdb = gdb_server_open(cfg.gdb, cfg.gdb_wait))) ||
        (cfg.monitor && !(monitor = monitor_open(cfg.monitor, cfg.serial == SERIAL_STDIO, cfg.dump_dir)))) {
        gdb_server_close(gdb);
        console_abandon(&console);
        console_close(&console);
        return EXIT_FAILURE_SLATE;
    }
    int status;
    bool started = false;
    do {
        struct vm *vm;
        if (vm_create(&cfg, &console, &vm)) {
            status = EXIT_FAILURE_SLATE;
            break;
        }
        if (!started)
            console_begin(&console);
        started = true;
        vm->trace_out = trace_out;
        if ((gdb && gdb_attach(gdb, vm)) || (monitor && monitor_attach(monitor, vm))) {
            vm_destroy(vm);
            status = EXIT_FAILURE_SLATE;
            break;
        }
        status = vm_run(vm, deadline);
        vm_destroy(vm);
    } while (status == VM_STATUS_RESET);
    if (!started)
        console_abandon(&console);
    console_close(&console);
    gdb_server_close(gdb);
    monitor_close(monitor);
    if (trace_out)
        fclose(trace_out);
    return status;
}
