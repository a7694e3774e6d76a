/* report.c - see report.h. A small JSON writer: strings escaped, numbers as numbers, addresses
 * as "0x..." strings (JSON numbers lose 64-bit precision in most parsers). */
#include "report.h"

#include "backtrace.h"
#include "cpu_state.h"
#include "debug_room.h"
#include "inspect.h"
#include "outfile.h"
#include "replay.h"
#include "symbols.h"
#include "vm.h"
#include "x86.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void json_hex(FILE *f, uint64_t v) { fprintf(f, "\"0x%" PRIx64 "\"", v); }

static void write_backtrace(FILE *f, struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s,
                            struct symbols *syms)
{
    fputs(", \"backtrace\": [", f);
    struct bt_frame frames[13];
    unsigned n = backtrace_of(cpu, r, s, syms, frames, 13);
    for (unsigned i = 1; i < n; i++) { /* the callers; RIP is the CPU's own "where" */
        char where[256];
        fprintf(f, "%s{\"address\": ", i > 1 ? ", " : "");
        json_hex(f, frames[i].pc);
        fputs(", \"where\": ", f);
        json_string(f, backtrace_describe(syms, &frames[i], where, sizeof(where)));
        if (frames[i].activation)
            fputs(", \"interrupted\": true", f);
        fputc('}', f);
    }
    fputc(']', f);
}

static void write_cpu(FILE *f, struct vcpu *cpu, struct symbols *syms)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    fprintf(f, "    {\"index\": %u", cpu->index);
    if (cpu_state_regs(cpu, &r, &s) < 0) {
        fputs(", \"error\": ", f);
        json_string(f, strerror(errno));
        fputc('}', f);
        return;
    }
    bool lm = (s.efer & X86_EFER_LMA) && s.cs.l;
    uint64_t rip = lm ? r.rip : (s.cs.base + r.rip) & 0xFFFFFFFF;
    char where[256];
    fputs(", \"state\": ", f);
    char state[128];
    json_string(f, vcpu_run_state(cpu, state, sizeof(state)));
    enum crash_state crash = replay_crash_of(cpu).state;
    if (crash != CRASH_STATE_KVM) { /* KVM on AMD reset it at the triple fault */
        fputs(", \"recovered\": ", f);
        json_string(f, crash == CRASH_STATE_REPLAYED ? "replayed" : "last exit");
    }
    fputs(", \"mode\": ", f);
    json_string(f, !(s.cr0 & X86_CR0_PE) ? "real" : lm ? "long" : "protected");
    fprintf(f, ", \"interrupts\": %s, \"rip\": ", r.rflags & (1u << 9) ? "true" : "false");
    json_hex(f, rip);
    fputs(", \"where\": ", f);
    json_string(f, symbols_describe(syms, rip, where, sizeof(where)));
    const struct { const char *name; uint64_t v; } regs[] = {
        {"rsp", r.rsp}, {"rbp", r.rbp}, {"rflags", r.rflags}, {"cr0", s.cr0}, {"cr2", s.cr2},
        {"cr3", s.cr3}, {"cr4", s.cr4}, {"efer", s.efer}};
    for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
        fprintf(f, ", \"%s\": ", regs[i].name);
        json_hex(f, regs[i].v);
    }
    write_backtrace(f, cpu, &r, &s, syms);
    fputc('}', f);
}

struct event_writer {
    FILE *f;
    struct vm *vm;
    int64_t end;
    unsigned n;
};

static void write_event(void *ctx, const struct flight_event *e)
{
    struct event_writer *w = ctx;
    FILE *f = w->f;
    fprintf(f, "%s    {\"ago_ns\": %" PRId64 ", \"cpu\": %u, \"kind\": ", w->n++ ? ",\n" : "", w->end - e->ns, e->cpu);
    json_string(f, flight_kind_name((enum flight_kind)e->kind));
    const struct bus_range *r = e->kind == FLIGHT_IN || e->kind == FLIGHT_OUT ? bus_find(&w->vm->pio, e->addr)
                                : e->kind == FLIGHT_MMIO_READ || e->kind == FLIGHT_MMIO_WRITE ? bus_find(&w->vm->mmio, e->addr)
                                                                                                : NULL;
    fputs(e->kind == FLIGHT_HYPERCALL ? ", \"function\": "
          : e->kind == FLIGHT_IRQ || e->kind == FLIGHT_EXCEPTION ? ", \"vector\": " : ", \"address\": ", f);
    json_hex(f, e->addr);
    if (r) {
        char where[64];
        snprintf(where, sizeof(where), "%s+%#" PRIx64, r->name, e->addr - r->base);
        fputs(", \"where\": ", f);
        json_string(f, where);
    }
    fputs(e->kind == FLIGHT_HYPERCALL ? ", \"result\": " : e->kind == FLIGHT_EXCEPTION ? ", \"rip\": " : ", \"value\": ", f);
    if (e->kind == FLIGHT_HYPERCALL)
        fprintf(f, "%" PRId64, (int64_t)e->value);
    else
        json_hex(f, e->value);
    if (e->text_len > 1) { /* a run of console bytes: the text, as JSON escapes it */
        fputs(", \"text\": \"", f);
        for (unsigned i = 0; i < e->text_len; i++) { /* the guest's bytes: any of the 256 */
            unsigned char c = (unsigned char)e->text[i];
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20 || c >= 0x7F)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        fputc('"', f);
        fprintf(f, ", \"bytes\": %u", e->text_len);
    }
    if (e->width)
        fprintf(f, ", \"width\": %u", e->width);
    fputc('}', f);
}

static void write_report(FILE *f, struct vm *vm, int status)
{
    struct symbols *syms = symbols_open(config_symbols(vm->cfg));
    fputs("{\n  \"slate_report\": 1,\n  \"kernel\": ", f);
    json_string(f, vm->cfg->kernel);
    fprintf(f, ",\n  \"status\": %d,\n  \"reason\": ", status);
    json_string(f, vm->end_reason[0] ? vm->end_reason : status <= EXIT_GUEST_MAX ? "the guest exited" : "stopped");
    if (vm->crash_cpu >= 0)
        fprintf(f, ",\n  \"crash_cpu\": %d", vm->crash_cpu);
    if (debug_room(vm)->crash_why[0]) {
        fputs(",\n  \"why\": ", f);
        json_string(f, debug_room(vm)->crash_why);
    }
    fputs(",\n  \"cpus\": [\n", f);
    for (unsigned i = 0; i < vm->vcpu_count; i++) {
        write_cpu(f, &vm->vcpus[i], syms);
        fputs(i + 1 < vm->vcpu_count ? ",\n" : "\n", f);
    }
    fputs("  ],\n  \"events\": [\n", f);
    struct event_writer w = {f, vm, clock_now_ns(), 0};
    flight_each(&vm->flight, write_event, &w);
    fputs(w.n ? "\n  ]\n}\n" : "  ]\n}\n", f);
    symbols_close(syms);
}

int report_write(struct vm *vm, const char *path, int status)
{
    struct outfile o;
    int fd = outfile_create(&o, path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = fd < 0 ? fd : !f ? -errno : 0;
    if (fd >= 0 && !f)
        close(fd);
    if (f) {
        write_report(f, vm, status);
        rc = fclose(f) != 0 ? -errno : outfile_place(&o, true);
    }
    if (fd >= 0)
        outfile_finish(&o);
    if (rc)
        log_error("--report %s: %s", path, strerror(-rc));
    return rc ? -1 : 0;
}
