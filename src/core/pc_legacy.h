/* pc_legacy.h - the two PC outputs every tutorial kernel uses first, for kernels booted through
 * Multiboot, Multiboot2 or Limine (pc_legacy.c): COM1's transmitter at 0x3F8 and, through the
 * display device, the VGA text buffer at 0xB8000. Nothing else of the PC is there. */
#ifndef SLATE_PC_LEGACY_H
#define SLATE_PC_LEGACY_H

#include <pthread.h>
#include <stdint.h>

#define COM1_PORT 0x3F8
#define COM1_PORTS 8

struct vm;

/* A 16550's registers as far as a transmit-only driver sees them. */
struct com1 {
    pthread_mutex_t lock; /* vCPUs may write at once: one byte at a time reaches the console */
    uint8_t ier, lcr, mcr, scratch, dll, dlm;
    uint8_t loopback; /* the byte sent in loopback mode (MCR bit 4), read back from RBR */
    uint8_t loopback_full;
};

/* Claims COM1's ports for vm (after the devices, which never use them). 0, or -1 logged. */
int com1_register(struct vm *vm);

#endif
