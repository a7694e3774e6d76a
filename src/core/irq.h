/* irq.h - message-signalled interrupts: one GSI per line, an MSI route, and an irqfd, so raising
 * an interrupt is one eventfd write and costs the guest no exit. */
#ifndef SLATE_IRQ_H
#define SLATE_IRQ_H

#include "irq_line.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct vm;


/* Allocates a GSI and an eventfd and binds them with KVM_IRQFD. 0 or -errno (logged). */
int irq_line_init(struct vm *vm, struct irq_line *line);
void irq_line_close(struct irq_line *line);

/* Points the line at (vector, cpu); vector 0 disables it. The caller has checked both
 * (device_register_io). 0, or -errno when KVM refused the routing table. */
int irq_line_configure(struct irq_line *line, uint32_t vector, uint32_t cpu);

/* Sends the interrupt if the line is enabled. Callable from any thread. */
void irq_line_raise(struct irq_line *line);

#endif
