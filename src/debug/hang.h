/* hang.h - the hang report: what every CPU is doing and why it may not be getting anywhere. */
#ifndef SLATE_HANG_H
#define SLATE_HANG_H

#include <stdio.h>

struct vm;

/* Holds the machine for a moment and writes, per CPU: running or halted, IF, mode, RIP with
 * function:line, a frame-pointer backtrace, the local APIC's TPR, ISR, IRR and timer, and the
 * diagnoses that apply (hlt with interrupts off, an interrupt never EOI'd, nothing that can wake
 * it); then where each CPU spent the next half second (RIP sampled). `why` heads it ("--timeout
 * expired"). From any thread but a vCPU's, while the machine runs. */
void hang_report(struct vm *vm, FILE *out, const char *why);

#endif
