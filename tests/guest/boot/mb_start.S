/* The Multiboot header and entry of the Multiboot test kernels, as the specifications' own
 * examples write them. MB2 selects Multiboot2; WANT_FB asks for a 640x480 linear framebuffer. */
    .section .multiboot, "a"
#ifdef MB2
    .balign 8
mb2_header:
    .long 0xE85250D6                /* magic */
    .long 0                         /* architecture: i386 protected mode */
    .long mb2_end - mb2_header      /* header_length */
    .long 0x100000000 - (0xE85250D6 + 0 + (mb2_end - mb2_header))
#ifdef WANT_FB
    .balign 8
    .short 5, 0                     /* framebuffer tag (required) */
    .long 20, 640, 480, 32
#endif
    .balign 8
    .short 1, 0                     /* information request (required): cmdline, mmap */
    .long 16, 1, 6
    .balign 8
    .short 0, 0                     /* end tag */
    .long 8
mb2_end:
#else
    .balign 4
    .long 0x1BADB002                /* magic */
    .long 0x00000003                /* flags: page-align modules, memory information */
    .long -(0x1BADB002 + 0x00000003)
#endif

    .text
    .code32
    .globl _start
_start:
    mov $stack_top, %esp
    push %ebx                       /* the boot information */
    push %eax                       /* the magic */
    call kmain
1:  cli
    hlt
    jmp 1b

    .bss
    .balign 16
    .skip 16384
stack_top:
