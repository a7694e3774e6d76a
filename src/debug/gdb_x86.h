/* gdb_x86.h - the x86 and KVM side of the gdb stub (gdb_x86.c). */
#ifndef SLATE_GDB_X86_H
#define SLATE_GDB_X86_H

#include "vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The target description gdb asks for (qXfer:features:read:target.xml). */
extern const char gdb_target_xml[];

/* Register numbers, in the order of the description above. */
enum {
    REG_RAX, REG_R15 = 15, REG_RIP, REG_EFLAGS, REG_CS, REG_GS = 23, REG_ST0, REG_ST7 = 31,
    REG_FCTRL, REG_FOP = 39, REG_XMM0, REG_XMM15 = 55, REG_MXCSR, REG_FS_BASE, REG_GS_BASE,
    REG_CR0, REG_EFER = 64, REG_COUNT
};

/* A vCPU's registers as gdb sees them, read together (the machine is held). */
struct gdb_regs {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
};
bool gdb_load_state(struct vcpu *cpu, struct gdb_regs *st);
/* The bytes of register n (little-endian); returns its size, 0 if there is no such register. */
size_t gdb_reg_bytes(struct gdb_regs *st, int n, uint8_t *out);
/* Writes a general register, RIP or EFLAGS (n up to REG_EFLAGS); false for others or when KVM
 * refused. */
bool gdb_set_register(struct vcpu *cpu, int n, uint64_t value);

/* Hardware breakpoints and watchpoints: one per debug register. */
#define HW_SLOTS 4
enum hw_kind { HW_EXEC = 0, HW_WRITE = 1, HW_ACCESS = 3 };

struct hw_bp {
    bool used;
    uint64_t addr;
    unsigned len;
    enum hw_kind kind;
};

/* DR7 enabling the used slots. */
uint64_t gdb_dr7(const struct hw_bp hw[HW_SLOTS]);

/* Asks a throwaway VM what this KVM does: whether it reports int3 (nested KVM such as PVM may
 * deliver it to the guest) and honours data breakpoints. Warns about what it lacks. */
void gdb_probe_kvm(bool *int3_intercepted, bool *data_breakpoints);

#endif
