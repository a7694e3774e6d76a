/* pc_legacy.c - COM1 for kernels booted through a PC boot protocol. A 16550 as a polling driver
 * sees it: bytes written to the transmit register go to the serial console at once, so the line
 * status always says "transmitter empty"; the divisor latch, scratch and control registers keep
 * what is written; loopback mode (the self-test tutorials run: MCR bit 4) echoes the byte back
 * instead of sending it. There is no receiver and no interrupt: the kernel's input is slate's
 * serial device (docs/machine.md). */
#include "pc_legacy.h"

#include "vm.h"

#define REG_DATA 0   /* THR/RBR, or DLL with DLAB */
#define REG_IER 1    /* or DLM with DLAB */
#define REG_IIR 2    /* read: interrupt identification; write: FIFO control */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCRATCH 7
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20
#define LSR_TX_EMPTY 0x40
#define IIR_NONE 0x01

static void com1_write(struct vm *vm, struct com1 *u, unsigned reg, uint8_t v)
{
    bool dlab = u->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        if (dlab)
            u->dll = v;
        else if (u->mcr & MCR_LOOP)
            u->loopback = v, u->loopback_full = 1;
        else if (vm->console)
            console_write(vm->console, &v, 1);
        break;
    case REG_IER:
        if (dlab)
            u->dlm = v;
        else
            u->ier = v & 0x0F;
        break;
    case REG_LCR: u->lcr = v; break;
    case REG_MCR: u->mcr = v & 0x1F; break;
    case REG_SCRATCH: u->scratch = v; break;
    default: break; /* FIFO control, LSR, MSR: nothing to keep */
    }
}

static uint8_t com1_read(struct com1 *u, unsigned reg)
{
    bool dlab = u->lcr & LCR_DLAB;
    switch (reg) {
    case REG_DATA:
        if (dlab)
            return u->dll;
        u->loopback_full = 0;
        return u->loopback;
    case REG_IER: return dlab ? u->dlm : u->ier;
    case REG_IIR: return IIR_NONE;
    case REG_LCR: return u->lcr;
    case REG_MCR: return u->mcr;
    case REG_LSR: return LSR_THR_EMPTY | LSR_TX_EMPTY | (u->loopback_full ? LSR_DATA_READY : 0);
    case REG_MSR:
        /* In loopback the modem inputs follow the outputs (RTS->CTS, DTR->DSR, OUT1->RI,
         * OUT2->DCD); otherwise a cable is plugged in: CTS, DSR and DCD. */
        return u->mcr & MCR_LOOP ? (uint8_t)((u->mcr & 0x0F) << 4) : 0xB0;
    default: return u->scratch;
    }
}

static void com1_io(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    struct com1 *u = &vm->com1;
    /* Byte registers: a wider access touches only its first port's register (as the ISA bus
     * would for the byte lane the driver means); tutorials use outb/inb. */
    pthread_mutex_lock(&u->lock);
    if (io->is_write)
        com1_write(vm, u, (unsigned)io->offset, (uint8_t)io->value);
    else
        io->value = com1_read(u, (unsigned)io->offset);
    pthread_mutex_unlock(&u->lock);
}

int com1_register(struct vm *vm)
{
    pthread_mutex_init(&vm->com1.lock, NULL); /* (a default mutex holds nothing to release) */
    if (bus_register(&vm->pio, COM1_PORT, COM1_PORTS, "com1", com1_io, vm)) {
        log_error("COM1 (ports %#x+%u): the ports are taken (--exit-port?)", COM1_PORT, COM1_PORTS);
        return -1;
    }
    return 0;
}
