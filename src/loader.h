/* loader.h - puts the kernel (flat or ELF) and extra images into guest RAM, validating every
 * field read from the files. Pure with respect to KVM, so unit tests drive it on plain memory. */
#ifndef SLATE_LOADER_H
#define SLATE_LOADER_H

#include "memory.h"
#include "options.h"
#include "slate/slate.h"

struct loaded_image {
    uint64_t base;
    uint64_t size;
    uint32_t flags; /* SLATE_IMAGE_* */
    char name[SLATE_NAME_MAX];
};

struct boot_plan {
    enum entry_mode entry; /* never ENTRY_DEFAULT once the kernel is loaded */
    uint64_t entry_point;  /* guest-physical; also the initial RIP/EIP (identity-mapped) */
    struct loaded_image images[1 + MAX_LOADS];
    unsigned image_count;
};

/* Loads a kernel image held in memory. `requested` may be ENTRY_DEFAULT. Returns 0, or -1 with a
 * message in err (without the file name). */
int loader_load_kernel(struct guest_memory *mem, const char *name, const void *data, size_t size,
                       enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen);

/* Copies an extra image to guest-physical addr. Returns 0, or -1 with a message in err. */
int loader_load_raw(struct guest_memory *mem, const char *name, const void *data, size_t size,
                    uint64_t addr, struct boot_plan *plan, char *err, size_t errlen);

/* Checks that no image overlaps the boot stack (protected and long entry use it). */
int loader_check_boot_stack(const struct guest_memory *mem, const struct boot_plan *plan,
                            char *err, size_t errlen);

/* The boot stack's top: the end of low RAM, 16-byte aligned. */
uint64_t loader_boot_stack_top(const struct guest_memory *mem);

/* Reads the files named in cfg and loads them all. Returns 0, or -1 with "PATH: message" in err. */
int loader_load_all(struct guest_memory *mem, const struct slate_config *cfg,
                    struct boot_plan *plan, char *err, size_t errlen);

#endif
