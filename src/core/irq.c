/* irq.c - MSI routes in KVM's GSI routing table, each fed by an irqfd. */
#include "irq.h"

#include "log.h"
#include "vm.h"
#include "record.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MSI_ADDRESS_BASE 0xFEE00000u
#define MSI_DEST_SHIFT 12

static void routes_remove(struct kvm_irq_routing *routes, unsigned gsi)
{
    for (unsigned i = 0; i < routes->nr; i++) {
        if (routes->entries[i].gsi == gsi) {
            routes->entries[i] = routes->entries[--routes->nr];
            return;
        }
    }
}

int irq_line_init(struct vm *vm, struct irq_line *line)
{
    line->vm = vm;
    atomic_store(&line->vector, 0);
    atomic_store(&line->cpu, 0);
    pthread_mutex_lock(&vm->irq_lock);
    line->gsi = vm->next_gsi++;
    pthread_mutex_unlock(&vm->irq_lock);
    line->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (line->fd < 0) {
        int err = -errno;
        log_error("eventfd for an interrupt line: %s", strerror(errno));
        return err;
    }
    struct kvm_irqfd irqfd = {.fd = (uint32_t)line->fd, .gsi = line->gsi};
    if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
        int err = -errno;
        log_error("KVM_IRQFD (gsi %u): %s", line->gsi, strerror(errno));
        close(line->fd);
        line->fd = -1;
        return err;
    }
    return 0;
}

void irq_line_close(struct irq_line *line)
{
    if (line->fd < 0 || !line->vm)
        return;
    struct kvm_irqfd irqfd = {.fd = (uint32_t)line->fd, .gsi = line->gsi,
                              .flags = KVM_IRQFD_FLAG_DEASSIGN};
    ioctl(line->vm->vm_fd, KVM_IRQFD, &irqfd); /* the VM is going away; nothing to do on error */
    close(line->fd);
    line->fd = -1;
}

int irq_line_configure(struct irq_line *line, uint32_t vector, uint32_t cpu)
{
    struct vm *vm = line->vm;
    int rc = 0;
    pthread_mutex_lock(&vm->irq_lock);
    if (atomic_load(&line->vector) == vector && atomic_load(&line->cpu) == cpu) {
        pthread_mutex_unlock(&vm->irq_lock); /* unchanged: KVM's table is already right */
        return rc;
    }
    struct kvm_irq_routing *routes = vm->routes;
    routes_remove(routes, line->gsi);
    if (vector) {
        /* Fixed delivery, edge-triggered, physical destination = the CPU's APIC ID (= index). */
        routes->entries[routes->nr++] = (struct kvm_irq_routing_entry){
            .gsi = line->gsi,
            .type = KVM_IRQ_ROUTING_MSI,
            .u.msi = {.address_lo = MSI_ADDRESS_BASE | ((cpu & 0xFF) << MSI_DEST_SHIFT),
                      .address_hi = vm->x2apic_ids ? cpu & 0xFFFFFF00 : 0,
                      .data = vector},
        };
    }
    atomic_fetch_add(&vm->routing_updates, 1);
    if (ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, routes) < 0) {
        log_warn("KVM_SET_GSI_ROUTING: %s", strerror(errno));
        rc = -errno;
    }
    atomic_store(&line->vector, vector);
    atomic_store(&line->cpu, cpu);
    pthread_mutex_unlock(&vm->irq_lock);
    return rc;
}

void irq_line_raise(struct irq_line *line)
{
    if (line->fd < 0 || atomic_load(&line->vector) == 0)
        return;
    if (line->vm->record && record_raise(line))
        return; /* --record: it enters at the vCPU's next stop; --replay: the log has it */
    flight_record(&line->vm->flight, FLIGHT_IRQ, atomic_load(&line->cpu), atomic_load(&line->vector),
                  line->gsi, 0);
    if (line->vm->trace & TRACE_IRQ)
        trace_event(line->vm, NULL, "irq: gsi %u, vector %u to cpu %u", line->gsi,
                    atomic_load(&line->vector), atomic_load(&line->cpu));
    uint64_t one = 1;
    ssize_t n = write(line->fd, &one, sizeof(one));
    (void)n; /* EAGAIN: the counter is saturated, so the interrupt is pending anyway */
}
