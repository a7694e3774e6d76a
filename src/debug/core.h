/* core.h - an ELF core file of the guest that stock gdb opens (`gdb KERNEL CORE`): every CPU's
 * registers as a thread, guest RAM at its physical addresses and, when the CPU pages, again at
 * the virtual addresses CPU 0's page tables give it. */
#ifndef SLATE_CORE_H
#define SLATE_CORE_H

#include <stdbool.h>

struct vm;

/* Writes the core as file `name` in directory dirfd, or at path `name` when dirfd is -1 (a new
 * file renamed into place, outfile.h; an existing file is replaced only when `replace`). The vCPUs must be stopped or held. 0 or
 * -errno (-EEXIST: the file exists). Pages of zeros are left as holes. */
int core_dump_at(struct vm *vm, int dirfd, const char *name, bool replace);

/* The same at a path (replacing it); logs a failure. 0 or -errno. */
int core_dump(struct vm *vm, const char *path);

#endif
