/* multiboot.h - booting Multiboot 1 and Multiboot2 kernels (multiboot.c), as GRUB does: the
 * header found in the first 8 KiB (Multiboot) or 32 KiB (Multiboot2), the kernel loaded from its
 * ELF segments or the header's address fields, the boot information written to low RAM and the
 * CPU started in 32-bit protected mode with EAX = the magic and EBX = the information. Pure with
 * respect to KVM, like the rest of the loader. */
#ifndef SLATE_MULTIBOOT_H
#define SLATE_MULTIBOOT_H

#include "loader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MB1_HEADER_MAGIC 0x1BADB002u
#define MB1_BOOT_MAGIC 0x2BADB002u /* EAX at entry */
#define MB2_HEADER_MAGIC 0xE85250D6u
#define MB2_BOOT_MAGIC 0x36D76289u /* EAX at entry */

/* Where a valid header (magic and checksum) starts in the file: Multiboot2 (v2) searches the first
 * 32 KiB at 8-byte steps, Multiboot the first 8 KiB at 4-byte steps. */
bool multiboot_find_header(const uint8_t *data, size_t size, bool v2, size_t *offset);

/* Loads the kernel as the header asks and notes what the header requests (a framebuffer) in
 * plan. Returns 0, or -1 with a message in err. */
int multiboot_load(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                   bool v2, struct boot_plan *plan, char *err, size_t errlen);

/* After the modules (--load): writes the boot information and sets the entry registers. */
int multiboot_finish(struct guest_memory *mem, const struct slate_config *cfg,
                     struct boot_plan *plan, char *err, size_t errlen);

#endif
