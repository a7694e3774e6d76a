/* hypercall.S - the hypercall benchmark's guest: 100,000 nop hypercalls through port 0xFFFF, then
 * exit. The result in EAX must come back 0 each time, or the guest exits with 1. */
#include "slate/slate.h"
    .code16
    .globl _start
_start:
    mov $100000, %ecx
    mov $SLATE_HYPERCALL_PORT, %dx
1:  mov $SLATE_HC_NOP, %eax
    out %eax, %dx
    test %eax, %eax
    jnz 2f
    dec %ecx
    jnz 1b
    xor %edi, %edi
    jmp 3f
2:  mov $1, %edi
3:  mov $SLATE_HC_EXIT, %eax
    out %eax, %dx
    mov $0, %al
    out %al, $0xF4
4:  hlt
    jmp 4b
