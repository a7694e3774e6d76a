/* interrupts.c - the IDT and the local APIC.
 *
 * slate has no PIC and no IOAPIC: every device interrupt is a message (MSI) straight to a CPU's
 * local APIC, with the vector and CPU the guest wrote into the device's IRQ_VECTOR/IRQ_CPU
 * registers. So "interrupt setup" is: an IDT entry per vector, the APIC enabled, and the route
 * written into each device. Handlers are C functions with gcc's interrupt attribute.
 */
#include "kernel.h"

#define SEL_CODE64 0x18 /* boot.S's 64-bit code segment */
#define GATE_INTERRUPT 0x8E /* present, ring 0, interrupt gate (IF cleared on entry) */

#define LAPIC_EOI 0xB0
#define LAPIC_SVR 0xF0
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_ASSERT 0x4000
#define ICR_ALL_BUT_SELF 0xC0000
#define SPURIOUS_VECTOR 0xFF

struct idt_entry {
    uint16_t offset_lo, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_hi, zero;
};
static struct idt_entry idt[256] __attribute__((aligned(16)));

static volatile uint32_t *lapic_reg(unsigned offset)
{
    return (volatile uint32_t *)(SLATE_LAPIC_ADDR + offset);
}

__attribute__((interrupt)) static void on_spurious(struct interrupt_frame *frame)
{
    (void)frame; /* a spurious interrupt needs no EOI */
}

void idt_set(uint8_t vector, void (*handler)(struct interrupt_frame *))
{
    uint64_t a = (uint64_t)handler;
    idt[vector] = (struct idt_entry){(uint16_t)a, SEL_CODE64, 0, GATE_INTERRUPT, (uint16_t)(a >> 16),
                                     (uint32_t)(a >> 32), 0};
}

/* Every CPU loads the same IDT. Exceptions have no handler on purpose: a fault in the demo
 * becomes a triple fault, and slate prints a crash report naming the function and line. */
void idt_load(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } pointer = {sizeof(idt) - 1, (uint64_t)idt};
    __asm__ volatile("lidt %0" ::"m"(pointer));
}

void idt_init(void)
{
    idt_set(SPURIOUS_VECTOR, on_spurious);
    idt_load();
}

void lapic_init(void)
{
    *lapic_reg(LAPIC_SVR) = LAPIC_SVR_ENABLE | SPURIOUS_VECTOR;
}

void lapic_eoi(void) { *lapic_reg(LAPIC_EOI) = 0; }

/* One ICR write reaches every other CPU: the "all excluding self" shorthand. */
void lapic_send_ipi_others(uint8_t vector)
{
    *lapic_reg(LAPIC_ICR_HI) = 0;
    *lapic_reg(LAPIC_ICR_LO) = ICR_ALL_BUT_SELF | ICR_ASSERT | vector;
}

/* Points a device's interrupt line at a vector on a CPU (see "Interrupts" in slate.h). */
void irq_route(const struct slate_device *dev, unsigned line, uint8_t vector, uint32_t cpu)
{
    if (line >= dev->irq_count)
        return;
    uint16_t port = (uint16_t)(dev->port_base + dev->irq_reg + line * SLATE_IRQ_STRIDE);
    slate_outl(port + SLATE_IRQ_CPU, cpu);
    slate_outl(port + SLATE_IRQ_VECTOR, vector);
}
