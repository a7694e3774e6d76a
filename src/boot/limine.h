/* limine.h - booting kernels written for the Limine boot protocol (limine.c): the kernel loaded
 * physically contiguous and mapped at its higher-half addresses, the requests found in its image
 * and answered, page tables with the higher-half direct map, every CPU in 64-bit mode. Pure with
 * respect to KVM, like the rest of the loader. */
#ifndef SLATE_LIMINE_H
#define SLATE_LIMINE_H

#include "loader.h"

#define LIMINE_COMMON_MAGIC_0 0xc7b1dd30df4c8b88ULL
#define LIMINE_COMMON_MAGIC_1 0x0a82e883a194f07bULL
#define LIMINE_BASE_REVISION_MAGIC_0 0xf9562b2d5c95a6c8ULL
#define LIMINE_BASE_REVISION_MAGIC_1 0x6a7b384944536bdcULL
#define LIMINE_HHDM_OFFSET 0xffff800000000000ULL /* 4-level paging's higher half */
#define LIMINE_MAX_BASE_REVISION 6

/* Loads an ELF64 Limine kernel at 1 MiB and up. Returns 0, or -1 with a message in err. */
int limine_load(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                struct boot_plan *plan, char *err, size_t errlen);

/* After the modules: answers the kernel's requests and builds the page tables, GDT, stacks and
 * the parking place of the other CPUs; sets plan->paging and the entry. */
int limine_finish(struct guest_memory *mem, const struct slate_config *cfg, struct boot_plan *plan,
                  char *err, size_t errlen);

#endif
