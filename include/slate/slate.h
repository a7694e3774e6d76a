/* slate.h - the slate machine's guest ABI: memory map, info block, hypercalls, devices.
 *
 * This header is the datasheet for guest authors. It is freestanding (no libc), usable from C
 * (gcc/clang, any -std from c99) and from GNU assembler (everything outside the constants sits
 * behind #ifndef __ASSEMBLER__). docs/machine.md explains the same contract in prose.
 *
 * Conventions: all multi-byte values are little-endian. Every device register is 32 bits wide at a
 * 4-byte-aligned offset in the device's I/O-port range (use inl/outl; 8- and 16-bit accesses read
 * or write the low bytes of the register). Hypercall results are signed 64-bit: >= 0 success,
 * < 0 one of SLATE_E* below.
 */
#ifndef SLATE_SLATE_H
#define SLATE_SLATE_H

/* ---- Physical memory map ------------------------------------------------------------------ */

#define SLATE_LOW_RAM_MAX 0xC0000000ULL   /* RAM fills [0, min(size, 3 GiB)) ...            */
#define SLATE_HIGH_RAM_BASE 0x100000000ULL /* ... and the rest starts at 4 GiB.               */
#define SLATE_HOLE_BASE 0xC0000000ULL     /* [3 GiB, 4 GiB) holds no RAM, only these:        */
#define SLATE_INFO_ADDR 0xC0000000ULL     /* the info block, read-only, up to 64 KiB         */
#define SLATE_INFO_MAX_SIZE 0x10000ULL
#define SLATE_HYPERCALL_PAGE 0xC0010000ULL /* MMIO hypercall page, 4 KiB (see below)          */
#define SLATE_BOOT_TABLES 0xC0100000ULL   /* GDT and page tables for protected/long entry   */
#define SLATE_BOOT_TABLES_SIZE 0x200000ULL /* writable; the guest may reuse or ignore them    */
#define SLATE_DEVICE_WINDOWS 0xD0000000ULL /* device shared-memory windows start here         */
#define SLATE_DEVICE_WINDOWS_END 0xFE000000ULL
#define SLATE_LAPIC_ADDR 0xFEE00000ULL    /* KVM's in-kernel local APIC (xAPIC MMIO)          */
#define SLATE_HOLE_END 0x100000000ULL

/* The boot stack for protected and long entry: the top 64 KiB of low RAM, whose top (the end of
 * low RAM, 16-byte aligned) is info->boot_stack_top. The entry's call frame sits just below it:
 * RSP = boot_stack_top - 8 (long: [RSP] is a return address) or ESP = boot_stack_top - 20
 * (protected: [ESP] return address, [ESP+4] the info block's address). Nothing is loaded there;
 * move off it before using that RAM. */
#define SLATE_BOOT_STACK_SIZE 0x10000ULL

/* Selectors in the boot GDT (at SLATE_BOOT_TABLES) that protected and long entry load. A real-mode
 * trampoline may load the same GDT: `lgdtl` of {limit SLATE_BOOT_GDT_LIMIT, base
 * SLATE_BOOT_TABLES}. Use the 32-bit form (lgdtl): a 16-bit lgdt keeps only 24 bits of the base,
 * which would cut 0xC0100000 to 0x100000. */
#define SLATE_SEL_CODE32 0x08 /* flat 4 GiB, 32-bit code                                    */
#define SLATE_SEL_DATA 0x10   /* flat 4 GiB, writable data (DS, ES, FS, GS, SS)              */
#define SLATE_SEL_CODE64 0x18 /* 64-bit code (long entry's CS)                               */
#define SLATE_BOOT_GDT_LIMIT 31 /* four 8-byte descriptors: null, CODE32, DATA, CODE64       */
#define SLATE_BOOT_CR3 0xC0101000ULL /* long entry's page tables (2 MiB pages, identity, WB) */

/* ---- CPUID leaves and MSRs a slate kernel uses ------------------------------------------------ */
#define SLATE_CPUID_SIGNATURE 0x40000000   /* EAX = 0x40000010 (highest hypervisor leaf);
                                            * EBX, ECX, EDX = "Slat" "eMac" "hine": the 12 bytes
                                            * in that order spell "SlateMachine"                */
#define SLATE_CPUID_FREQUENCIES 0x40000010 /* EAX = TSC kHz (= info->tsc_khz); EBX = LAPIC timer
                                            * kHz (1000000: it counts at 1 GHz, divide by 1)     */
#define SLATE_CPUID1_ECX_TSC_DEADLINE (1u << 24) /* CPUID.1:ECX: the TSC-deadline LAPIC timer */
#define SLATE_CPUID1_ECX_HYPERVISOR (1u << 31)   /* CPUID.1:ECX: always set on slate         */
#define SLATE_MSR_APIC_BASE 0x1B     /* IA32_APIC_BASE: 0xFEE00000 | enable (bit 11), BSP bit 8 */
#define SLATE_MSR_EFER 0xC0000080    /* IA32_EFER: LME bit 8, LMA bit 10, NXE bit 11           */
#define SLATE_MSR_FS_BASE 0xC0000100
#define SLATE_MSR_GS_BASE 0xC0000101
#define SLATE_MSR_KERNEL_GS_BASE 0xC0000102
#define SLATE_MSR_TSC_DEADLINE 0x6E0 /* IA32_TSC_DEADLINE: the TSC value at which the timer fires */
#define SLATE_MSR_X2APIC_BASE 0x800  /* x2APIC registers: MSR 0x800 + (xAPIC offset >> 4)      */

/* ---- The local APIC (xAPIC MMIO at SLATE_LAPIC_ADDR; KVM's in-kernel LAPIC) ---------------------
 * At the first instruction every CPU's APIC is globally enabled in xAPIC mode (IA32_APIC_BASE =
 * 0xFEE00900 on CPU 0, 0xFEE00800 on the others) but software-disabled (SVR = 0xFF): set
 * SLATE_LAPIC_SVR_ENABLE before taking interrupts. TPR is 0, every LVT is masked, the timer is
 * stopped. Offsets (32-bit registers, 16-byte aligned): */
#define SLATE_LAPIC_ID 0x020         /* bits 31:24: the APIC ID (= the CPU index)                */
#define SLATE_LAPIC_TPR 0x080        /* task priority                                          */
#define SLATE_LAPIC_EOI 0x0B0        /* write 0: end of interrupt                               */
#define SLATE_LAPIC_SVR 0x0F0        /* spurious vector | SLATE_LAPIC_SVR_ENABLE                */
#define SLATE_LAPIC_ISR 0x100        /* in-service bits, 8 registers 0x10 apart                 */
#define SLATE_LAPIC_IRR 0x200        /* requested bits, 8 registers 0x10 apart                  */
#define SLATE_LAPIC_ICR_LO 0x300     /* vector | delivery mode; writing it sends the IPI        */
#define SLATE_LAPIC_ICR_HI 0x310     /* bits 31:24: destination APIC ID (write before ICR_LO)   */
#define SLATE_LAPIC_LVT_TIMER 0x320  /* vector | mode (0 one-shot, 1 << 17 periodic, 2 << 17
                                      * TSC-deadline) | masked (1 << 16)                        */
#define SLATE_LAPIC_TIMER_INIT 0x380 /* initial count: writing it starts the timer              */
#define SLATE_LAPIC_TIMER_CURRENT 0x390
#define SLATE_LAPIC_TIMER_DIVIDE 0x3E0 /* 0xB: divide by 1 (then it counts at CPUID's EBX kHz) */
#define SLATE_LAPIC_SVR_ENABLE 0x100
#define SLATE_LAPIC_ICR_FIXED 0x0000  /* ICR_LO delivery modes, | vector                       */
#define SLATE_LAPIC_ICR_INIT 0x4500   /* INIT, level assert                                    */
#define SLATE_LAPIC_ICR_STARTUP 0x4600 /* start-up IPI: | (trampoline physical address >> 12)  */
#define SLATE_LAPIC_ICR_PENDING 0x1000 /* ICR_LO bit 12: delivery pending                      */
#define SLATE_LAPIC_TIMER_PERIODIC (1u << 17)
#define SLATE_LAPIC_TIMER_TSC_DEADLINE (2u << 17)

/* ---- Hypercalls ---------------------------------------------------------------------------- */

/* Port hypercall: `mov $FUNC, %eax; out %eax, %dx` with DX = SLATE_HYPERCALL_PORT. Arguments in
 * RDI, RSI, RCX, RBX (EDI, ESI, ECX, EBX in 32-bit code; not RDX, which holds the port),
 * result in RAX (so RAX is both input and output: "+a" in an asm statement). Every other
 * register, the arguments included, is preserved.
 * MMIO hypercall: a 32-bit write of FUNC to SLATE_HYPERCALL_PAGE + 0 (`movl %eax, (addr)` with the
 * page mapped uncached or not), same arguments and result. Both cost one exit to the VMM. */
#define SLATE_HYPERCALL_PORT 0xFFFF
#define SLATE_CPU_INDEX_PORT 0xFFFE /* `in` (any width) returns the calling CPU's index (0..n-1) */
#define SLATE_DEBUGCON_PORT 0xE9    /* `outb` writes one byte to the console (Bochs/QEMU style) */

#define SLATE_HC_NOP 0           /* () -> 0                                                  */
#define SLATE_HC_EXIT 1          /* (code) -> does not return; code 0..123 is slate's status  */
#define SLATE_HC_CONSOLE_WRITE 2 /* (vaddr, len) -> bytes written. vaddr is a linear address as
                                  * the calling CPU sees it, with its privilege (paging, U/S and
                                  * SMAP apply: EFAULT where the caller itself would fault; in real mode use
                                  * segment*16+offset); len <= SLATE_CONSOLE_WRITE_MAX. One
                                  * write is never interleaved with another CPU's output; it
                                  * goes to the same stream as the serial device and port 0xE9,
                                  * byte for byte (no translation of "\n").                   */
#define SLATE_CONSOLE_WRITE_MAX 65536
#define SLATE_HC_START_CPU 3     /* (cpu index, entry, stack, arg) -> 0: RDI, RSI, RCX, RBX. Starts a CPU that has
                                  * never run (one that ran and parked gets EBUSY: restart it
                                  * with INIT and a start-up IPI). entry and stack are linear
                                  * addresses in the caller's address space, which the new CPU
                                  * shares. It starts in the caller's mode (64-bit or 32-bit protected:
                                  * the caller's CR0/CR3/CR4/EFER, GDT, IDT and segments), at
                                  * `entry` with interrupts off and RDI = arg. `stack` (16-byte
                                  * aligned) gets a call frame as if entry(arg) had been called:
                                  * RSP = stack - 8 (64-bit) or ESP = stack - 20 with the arg at
                                  * [ESP+4] (32-bit). Returning from entry parks the CPU (cli;
                                  * hlt) if the boot tables are still mapped. Errors: EINVAL (no
                                  * such CPU, real or compatibility mode, misaligned stack),
                                  * EBUSY (the CPU already runs, or is the caller), EFAULT (the
                                  * stack is not mapped RAM). A failed call changes nothing.  */
#define SLATE_HC_SCREENSHOT 5    /* () -> 0: writes the --screenshot PNG now; SLATE_EINVAL when
                                  * slate has no --screenshot path (so no display); SLATE_EIO
                                  * when the file could not be written                         */
#define SLATE_HC_DEBUG_BREAK 4   /* () -> 1 if a debugger (--gdb) is attached: the machine stops
                                  * right after this instruction, as at a breakpoint; 0 when no
                                  * debugger is attached (nothing happens). Bochs' magic break. */
#define SLATE_HC_PROFILE 6       /* (on) -> 0: 1 starts --profile's sampling, 0 stops it, so a
                                  * kernel can profile one phase (slate --profile PATH,paused
                                  * starts stopped); SLATE_EINVAL without --profile, or for any
                                  * other argument                                             */
#define SLATE_HC_USER_HYPERCALLS 7 /* (mask) -> the previous mask: bit F set lets code at CPL > 0
                                  * (user mode, virtual-8086 mode) call function F. Only from
                                  * CPL 0 (SLATE_EPERM otherwise); machine-wide; function 7
                                  * itself is never callable from CPL > 0. At boot the mask is
                                  * SLATE_HC_USER_DEFAULT. Addresses a caller passes are always
                                  * reached with its own privilege (see docs/machine.md).      */
#define SLATE_HC_SNAPSHOT 8      /* (buf, size) -> which side of the snapshot the caller is on,
                                  * like fork(). Saves the whole machine (every CPU, RAM,
                                  * devices) with `slate --snapshot PATH`; the machine goes on.
                                  *   0   this machine saved PATH and runs on;
                                  *   1   this machine was restored from it (slate --restore);
                                  *   N   under `slate --each`: case N (1, 2, ...) of the run:
                                  *       the case file's bytes are copied to the linear
                                  *       address RDI (at most RSI bytes: a longer case is cut
                                  *       and says so on stderr), the length in RDX.
                                  * SLATE_EINVAL without --snapshot or --each (nothing to save
                                  * to); SLATE_EIO when the file could not be written or a
                                  * device cannot be saved (stderr names it); SLATE_EFAULT
                                  * under --each when [RDI, RDI+RSI) is not the caller's
                                  * writable RAM. Every CPU but the caller goes on from where
                                  * it was: call it from one CPU (docs/machine.md, Snapshots).*/
/* What user mode may call until the kernel says otherwise: NOP and CONSOLE_WRITE (of its own
 * memory); EXIT, START_CPU, SCREENSHOT, DEBUG_BREAK, PROFILE and every device hypercall get
 * SLATE_EPERM. */
#define SLATE_HC_USER_DEFAULT ((1ULL << SLATE_HC_NOP) | (1ULL << SLATE_HC_CONSOLE_WRITE))
/* Hypercall and device error codes (negative results). */
#define SLATE_ENOSYS (-1) /* no such function                                                  */
#define SLATE_EINVAL (-2) /* an argument is out of range                                       */
#define SLATE_EFAULT (-3) /* an address is not mapped, not RAM, or the range is too long      */
#define SLATE_EBUSY (-4)  /* the resource is already in use                                     */
#define SLATE_EIO (-5)    /* the host failed to do it (e.g. the screenshot file could not be written) */
#define SLATE_EPERM (-6)  /* the caller runs at CPL > 0 and the kernel has not allowed the function
                           * to user mode (SLATE_HC_USER_HYPERCALLS)                            */

/* ---- Devices: common ------------------------------------------------------------------------ */

/* Device type ids (struct slate_device.type). */
#define SLATE_DEV_NET 1
#define SLATE_DEV_DISPLAY 2
#define SLATE_DEV_SERIAL 3
#define SLATE_DEV_TIMER 4
#define SLATE_DEV_KEYBOARD 5
#define SLATE_DEV_POINTER 6
#define SLATE_DEV_BLOCK 7
#define SLATE_DEV_POWER 8

/* Interrupts are message-signalled and edge-triggered, delivered to a CPU's local APIC. A device
 * with irq_count > 0 has, for each line k, two registers at port offset irq_reg + 8*k:
 *   +0 IRQ_VECTOR (rw): the vector, 32..255; 0 (the reset value) disables the line.
 *   +4 IRQ_CPU    (rw): the destination CPU index (as in struct slate_cpu); bad index -> CPU 0.
 * The rule, the same for every device: a NEW event (input arrived, a request completed, a timer
 * expired...) sets its bit in IRQ_STATUS; if the bit was clear, the line is raised. Writing 1s
 * to IRQ_STATUS acknowledges (clears) bits and never raises the line by itself, even when
 * events are still queued. So acknowledge FIRST, then drain the device's queue completely (in
 * the handler or in a main loop): an event that arrives after the acknowledge sets the bit
 * again and raises the line, so none is missed. If a bit is already set when IRQ_VECTOR is
 * written, the line is raised at once. End the handler with an EOI to the local APIC. */
#define SLATE_IRQ_VECTOR 0x0
#define SLATE_IRQ_CPU 0x4
#define SLATE_IRQ_STRIDE 0x8

/* ---- Serial console (type 3) ---------------------------------------------------------------- */
#define SLATE_SERIAL_DATA 0x00       /* w: send the low byte. r: next input byte, or 0xFFFFFFFF */
#define SLATE_SERIAL_STATUS 0x04     /* r: RX_READY | TX_READY | RX_CLOSED                      */
#define SLATE_SERIAL_IRQ_STATUS 0x08 /* r: pending SLATE_SERIAL_IRQ_* bits; w: 1s acknowledge   */
#define SLATE_SERIAL_IRQ_REG 0x10    /* IRQ_VECTOR at 0x10, IRQ_CPU at 0x14 (one line)          */
#define SLATE_SERIAL_RX_READY 0x1    /* at least one input byte is waiting                      */
#define SLATE_SERIAL_TX_READY 0x2    /* always set: output never blocks the guest               */
#define SLATE_SERIAL_RX_CLOSED 0x4   /* the host's input ended (e.g. stdin was a file) and every
                                      * byte has been read: no more input will ever come        */
#define SLATE_SERIAL_IRQ_RX 0x1      /* new input arrived (acknowledge, then read until DATA
                                      * reads 0xFFFFFFFF)                                       */
#define SLATE_SERIAL_IRQ_CLOSED 0x2  /* the host's input ended; raised once                     */

/* ---- Network card (type 1) --------------------------------------------------------------- */
/* Ethernet frames through two rings in the device's window (struct slate_net_window). Each ring
 * has SLATE_NET_RING_SIZE slots of one frame each and two free-running 32-bit indexes: `head`
 * is written by the producer, `tail` by the consumer; slot i is slots[i % SIZE].
 *   Transmit: the guest produces. Write the frame (14..1514 bytes, no FCS) into the slot at
 *   tx.head, set its length, increment tx.head, then write anything to TX_NOTIFY (a KVM
 *   ioeventfd: no exit to user space). The device sends frames in order, sets each slot's
 *   status (SLATE_NET_OK or SLATE_NET_BAD_LENGTH), advances tx.tail and raises IRQ_TX.
 *   Receive: the device produces. Each frame goes into the slot at rx.head with its length;
 *   rx.head advances and IRQ_RX is raised. The guest consumes from rx.tail and advances it. When
 *   the ring is full, frames are dropped and counted in RX_DROPS: the device never waits.
 * Interrupts are coalesced: one for a burst, raised again when the guest acknowledges and more
 * has happened. A guest that moves tx.head more than a ring ahead of tx.tail gets the ERROR bit
 * in STATUS; transmit stops until it writes RESET.
 * Version 2: after advancing tx.head, a full barrier (mfence, or a locked instruction), then
 * TX_NOTIFY only if tx.busy reads 0 (guest.h's slate_net_notify_needed): while the card is
 * sending it takes new frames without being told. */
#define SLATE_NET_MAC_LO 0x00      /* r: MAC address bytes 0..3 (byte 0 in bits 0..7)        */
#define SLATE_NET_MAC_HI 0x04      /* r: MAC address bytes 4..5                               */
#define SLATE_NET_STATUS 0x08      /* r: SLATE_NET_LINK_UP | SLATE_NET_ERROR                  */
#define SLATE_NET_MTU 0x0C         /* r: 1500                                                 */
#define SLATE_NET_TX_NOTIFY 0x10   /* w (outl): new frames are in the transmit ring           */
#define SLATE_NET_RX_NOTIFY 0x14   /* w: the guest freed receive slots (optional)             */
#define SLATE_NET_IRQ_STATUS 0x18  /* r: SLATE_NET_IRQ_RX | SLATE_NET_IRQ_TX; w: 1s acknowledge */
#define SLATE_NET_RESET 0x1C       /* w: any value: both rings back to 0, ERROR cleared       */
#define SLATE_NET_RX_FRAMES 0x20   /* r: counters since boot (32-bit, wrapping)               */
#define SLATE_NET_RX_BYTES 0x24
#define SLATE_NET_TX_FRAMES 0x28
#define SLATE_NET_TX_BYTES 0x2C
#define SLATE_NET_RX_DROPS 0x30    /* frames dropped because the receive ring was full       */
#define SLATE_NET_TX_ERRORS 0x34   /* frames refused (bad length) or the backend failed      */
#define SLATE_NET_IRQ_REG 0x38     /* IRQ_VECTOR at 0x38, IRQ_CPU at 0x3C (one line)          */
#define SLATE_NET_LINK_UP 0x1
#define SLATE_NET_ERROR 0x2
#define SLATE_NET_IRQ_RX 0x1
#define SLATE_NET_IRQ_TX 0x2
#define SLATE_NET_RING_SIZE 128
#define SLATE_NET_FRAME_MAX 1514
#define SLATE_NET_OK 0
#define SLATE_NET_BAD_LENGTH 1

/* ---- Display (type 2) --------------------------------------------------------------------- */
/* The window holds the screen. Text mode (the default): 80x25 cells of two bytes, the character
 * (ISO 8859-1: ASCII plus Latin-1) and its colours (low nibble foreground, high nibble background,
 * the 16 VGA colours), rendered by slate with an 8x16 font, so the screen is 640x400 pixels.
 * Cells are row by row from the window's start: row r, column c is the 16-bit word at byte
 * (r * 80 + c) * 2 (character in the low byte), PITCH = 160. At boot the window is all zero
 * (character 0 on black: a black screen). MODE changes only how slate reads the window, never
 * its contents: switching mode clears nothing.
 * Graphics mode: WIDTH x HEIGHT pixels of 32 bits, 0x00RRGGBB as a little-endian word (bytes
 * blue, green, red, unused in memory), rows PITCH bytes apart. To change mode, write WIDTH and
 * HEIGHT, then MODE; a size of 0 or above MAX_WIDTH x MAX_HEIGHT sets ERROR in STATUS and leaves
 * the mode as it was. slate notices which pages the guest wrote and sends only those. */
#define SLATE_DISPLAY_MODE 0x00       /* rw: SLATE_DISPLAY_TEXT or SLATE_DISPLAY_GRAPHICS       */
#define SLATE_DISPLAY_WIDTH 0x04      /* rw: pixels (graphics); r: columns (text)               */
#define SLATE_DISPLAY_HEIGHT 0x08     /* rw: pixels (graphics); r: rows (text)                  */
#define SLATE_DISPLAY_PITCH 0x0C      /* r: bytes from one row (of pixels or cells) to the next */
#define SLATE_DISPLAY_MAX_WIDTH 0x10  /* r: 1920                                                */
#define SLATE_DISPLAY_MAX_HEIGHT 0x14 /* r: 1080                                                */
#define SLATE_DISPLAY_STATUS 0x18     /* r: SLATE_DISPLAY_ERROR if the last MODE write failed   */
#define SLATE_DISPLAY_CURSOR 0x1C     /* rw: text cursor, column | row << 16; 0xFFFFFFFF hides  */
#define SLATE_DISPLAY_TEXT 0
#define SLATE_DISPLAY_GRAPHICS 1
#define SLATE_DISPLAY_ERROR 0x1
#define SLATE_DISPLAY_TEXT_COLUMNS 80
#define SLATE_DISPLAY_TEXT_ROWS 25

/* ---- Keyboard (type 5) ---------------------------------------------------------------------- */
/* A queue of key events. Read EVENT to take the oldest (0 when empty): the key's USB HID usage
 * code (page 7: 0x04 = A ... 0x28 = Enter, 0x29 = Escape, 0x2C = Space, 0x4F..0x52 arrows,
 * 0xE0..0xE7 modifiers), whether it went down, and the modifier state. CHAR then gives the
 * Unicode character that event types, if any (0 for keys like Shift or the arrows), so a shell
 * needs no keymap. The queue holds 64 events; when it is full, new ones are dropped and counted. */
#define SLATE_KEYBOARD_EVENT 0x00      /* r: usage | PRESSED | modifiers << 24; 0: empty        */
#define SLATE_KEYBOARD_CHAR 0x04       /* r: the Unicode character of the event last taken      */
#define SLATE_KEYBOARD_PENDING 0x08    /* r: events waiting                                     */
#define SLATE_KEYBOARD_OVERFLOWS 0x0C  /* r: events dropped because the queue was full          */
#define SLATE_KEYBOARD_IRQ_STATUS 0x10 /* r: bit 0 = new events; w: 1s acknowledge, then drain   */
#define SLATE_KEYBOARD_IRQ_REG 0x18    /* IRQ_VECTOR at 0x18, IRQ_CPU at 0x1C                   */
#define SLATE_KEYBOARD_PRESSED 0x10000
#define SLATE_KEY_MOD_CTRL 0x1         /* modifiers: left or right                              */
#define SLATE_KEY_MOD_SHIFT 0x2
#define SLATE_KEY_MOD_ALT 0x4

/* ---- Pointer (type 6) ----------------------------------------------------------------------- */
/* An absolute pointer in screen pixels. The interrupt says something changed. */
#define SLATE_POINTER_X 0x00           /* r                                                     */
#define SLATE_POINTER_Y 0x04           /* r                                                     */
#define SLATE_POINTER_BUTTONS 0x08     /* r: bit 0 left, bit 1 middle, bit 2 right              */
#define SLATE_POINTER_WHEEL 0x0C       /* r: wheel steps since the last read (signed; + is up)  */
#define SLATE_POINTER_IRQ_STATUS 0x10  /* r: bit 0 = changed; w: 1s acknowledge                 */
#define SLATE_POINTER_IRQ_REG 0x18     /* IRQ_VECTOR at 0x18, IRQ_CPU at 0x1C                   */

/* ---- Timer and clock (type 4) -------------------------------------------------------------- */
/* Two clocks and SLATE_TIMER_COUNT timers. Time is in nanoseconds. 64-bit values are two 32-bit
 * registers: read LO first (that latches HI for the reading CPU), then HI. The monotonic clock
 * starts at 0 when the machine boots and never jumps; the wall clock is the host's Unix time.
 * Both can also be read with no exit at all, from rdtsc and the info block:
 *     delta = rdtsc() - info->boot_tsc;
 *     ns    = delta / info->tsc_khz * 1000000 + delta % info->tsc_khz * 1000000 / info->tsc_khz;
 *     unix_ns = info->boot_unix_ns + ns;
 * Each timer has its own interrupt line (line n = timer n, so each CPU can have its own timer)
 * and bit n in IRQ_STATUS. A timer counts from when it is started; a periodic timer that fires
 * again before the guest acknowledges is coalesced into one interrupt (EXPIRATIONS still counts
 * every expiry, so a guest can tell how many ticks it missed). */
#define SLATE_TIMER_CLOCK_LO 0x00    /* r: monotonic ns since boot, low half (latches HI)      */
#define SLATE_TIMER_CLOCK_HI 0x04    /* r: high half of the value latched by CLOCK_LO          */
#define SLATE_TIMER_WALL_LO 0x08     /* r: Unix time in ns, low half (latches HI)              */
#define SLATE_TIMER_WALL_HI 0x0C
#define SLATE_TIMER_IRQ_STATUS 0x10  /* r: bit n = timer n expired; w: 1s acknowledge          */
#define SLATE_TIMER_NUM_TIMERS 0x14  /* r: the number of timers (SLATE_TIMER_COUNT)            */
#define SLATE_TIMER_MIN_PERIOD 0x18  /* r: the shortest period accepted, in ns                 */
#define SLATE_TIMER_IRQ_REG 0x20     /* IRQ_VECTOR/IRQ_CPU of line n at 0x20 + 8n              */
#define SLATE_TIMER_COUNT 4
#define SLATE_TIMER_BANK(n) (0x40 + 0x20 * (n)) /* timer n's registers, n < SLATE_TIMER_COUNT.
                                  * Banks for n >= COUNT (0xC0..0xFF) are timers that do not
                                  * exist: they read 0xFFFFFFFF, as a probe for "no timer n"
                                  * expects, and ignore writes with a warning (the one exception
                                  * to "reserved registers read 0").                          */
#define SLATE_TIMER_DELAY_LO 0x00    /* rw: ns until the first expiry (or the absolute deadline
                                      * on the monotonic clock with SLATE_TIMER_ABSOLUTE).
                                      * Writes need no latch: LO and HI (and PERIOD) are plain
                                      * registers, written in any order, used only when CTRL is
                                      * written                                                 */
#define SLATE_TIMER_DELAY_HI 0x04
#define SLATE_TIMER_PERIOD_LO 0x08   /* rw: ns between expiries after the first; 0: one-shot    */
#define SLATE_TIMER_PERIOD_HI 0x0C
#define SLATE_TIMER_CTRL 0x10        /* w: 0 stops; START [| ABSOLUTE] (re)arms from DELAY and
                                      * PERIOD. r: ARMED, ERROR if the last write was refused
                                      * (unknown bits, or a period below MIN_PERIOD)           */
#define SLATE_TIMER_EXPIRATIONS 0x14 /* r: expiries since the last start (wraps at 2^32); kept
                                      * when the timer stops                                   */
#define SLATE_TIMER_START 0x1
#define SLATE_TIMER_ABSOLUTE 0x2
#define SLATE_TIMER_ARMED 0x1
#define SLATE_TIMER_ERROR 0x80000000u

/* ---- Block device (type 7) ----------------------------------------------------------------- */
/* A disk of 512-byte sectors. Requests live in a ring in the device's memory window (see struct
 * slate_block_ring): fill slot (submitted % SLATE_BLOCK_RING_SIZE), set its status to
 * SLATE_BLOCK_PENDING, increment `submitted`, then write anything to NOTIFY. The device processes
 * requests in order, off the guest's CPUs, writes each one's status, increments `completed`, and
 * raises its interrupt (IRQ_STATUS bit 0). At most SLATE_BLOCK_RING_SIZE requests may be
 * outstanding (submitted - completed). A completed FLUSH means every write completed before it is
 * on stable storage.
 * Version 2 (the device entry's `version`) adds two ways to spend fewer exits, both optional:
 * - `device_busy`: after incrementing `submitted`, a full barrier (mfence, or any locked
 *   instruction), then NOTIFY only if `device_busy` reads 0: while it is 1 the device is working
 *   through the ring and takes the new request without being told (guest.h's
 *   slate_block_notify_needed does this).
 * - `irq_batch`: N > 0 asks for one interrupt per N completions, and always one when the device
 *   has completed everything submitted (so no completion is left without an interrupt). */
#define SLATE_BLOCK_CAPACITY_LO 0x00 /* r: capacity in sectors, low half                       */
#define SLATE_BLOCK_CAPACITY_HI 0x04 /* r: high half                                           */
#define SLATE_BLOCK_FLAGS 0x08       /* r: SLATE_BLOCK_READ_ONLY                               */
#define SLATE_BLOCK_NOTIFY 0x0C      /* w: any value: new requests are in the ring (no exit to
                                      * user space: a KVM ioeventfd)                           */
#define SLATE_BLOCK_IRQ_STATUS 0x10  /* r: bit 0 = requests completed; w: 1s acknowledge       */
#define SLATE_BLOCK_ERROR 0x14       /* r: nonzero once the ring was found broken (submitted
                                      * ran more than a ring ahead); the device then stops     */
#define SLATE_BLOCK_WRITE_ERRORS 0x18 /* r: writes, discards and flushes that failed since the
                                      * guest last cleared it; while not 0, every FLUSH fails
                                      * (data was lost, whatever a later fdatasync says).
                                      * w: any value clears it                                 */
#define SLATE_BLOCK_IRQ_REG 0x20     /* IRQ_VECTOR at 0x20, IRQ_CPU at 0x24 (one line)         */
#define SLATE_BLOCK_READ_ONLY 0x1
#define SLATE_BLOCK_SECTOR_SIZE 512
#define SLATE_BLOCK_RING_SIZE 256
#define SLATE_BLOCK_MAX_SECTORS 8192 /* per request: 4 MiB                                    */

#define SLATE_BLOCK_OP_READ 1     /* disk -> buffer                                              */
#define SLATE_BLOCK_OP_WRITE 2    /* buffer -> disk                                              */
#define SLATE_BLOCK_OP_FLUSH 3    /* make every completed write durable (sector, count ignored)  */
#define SLATE_BLOCK_OP_DISCARD 4  /* the sectors' contents are no longer needed (read back as 0) */
#define SLATE_BLOCK_OP_IDENTIFY 5 /* writes a struct slate_block_identity to the buffer          */

#define SLATE_BLOCK_OK 0
#define SLATE_BLOCK_IO_ERROR 1     /* the host's read or write failed                           */
#define SLATE_BLOCK_OUT_OF_RANGE 2 /* sectors past the end, count 0 or above MAX_SECTORS         */
#define SLATE_BLOCK_UNSUPPORTED 3  /* unknown operation, or DISCARD the host cannot do          */
#define SLATE_BLOCK_READ_ONLY_ERR 4 /* a write or discard to a read-only disk                    */
#define SLATE_BLOCK_BAD_BUFFER 5   /* the buffer is not all RAM (past the end, or in the hole)   */
#define SLATE_BLOCK_PENDING 0xFF   /* set by the guest before submitting; the device overwrites */

/* ---- Power (type 8) ------------------------------------------------------------------------- */
#define SLATE_POWER_EXIT 0x00  /* w: stop the machine; slate exits with this code (0..123)     */
#define SLATE_POWER_RESET 0x04 /* w: any value: reset. RAM is cleared, images are reloaded, the
                                * info block and every device are as at boot, and CPU 0 starts
                                * again at the entry point; the other CPUs wait to be started,
                                * as at boot.                                                   */

#ifndef __ASSEMBLER__

#ifdef __cplusplus
#error "slate.h is a C header"
#endif

/* Freestanding fixed-width types: the VMM includes <stdint.h>; a guest built with -ffreestanding
 * gets them from the compiler's own <stdint.h>, which needs no libc. */
#include <stdint.h>

/* ---- The info block ------------------------------------------------------------------------- */

/* At SLATE_INFO_ADDR before the first instruction; EBX (real and protected entry) or RDI (long
 * entry) holds its address. Read-only: writes are ignored (with a warning). Every table is found
 * through an offset from the start of the block and has an entry size, so later versions can
 * append fields to any entry and add tables without breaking guests that read this version. */

#define SLATE_INFO_MAGIC "SLATEMCH"
#define SLATE_INFO_VERSION 1

struct slate_info {
    char magic[8];             /* "SLATEMCH", not NUL-terminated                           */
    uint32_t version;          /* SLATE_INFO_VERSION; newer versions only append            */
    uint32_t total_size;       /* bytes, header and every table                             */
    uint32_t header_size;      /* sizeof(struct slate_info) of the writer's version         */
    uint32_t cpu_count;        /* number of CPUs (entries in the CPU table)                 */
    uint64_t tsc_khz;          /* TSC frequency in kHz (constant and invariant)             */
    uint64_t ram_total;        /* bytes of RAM in all regions                               */
    uint64_t boot_stack_top;   /* top of the boot stack for protected/long entry (0 for real);
                                * the entry frame is below it (SLATE_BOOT_STACK_SIZE)       */
    uint32_t ram_offset;       /* table of struct slate_ram_region                          */
    uint32_t ram_count;
    uint32_t ram_entry_size;
    uint32_t cpu_offset;       /* table of struct slate_cpu                                 */
    uint32_t cpu_entry_size;
    uint32_t cmdline_offset;   /* the kernel command line (--append), NUL-terminated        */
    uint32_t cmdline_size;     /* bytes including the NUL; 1 when there is none              */
    uint32_t image_offset;     /* table of struct slate_image: the kernel, then each --load  */
    uint32_t image_count;
    uint32_t image_entry_size;
    uint32_t device_offset;    /* table of struct slate_device                               */
    uint32_t device_count;
    uint32_t device_entry_size;
    uint32_t reserved;
    uint64_t boot_tsc;         /* the TSC when the monotonic clock read 0 (see the timer)    */
    uint64_t boot_unix_ns;     /* Unix time in ns when the monotonic clock read 0             */
};

/* A kernel booted through Multiboot, Multiboot2 or Limine (docs/machine.md, "Coming from QEMU,
 * GRUB or Limine") finds the info block at SLATE_INFO_ADDR all the same (through the HHDM under
 * Limine); a Multiboot2 kernel also gets this tag in its boot information, after the standard
 * ones. As every Multiboot2 tag, it starts on an 8-byte boundary. */
#define SLATE_MULTIBOOT2_TAG_INFO 0x534C4154u /* "TALS": type of the tag below              */

struct slate_multiboot2_tag {
    uint32_t type;      /* SLATE_MULTIBOOT2_TAG_INFO                                            */
    uint32_t size;      /* 16                                                                   */
    uint64_t info_addr; /* guest-physical address of struct slate_info (SLATE_INFO_ADDR)        */
};

#define SLATE_RAM_USABLE 1 /* ordinary RAM, free for the guest except the images it lists */

struct slate_ram_region {
    uint64_t base; /* guest-physical address                                                  */
    uint64_t size; /* bytes                                                                    */
    uint32_t type; /* SLATE_RAM_USABLE                                                         */
    uint32_t reserved;
};

struct slate_cpu {
    uint32_t index;   /* 0..cpu_count-1: the number hypercalls and IRQ_CPU registers take       */
    uint32_t apic_id; /* its local APIC ID (for IPIs through the ICR)                           */
};

#define SLATE_IMAGE_KERNEL 0x1 /* flags: this image is the kernel itself */
#define SLATE_NAME_MAX 48

struct slate_image {
    uint64_t base;              /* guest-physical load address                                 */
    uint64_t size;              /* bytes occupied in RAM (an ELF: lowest to highest byte of its
                                 * segments in memory, bss included)                          */
    uint32_t flags;             /* SLATE_IMAGE_*                                                */
    uint32_t reserved;
    char name[SLATE_NAME_MAX];  /* file name without directories, NUL-terminated, truncated   */
};

struct slate_device {
    uint16_t type;          /* SLATE_DEV_*                                                      */
    uint16_t version;       /* register-layout version of this device type, starting at 1       */
    uint16_t port_base;     /* first I/O port of its registers                                  */
    uint16_t port_count;    /* number of ports (registers * 4)                                  */
    char name[16];          /* instance name, e.g. "serial0", NUL-terminated                    */
    uint64_t window_base;   /* guest-physical shared-memory window, 0 when it has none         */
    uint64_t window_size;   /* bytes                                                            */
    uint16_t irq_reg;       /* port offset of line 0's IRQ_VECTOR register (see above)         */
    uint16_t irq_count;     /* interrupt lines; 0 when the device has none                      */
    uint32_t reserved;
    uint64_t reserved2;
};

/* One request: 32 bytes. The buffer is guest-physical and must be RAM; it need not be aligned. */
struct slate_block_request {
    uint8_t op;      /* SLATE_BLOCK_OP_*                                                        */
    uint8_t status;  /* SLATE_BLOCK_PENDING from the guest; the result from the device           */
    uint16_t reserved;
    uint32_t count;  /* sectors (bytes = count * 512); IDENTIFY: ignored (512 bytes)            */
    uint64_t sector; /* first sector                                                            */
    uint64_t buffer; /* guest-physical address of count * 512 bytes                             */
    uint64_t tag;    /* the guest's own value, left untouched                                   */
};

/* At the start of the device's window. Indexes are free-running 32-bit counters. */
struct slate_block_ring {
    uint32_t submitted;   /* written by the guest: requests submitted so far                   */
    uint32_t completed;   /* written by the device: requests completed so far                  */
    uint32_t device_busy; /* written by the device (version 2): 1 while it works through the
                           * ring and sees new requests without a NOTIFY; 0 once it has caught
                           * up with `submitted` (it then looks at `submitted` once more)       */
    uint32_t irq_batch;   /* written by the guest (version 2): 0, as at boot, for an interrupt
                           * per completion; N for one per N completions, and one whenever the
                           * device has caught up with `submitted`                              */
    uint32_t reserved[12];
    struct slate_block_request slots[SLATE_BLOCK_RING_SIZE];
};

struct slate_net_ring {
    uint32_t head; /* producer's index: guest for transmit, device for receive               */
    uint32_t tail; /* consumer's index: device for transmit, guest for receive               */
    uint32_t busy; /* transmit ring, written by the device (version 2): 1 while it is sending
                    * and sees new frames without a TX_NOTIFY; 0 once it has caught up with
                    * tx.head (it then looks at tx.head once more). Receive ring: always 0    */
    uint32_t irq_batch; /* transmit ring, written by the guest (version 2): 0, as at boot, for
                    * IRQ_TX once the card has sent everything queued; N for IRQ_TX also after
                    * every N frames sent, so the ring can be refilled while the card still
                    * sends (N = half the ring keeps it busy). Receive ring: ignored          */
    uint32_t reserved[12];
};

struct slate_net_slot {
    uint16_t length; /* frame bytes                                                          */
    uint16_t status; /* transmit: SLATE_NET_OK or SLATE_NET_BAD_LENGTH once sent              */
    uint32_t reserved;
    uint8_t frame[2040];
};

/* The device's window. */
struct slate_net_window {
    struct slate_net_ring tx;
    struct slate_net_ring rx;
    uint8_t reserved[4096 - 2 * sizeof(struct slate_net_ring)];
    struct slate_net_slot tx_slots[SLATE_NET_RING_SIZE];
    struct slate_net_slot rx_slots[SLATE_NET_RING_SIZE];
};

/* What IDENTIFY writes (512 bytes). */
struct slate_block_identity {
    uint64_t capacity;   /* sectors                                                              */
    uint32_t sector_size; /* 512                                                                 */
    uint32_t flags;      /* SLATE_BLOCK_READ_ONLY                                                */
    char model[32];      /* "slate disk", NUL-terminated                                         */
    char serial[32];     /* "slate-disk-N" (N = the --disk index), NUL-terminated                */
    uint8_t reserved[432];
};

_Static_assert(sizeof(struct slate_block_request) == 32, "block request layout");
_Static_assert(sizeof(struct slate_net_slot) == 2048, "net slot layout");
_Static_assert(sizeof(struct slate_net_window) == 4096 + 2 * 2048 * SLATE_NET_RING_SIZE, "net window layout");
_Static_assert(sizeof(struct slate_block_ring) == 64 + 32 * SLATE_BLOCK_RING_SIZE, "block ring layout");
_Static_assert(sizeof(struct slate_block_identity) == 512, "block identity layout");
_Static_assert(sizeof(struct slate_info) == 120, "info header layout");
_Static_assert(sizeof(struct slate_ram_region) == 24, "ram region layout");
_Static_assert(sizeof(struct slate_cpu) == 8, "cpu entry layout");
_Static_assert(sizeof(struct slate_image) == 72, "image entry layout");
_Static_assert(sizeof(struct slate_multiboot2_tag) == 16, "Multiboot2 tag layout");
_Static_assert(sizeof(struct slate_device) == 56, "device entry layout");

#endif /* __ASSEMBLER__ */
#endif /* SLATE_SLATE_H */
