/* pc_legacy.c - COM1 for kernels booted through a PC boot protocol. A 16550 as a polling driver
 * sees it: bytes written to the transmit register go to the serial console at once, so the line
 * status always says "transmitter empty"; the divisor latch, scratch and control registers keep
 * what is written; loopback mode (the self-test tutorials run: MCR bit 4) echoes the byte back
 * instead of sending it. There is no receiver and no interrupt: the kernel's input is slate's
 * serial device (docs/machine.md). */
#include "pc_legacy.h"

#include "vm.h"

#include "log.h"

#include <time.h>

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

/* ---- the CMOS clock ------------------------------------------------------------------------ */

/* Registers a clock reader uses; the rest read 0. Values are BCD, 24-hour, UTC (as QEMU's
 * default), status B says so, and "update in progress" is never set: each read is the host's
 * time at that moment. */
enum { CMOS_SEC = 0x00, CMOS_MIN = 0x02, CMOS_HOUR = 0x04, CMOS_WEEKDAY = 0x06, CMOS_DAY = 0x07,
       CMOS_MONTH = 0x08, CMOS_YEAR = 0x09, CMOS_STATUS_A = 0x0A, CMOS_STATUS_B = 0x0B,
       CMOS_STATUS_C = 0x0C, CMOS_STATUS_D = 0x0D, CMOS_CENTURY = 0x32 };
#define STATUS_A_DIVIDER 0x26   /* 32.768 kHz time base, 1024 Hz rate: what a PC has */
#define STATUS_B_24H 0x02       /* BCD (bit 2 clear), 24-hour */
#define STATUS_D_VALID 0x80     /* the battery is good: the time can be trusted */

static uint8_t bcd(int v) { return (uint8_t)((v / 10) << 4 | v % 10); }

static uint8_t cmos_read(uint8_t reg)
{
    time_t now = time(NULL);
    struct tm t;
    if (!gmtime_r(&now, &t))
        return 0;
    switch (reg) {
    case CMOS_SEC: return bcd(t.tm_sec > 59 ? 59 : t.tm_sec);
    case CMOS_MIN: return bcd(t.tm_min);
    case CMOS_HOUR: return bcd(t.tm_hour);
    case CMOS_WEEKDAY: return bcd(t.tm_wday + 1); /* 1 = Sunday */
    case CMOS_DAY: return bcd(t.tm_mday);
    case CMOS_MONTH: return bcd(t.tm_mon + 1);
    case CMOS_YEAR: return bcd((t.tm_year + 1900) % 100);
    case CMOS_CENTURY: return bcd((t.tm_year + 1900) / 100);
    case CMOS_STATUS_A: return STATUS_A_DIVIDER;
    case CMOS_STATUS_B: return STATUS_B_24H;
    case CMOS_STATUS_D: return STATUS_D_VALID;
    default: return 0;
    }
}

static void cmos_io(void *opaque, struct bus_io *io)
{
    struct vm *vm = opaque;
    struct cmos *c = &vm->cmos;
    pthread_mutex_lock(&c->lock);
    if (io->offset == 0 && io->is_write)
        c->index = (uint8_t)io->value & 0x7F; /* bit 7 masks NMIs: there are none to mask */
    else if (io->offset == 0)
        io->value = 0xFF; /* the index register cannot be read back on a PC either */
    else if (!io->is_write)
        io->value = cmos_read(c->index);
    else if (!c->warned_write) {
        c->warned_write = true;
        log_warn("cpu %u: write to CMOS register %#x ignored: slate's CMOS clock is read-only "
                 "(docs/machine.md, What these kernels also get)", io->cpu_index, c->index);
    }
    pthread_mutex_unlock(&c->lock);
}

int cmos_register(struct vm *vm)
{
    pthread_mutex_init(&vm->cmos.lock, NULL);
    if (bus_register(&vm->pio, CMOS_PORT, CMOS_PORTS, "cmos", cmos_io, vm)) {
        log_error("CMOS clock (ports %#x+%u): the ports are taken (--exit-port?)", CMOS_PORT, CMOS_PORTS);
        return -1;
    }
    return 0;
}

/* ---- what else a PC kernel looks for --------------------------------------------------------- */

enum legacy_device { PIC, PIT, PS2, PCI, ATA, VGA_CRTC };

static const char *const legacy_hints[] = {
    [PIC] = "the 8259 PIC, which slate does not have: device interrupts are MSIs to the local APIC, "
            "each device's vector set in its IRQ registers (docs/machine.md, Interrupts)",
    [PIT] = "the 8254 PIT, which slate does not have: use the timer device (type 4) or the local "
            "APIC timer (docs/machine.md, Timer and clock)",
    [PS2] = "the PS/2 controller, which slate does not have: use the keyboard and pointer devices "
            "(types 5 and 6; docs/machine.md, Display, keyboard and pointer)",
    [PCI] = "PCI configuration space, which slate does not have: its devices are listed in the info "
            "block (docs/machine.md, The info block)",
    [ATA] = "the ATA disk controller, which slate does not have: use the block device (type 7; "
            "docs/machine.md, Block device)",
    [VGA_CRTC] = "the VGA CRT controller (the cursor), which slate does not have: set the display's "
                 "CURSOR register (docs/machine.md, Display, keyboard and pointer)",
};

static const struct {
    uint16_t first, last;
    enum legacy_device device;
} legacy_ports[] = {
    {0x20, 0x21, PIC}, {0xA0, 0xA1, PIC}, {0x40, 0x43, PIT},   {0x60, 0x60, PS2},
    {0x64, 0x64, PS2}, {0xCF8, 0xCFF, PCI}, {0x1F0, 0x1F7, ATA}, {0x3D4, 0x3D5, VGA_CRTC},
};

const char *legacy_port_hint(uint16_t port, unsigned *bit)
{
    for (unsigned i = 0; i < sizeof(legacy_ports) / sizeof(legacy_ports[0]); i++)
        if (port >= legacy_ports[i].first && port <= legacy_ports[i].last) {
            *bit = legacy_ports[i].device;
            return legacy_hints[legacy_ports[i].device];
        }
    return NULL;
}
