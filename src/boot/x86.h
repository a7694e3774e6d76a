/* x86.h - the architectural start state for each entry mode: boot GDT, identity page tables,
 * segment and control registers. No KVM ioctls here: pure functions over KVM's structs. */
#ifndef SLATE_X86_H
#define SLATE_X86_H

#include "options.h"

#include <linux/kvm.h>
#include <stdint.h>

#define X86_CR0_PE (1ULL << 0)
#define X86_CR0_MP (1ULL << 1)
#define X86_CR0_ET (1ULL << 4)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_WP (1ULL << 16)
#define X86_CR0_AM (1ULL << 18)
#define X86_CR0_PG (1ULL << 31)
#define X86_CR4_PAE (1ULL << 5)
#define X86_CR4_OSFXSR (1ULL << 9)
#define X86_CR4_OSXMMEXCPT (1ULL << 10)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)
#define X86_EFER_NXE (1ULL << 11)
#define X86_RFLAGS_IF (1ULL << 9)

/* Where things sit inside the boot-tables area (SLATE_BOOT_TABLES). */
#define BOOT_GDT_OFFSET 0x0000
#define BOOT_PML4_OFFSET 0x1000
#define BOOT_PDPT_OFFSET 0x2000
#define BOOT_PD_OFFSET 0x3000
#define BOOT_EXIT_STUB_OFFSET 0x0800 /* where a returning kmain lands: exit hypercall with 0 */
#define BOOT_PARK_STUB_OFFSET 0x0810 /* where a returning AP entry lands: cli; hlt forever     */

/* Bytes of the boot-tables area needed to identity-map [0, map_top) with 2 MiB pages. */
uint64_t x86_boot_tables_size(uint64_t map_top);

/* Writes the GDT and the page tables identity-mapping [0, map_top) into `area`, which the guest
 * sees at `area_gpa`. Returns the CR3 value, or 0 if map_top needs more than area_size. */
uint64_t x86_write_boot_tables(void *area, uint64_t area_size, uint64_t area_gpa, uint64_t map_top);

/* Fills sregs for the entry mode, starting from KVM's reset state in *sregs. */
void x86_entry_sregs(struct kvm_sregs *sregs, enum entry_mode mode, uint64_t gdt_gpa, uint64_t cr3);

/* Fills sregs for a Limine kernel's entry (every CPU): 64-bit mode on the given page tables and
 * GDT, with only the CR0/CR4/EFER bits the protocol names (so no SSE: the protocol's ABI has
 * none), and no IDT, LDT or task state. */
void x86_limine_sregs(struct kvm_sregs *sregs, uint64_t cr3, uint64_t gdt_base, uint16_t gdt_limit,
                      uint16_t code_sel, uint16_t data_sel);

/* Fills regs: RIP, RFLAGS, RSP and the info-block pointer (EBX, and RDI in long mode). */
void x86_entry_regs(struct kvm_regs *regs, enum entry_mode mode, uint64_t entry, uint64_t rsp,
                    uint64_t info_gpa);

/* Prepares the boot stack as if the entry point had been called as `kmain(info)`: a return
 * address (the exit stub) and, in 32-bit mode, the argument, aligned as the SysV ABIs expect at
 * function entry. `stack_top` is the host address of the byte at the guest's top_gpa; at least
 * 32 bytes below it must be writable. Returns the initial RSP/ESP (0 for real mode). */
uint64_t x86_entry_stack(uint8_t *stack_top, enum entry_mode mode, uint64_t top_gpa,
                         uint64_t return_gpa, uint64_t info_gpa);

#endif
