/* entry.h - the CPUs' state at the first instruction (entry.c): the boot CPU in the entry mode
 * the boot plan chose (real, protected, long; or a Limine kernel's, every CPU), the others
 * waiting for INIT/SIPI as KVM leaves them. */
#ifndef SLATE_ENTRY_H
#define SLATE_ENTRY_H

struct vm;

/* Writes the boot tables and puts the entry state into the vCPUs. Logs one line and returns -1
 * when KVM refuses. */
int entry_set_state(struct vm *vm);

#endif
