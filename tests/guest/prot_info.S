/* Protected mode ELF32: finds the serial and power devices through the info block in EBX,
 * prints through the serial device and exits with code 3 through the power device. */
#include "slate/slate.h"
    .code32
    .globl _start
_start:
    cmp 4(%esp), %ebx               /* called as kmain(info): the argument equals EBX */
    jne fail
    mov %esp, %eax                  /* ESP+4 is 16-byte aligned, as at a cdecl function entry */
    add $4, %eax
    test $15, %eax
    jnz fail
    cmpl $0x54414c53, (%ebx)        /* "SLAT" */
    jne fail
    cmpl $0x48434d45, 4(%ebx)       /* "EMCH" */
    jne fail
    mov $SLATE_DEV_SERIAL, %eax
    call find_device
    movzwl 4(%esi), %edx            /* port_base */
    mov $msg, %esi
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx                    /* SLATE_SERIAL_DATA is offset 0 */
    jmp 1b
2:  mov $SLATE_DEV_POWER, %eax
    call find_device
    movzwl 4(%esi), %edx
    add $SLATE_POWER_EXIT, %edx
    mov $3, %eax
    out %eax, %dx
fail:
    mov $SLATE_HC_EXIT, %eax
    mov $99, %edi
    mov $SLATE_HYPERCALL_PORT, %edx
    out %eax, %dx
    hlt

/* In: EAX = type, EBX = info. Out: ESI = the device entry. Fails the test when absent. */
find_device:
    mov 88(%ebx), %esi              /* device_offset */
    add %ebx, %esi
    mov 92(%ebx), %ecx              /* device_count */
3:  test %ecx, %ecx
    jz fail
    cmp (%esi), %ax
    je 4f
    add 96(%ebx), %esi              /* device_entry_size */
    dec %ecx
    jmp 3b
4:  ret

msg: .asciz "protected mode: hello through serial0\n"
