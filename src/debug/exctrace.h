/* exctrace.h - --trace exc: the guest's exceptions, under KVM, at full speed. KVM reports only #DB
 * and #BP to user space, so slate puts a hardware breakpoint (the four debug registers, through
 * the guest-debug arbiter) on the handlers the guest's IDT names for up to four vectors, and logs
 * each exception as its handler is entered: vector, error code, CR2, the faulting RIP named with
 * its function and line. The IDT is re-read after exits and on a 20 ms kick (LIDT and gate writes
 * cause no exit). */
#ifndef SLATE_EXCTRACE_H
#define SLATE_EXCTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct vcpu;

#define EXC_HISTORY 64

/* One exception, as its handler was entered. */
struct exc_record {
    int64_t ns;
    uint32_t cpu;
    uint8_t vector;
    bool has_error;
    uint64_t error, cr2, rip;
};

/* Sets it up for the machine (before vm_run): its state in the debugging room, the debug and
 * vCPU hooks, the kick timer. 0 or -1 (logged). exc_trace_stop takes it down (without a tracer:
 * nothing). */
int exc_trace_start(struct vm *vm);
void exc_trace_stop(struct vm *vm);

/* On a vCPU's own thread, between exits: arms the breakpoints again if the IDT moved. */
void exc_trace_check(struct vcpu *cpu);

/* Whether --trace exc watches this machine. */
bool exc_trace_on(struct vm *vm);

/* Whether cpu took the same exception at the same place again and again (10 times or more):
 * the last one, how often it repeated, and its place named. */
bool exc_trace_fault_loop(struct vcpu *cpu, struct exc_record *last, unsigned *repeats, char *where,
                          size_t len);

/* Prints the last exceptions (oldest first) for a crash or hang report; returns how many. */
unsigned exc_trace_history(struct vm *vm, FILE *out);

/* The vector of the last exception cpu took, or -1. */
int exc_trace_last_vector(struct vm *vm, unsigned cpu);

#endif
