/* irq_line.h - one interrupt line of a device: a GSI routed as an MSI, raised through an irqfd
 * (irq.c). Its own header, with no functions, so device.h can hold lines by value without
 * depending on the machine. */
#ifndef SLATE_IRQ_LINE_H
#define SLATE_IRQ_LINE_H

#include <stdatomic.h>
#include <stdint.h>

struct vm;

struct irq_line {
    struct vm *vm;
    unsigned gsi;
    int fd;                  /* the irqfd's eventfd */
    _Atomic uint32_t vector; /* 0: disabled */
    _Atomic uint32_t cpu;    /* destination CPU index */
};

#endif
