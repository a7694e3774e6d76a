/* pc_legacy.h - the PC devices every tutorial kernel uses first, for kernels booted through
 * Multiboot, Multiboot2 or Limine (pc_legacy.c): COM1's transmitter at 0x3F8, the CMOS clock's
 * time registers (read-only) at 0x70/0x71 and, through the display device, the VGA text buffer
 * at 0xB8000. Nothing else of the PC is there: legacy_port_hint names what a kernel looked for. */
#ifndef SLATE_PC_LEGACY_H
#define SLATE_PC_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
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

#define CMOS_PORT 0x70
#define CMOS_PORTS 2

/* The CMOS real-time clock as a reader sees it: the index register, and the time. */
struct cmos {
    pthread_mutex_t lock;
    uint8_t index;
    bool warned_write; /* a write to a CMOS register was reported */
};

/* Claims the CMOS clock's ports for vm. 0, or -1 logged. */
int cmos_register(struct vm *vm);

/* For a port nothing claims: the legacy PC device a kernel looking there expects and what slate
 * offers instead ("the 8259 PIC: ..."), with `bit` set to that device's bit (to say it once);
 * NULL for a port that is no known PC device's. */
const char *legacy_port_hint(uint16_t port, unsigned *bit);

/* Claims COM1's ports for vm (after the devices, which never use them). 0, or -1 logged. */
int com1_register(struct vm *vm);

#endif
