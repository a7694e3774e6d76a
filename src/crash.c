/* crash.c - what slate prints when the guest cannot go on: exit reason, registers, control state
 * and the bytes at RIP, so the author sees where it died without a debugger. */
#include "vm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

static void print_segment(const char *name, const struct kvm_segment *s)
{
    fprintf(stderr, "  %-3s sel=%04x base=%016llx limit=%08x type=%x%s%s%s%s dpl=%u\n", name,
            s->selector, (unsigned long long)s->base, s->limit, s->type, s->present ? " P" : "",
            s->l ? " L" : "", s->db ? " DB" : "", s->g ? " G" : "", s->dpl);
}

static void print_regs(const struct kvm_regs *r)
{
    fprintf(stderr,
            "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
            "  rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n"
            "  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
            "  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
            "  rip=%016llx rflags=%08llx\n",
            r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->rsp, r->r8, r->r9, r->r10,
            r->r11, r->r12, r->r13, r->r14, r->r15, r->rip, r->rflags);
}

static void print_sregs(const struct kvm_sregs *s)
{
    print_segment("cs", &s->cs);
    print_segment("ds", &s->ds);
    print_segment("es", &s->es);
    print_segment("ss", &s->ss);
    print_segment("fs", &s->fs);
    print_segment("gs", &s->gs);
    print_segment("tr", &s->tr);
    fprintf(stderr, "  gdt base=%016llx limit=%04x   idt base=%016llx limit=%04x\n",
            s->gdt.base, s->gdt.limit, s->idt.base, s->idt.limit);
    fprintf(stderr, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx\n"
                    "  cr8=%016llx efer=%016llx apic_base=%016llx\n",
            s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer, s->apic_base);
}

static void print_code(struct vcpu *cpu, const struct kvm_regs *r, const struct kvm_sregs *s)
{
    bool long_mode = (s->efer & (1ULL << 10)) && s->cs.l;
    uint64_t linear = long_mode ? r->rip : (s->cs.base + r->rip) & 0xFFFFFFFFULL;
    fprintf(stderr, "  code at %#" PRIx64 ":", (uint64_t)linear);
    for (unsigned i = 0; i < 16; i++) {
        const uint8_t *byte = vcpu_gva_to_host(cpu, linear + i, 1);
        if (!byte) {
            fprintf(stderr, " (not mapped to RAM)");
            break;
        }
        fprintf(stderr, " %02x", *byte);
    }
    fputc('\n', stderr);
}

static void print_exit_details(const struct kvm_run *run)
{
    if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
        fprintf(stderr, "  internal error suberror %u", run->internal.suberror);
        for (unsigned i = 0; i < run->internal.ndata && i < 16; i++)
            fprintf(stderr, " %llx", (unsigned long long)run->internal.data[i]);
        fputc('\n', stderr);
    } else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
        fprintf(stderr, "  hardware entry failure reason %#llx\n",
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
    } else if (run->exit_reason == KVM_EXIT_UNKNOWN) {
        fprintf(stderr, "  hardware exit reason %#llx\n",
                (unsigned long long)run->hw.hardware_exit_reason);
    }
}

void crash_report(struct vcpu *cpu, const char *reason)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    fprintf(stderr, "slate: guest crashed on cpu %u: %s (KVM exit reason %u)\n", cpu->index,
            reason, cpu->run->exit_reason);
    print_exit_details(cpu->run);
    if (ioctl(cpu->fd, KVM_GET_REGS, &regs) < 0 || ioctl(cpu->fd, KVM_GET_SREGS, &sregs) < 0) {
        fprintf(stderr, "  (registers unavailable: %s)\n", strerror(errno));
        return;
    }
    print_regs(&regs);
    print_sregs(&sregs);
    print_code(cpu, &regs, &sregs);
}
