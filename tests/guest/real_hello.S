/* Real mode, flat image at 0: checks CS:IP = 0:0 and EBX, prints through port 0xE9 and exits
 * with code 7 through the hypercall port. */
#include "slate/slate.h"
    .code16
    .globl _start
_start:
    mov %cs, %ax
    test %ax, %ax
    jnz fail
    call 1f                      /* pushes IP of 1: equals its offset only if loaded at 0 */
1:  pop %ax
    cmp $(1b - _start), %ax
    jne fail
    cmp $SLATE_INFO_ADDR, %ebx
    jne fail
    mov $SLATE_CPU_INDEX_PORT, %dx
    in %dx, %eax
    test %eax, %eax
    jnz fail
    mov $msg, %si
    mov $SLATE_DEBUGCON_PORT, %dx
print:
    lodsb
    test %al, %al
    jz done
    out %al, %dx
    jmp print
done:
    mov $SLATE_HC_EXIT, %eax
    mov $7, %edi
    mov $SLATE_HYPERCALL_PORT, %dx
    out %eax, %dx
fail:
    mov $SLATE_HC_EXIT, %eax
    mov $99, %edi
    mov $SLATE_HYPERCALL_PORT, %dx
    out %eax, %dx
    hlt
msg: .asciz "real mode: hello from 0000:0000\n"
