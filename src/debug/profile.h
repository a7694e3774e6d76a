/* profile.h - --profile PATH[,hz=N][,paused]: a sampling profiler for the guest kernel. A timer
 * kicks every vCPU out of KVM_RUN at hz; each records its CPU, RIP, CR3 and a frame-pointer
 * backtrace walked through the guest's page tables. At the end (or on the monitor's `profile
 * dump`) the samples become folded stacks (`kmain;caller;hot 70`), or a flame graph SVG when
 * PATH ends in .svg, and a table of the hottest functions on stderr. */
#ifndef SLATE_PROFILE_H
#define SLATE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct vcpu;

#define PROFILE_DEPTH 64

/* Sets the profiler up for the machine (before vm_run): its timer, SLATE_HC_PROFILE. 0 or -1. */
int profile_attach(struct vm *vm);
/* Starts or stops sampling (the monitor, the hypercall). Any thread. */
void profile_run(struct vm *vm, bool on);
/* On a vCPU's own thread after a kick: records a sample if one was asked for. */
void profile_sample(struct vcpu *cpu);
/* Writes the profile so far: folded stacks, or an SVG when `name` ends in .svg, as a new file
 * renamed into place (outfile.h): `name` in dirfd, or `name` as a path when dirfd is -1. An
 * existing file is replaced only when `replace` (-EEXIST otherwise). The top table goes to
 * `table` (may be NULL), naming the file as `shown`. 0, or -errno. */
int profile_write(struct vm *vm, int dirfd, const char *name, bool replace, const char *shown, FILE *table);
/* At the machine's end: writes --profile's PATH and the table on stderr (when `write`: not on
 * the way to a reset), and frees the samples. */
void profile_finish(struct vm *vm, bool write);

#endif
