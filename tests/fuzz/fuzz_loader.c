/* libFuzzer harness: the kernel loader (ELF and flat, Multiboot 1 and 2, Limine) against arbitrary files, into 16 MiB of
 * guest RAM. Every field read from the file must be checked before use. */
#include "limine.h"
#include "loader.h"
#include "memory.h"
#include "multiboot.h"

#include <string.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct guest_memory mem;
    static int mapped;
    if (!mapped) {
        memory_layout(&mem, 16ULL << 20);
        if (memory_map(&mem))
            abort();
        mapped = 1;
    }
    struct boot_plan plan = {0};
    char err[256];
    /* The last byte picks --entry and --boot (detection included), so every protocol's parser
     * sees every input. */
    struct slate_config cfg = {.smp = 2, .kernel = "fuzz.elf"};
    if (size) {
        cfg.entry = (enum entry_mode)(data[size - 1] % 4);
        cfg.boot = (enum boot_protocol)((data[size - 1] >> 2) % 5);
        if (cfg.boot != BOOT_NATIVE && cfg.boot != BOOT_DETECT)
            cfg.entry = ENTRY_DEFAULT;
    }
    if (loader_load_kernel(&mem, &cfg, "fuzz.elf", data, size, &plan, err, sizeof(err)) ||
        loader_check_boot_stack(&mem, &plan, err, sizeof(err)))
        return 0;
    if (plan.protocol == BOOT_MULTIBOOT2 || plan.protocol == BOOT_MULTIBOOT)
        multiboot_finish(&mem, &cfg, &plan, err, sizeof(err));
    else if (plan.protocol == BOOT_LIMINE)
        limine_finish(&mem, &cfg, &plan, err, sizeof(err));
    return 0;
}
