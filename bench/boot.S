/* boot.S - the boot benchmark's guest: print one byte and exit. Real mode at 0:0, position
 * independent (QEMU runs it as a BIOS at F000:0000). After the exit hypercall it writes to
 * isa-debug-exit (0xF4), which only QEMU has. */
#include "slate/slate.h"
    .code16
    .globl _start
_start:
    mov $'x', %al
    out %al, $SLATE_DEBUGCON_PORT
    mov $SLATE_HC_EXIT, %eax
    xor %edi, %edi
    mov $SLATE_HYPERCALL_PORT, %dx
    out %eax, %dx
    mov $0, %al
    out %al, $0xF4
1:  hlt
    jmp 1b
