/* boot.S - from the first instruction to C.
 *
 * slate loads this flat image at physical address 0 and starts CPU 0 here in 16-bit real mode,
 * CS:IP = 0000:0000, with EBX holding the address of the info block. There is no BIOS and no
 * bootloader: the kernel climbs to 64-bit long mode itself, in three steps:
 *
 *   1. real mode -> 32-bit protected mode: load a GDT, set CR0.PE, far-jump into a 32-bit segment;
 *   2. build 4-level page tables that identity-map the first 4 GiB with 2 MiB pages (RAM, and the
 *      hole at 3 GiB that holds the info block, the device windows and the local APIC);
 *   3. turn on PAE, EFER.LME and paging, then far-jump into the 64-bit code segment.
 */
#include "slate/slate.h"

#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define PAGE_PRESENT_WRITABLE 0x3
#define PAGE_HUGE 0x80 /* in a page directory entry: a 2 MiB page */

#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

    .section .text.boot, "ax"
    .code16
    .globl _start
_start:
    cli                             /* no IDT yet: nothing may interrupt us */
    xor %ax, %ax
    mov %ax, %ds                    /* the GDT pointer below is addressed through DS */
    lgdtl gdt_pointer               /* 'l': load the full 32-bit base */
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $SEL_CODE32, $protected_mode /* reloads CS: now in a 32-bit segment */

    .code32
protected_mode:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov %ebx, %ebp                  /* keep the info block's address for kmain */

    /* A flat image carries no .bss: clear it (the page tables and stacks live there). */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl

    /* PML4[0] -> PDPT; PDPT[0..3] -> four page directories; each of their 2048 entries maps
     * 2 MiB, physical = virtual. */
    movl $(pdpt + PAGE_PRESENT_WRITABLE), pml4
    mov $0, %ecx
1:  mov %ecx, %eax
    shl $12, %eax                   /* directory ecx is at page_directories + ecx * 4096 */
    add $page_directories, %eax
    or $PAGE_PRESENT_WRITABLE, %eax
    mov %eax, pdpt(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jne 1b
    mov $0, %ecx                    /* ecx = 2 MiB page number, 0..2047 */
2:  mov %ecx, %eax
    shl $21, %eax
    or $(PAGE_PRESENT_WRITABLE | PAGE_HUGE), %eax
    mov %eax, page_directories(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jne 2b

    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax                /* paging on with EFER.LME set: long mode is active */
    mov %eax, %cr0
    ljmp $SEL_CODE64, $long_mode    /* ... and a 64-bit CS makes it 64-bit mode */

    .code64
long_mode:
    lea boot_stack_top(%rip), %rsp
    mov %ebp, %edi                  /* kmain(info) */
    call kmain
3:  cli
    hlt
    jmp 3b

    .section .rodata
    .balign 8
gdt:
    .quad 0                         /* the null descriptor */
    .quad 0x00CF9A000000FFFF        /* 0x08: 32-bit code, base 0, limit 4 GiB */
    .quad 0x00CF92000000FFFF        /* 0x10: data, base 0, limit 4 GiB */
    .quad 0x00AF9A000000FFFF        /* 0x18: 64-bit code (L bit set) */
gdt_end:
gdt_pointer:
    .word gdt_end - gdt - 1
    .long gdt

    .section .bss
    .balign 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
page_directories:
    .skip 4 * 4096
    .balign 16
    .skip 16384
boot_stack_top:
