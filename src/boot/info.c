/* info.c - lays out the info block: header, then RAM, CPU, command line, image, device tables. */
#include "info.h"

#include <string.h>

/* Reserves an aligned table of n entries after *used; returns its offset or -1. */
static long info_reserve(size_t *used, size_t cap, size_t n, size_t entry_size)
{
    size_t offset = (*used + 7) & ~(size_t)7;
    if (n > (cap - offset) / (entry_size ? entry_size : 1) || offset > cap)
        return -1;
    *used = offset + n * entry_size;
    return (long)offset;
}

static void info_fill_ram(uint8_t *base, struct slate_info *info, const struct guest_memory *mem)
{
    struct slate_ram_region *ram = (struct slate_ram_region *)(base + info->ram_offset);
    for (unsigned i = 0; i < mem->ram_count; i++)
        ram[i] = (struct slate_ram_region){
            .base = mem->ram[i].gpa, .size = mem->ram[i].size, .type = SLATE_RAM_USABLE};
}

static void info_fill_cpus(uint8_t *base, const struct slate_info *info)
{
    struct slate_cpu *cpu = (struct slate_cpu *)(base + info->cpu_offset);
    for (uint32_t i = 0; i < info->cpu_count; i++)
        cpu[i] = (struct slate_cpu){.index = i, .apic_id = i};
}

static void info_fill_images(uint8_t *base, const struct slate_info *info,
                             const struct boot_plan *plan)
{
    struct slate_image *img = (struct slate_image *)(base + info->image_offset);
    for (unsigned i = 0; i < plan->image_count; i++) {
        img[i] = (struct slate_image){.base = plan->images[i].base,
                                      .size = plan->images[i].size,
                                      .flags = plan->images[i].flags};
        memcpy(img[i].name, plan->images[i].name, sizeof(img[i].name));
        img[i].name[sizeof(img[i].name) - 1] = '\0';
    }
}

long info_build(void *buf, size_t cap, const struct info_input *in)
{
    uint8_t *base = buf;
    if (cap < sizeof(struct slate_info))
        return -1;
    memset(buf, 0, cap);
    struct slate_info *info = buf;
    size_t used = sizeof(*info);
    const char *cmdline = in->cmdline ? in->cmdline : "";
    size_t cmdline_size = strlen(cmdline) + 1;
    long ram = info_reserve(&used, cap, in->mem->ram_count, sizeof(struct slate_ram_region));
    long cpu = info_reserve(&used, cap, in->cpu_count, sizeof(struct slate_cpu));
    long image = info_reserve(&used, cap, in->plan->image_count, sizeof(struct slate_image));
    long device = info_reserve(&used, cap, in->device_count, sizeof(struct slate_device));
    long text = info_reserve(&used, cap, cmdline_size, 1);
    if (ram < 0 || cpu < 0 || image < 0 || device < 0 || text < 0)
        return -1;

    memcpy(info->magic, SLATE_INFO_MAGIC, sizeof(info->magic));
    info->version = SLATE_INFO_VERSION;
    info->total_size = (uint32_t)used;
    info->header_size = sizeof(*info);
    info->cpu_count = in->cpu_count;
    info->tsc_khz = in->tsc_khz;
    info->boot_tsc = in->boot_tsc;
    info->boot_unix_ns = in->boot_unix_ns;
    info->ram_total = in->mem->ram_total;
    info->boot_stack_top = in->boot_stack_top;
    info->ram_offset = (uint32_t)ram;
    info->ram_count = in->mem->ram_count;
    info->ram_entry_size = sizeof(struct slate_ram_region);
    info->cpu_offset = (uint32_t)cpu;
    info->cpu_entry_size = sizeof(struct slate_cpu);
    info->cmdline_offset = (uint32_t)text;
    info->cmdline_size = (uint32_t)cmdline_size;
    info->image_offset = (uint32_t)image;
    info->image_count = in->plan->image_count;
    info->image_entry_size = sizeof(struct slate_image);
    info->device_offset = (uint32_t)device;
    info->device_count = in->device_count;
    info->device_entry_size = sizeof(struct slate_device);

    info_fill_ram(base, info, in->mem);
    info_fill_cpus(base, info);
    info_fill_images(base, info, in->plan);
    if (in->device_count)
        memcpy(base + device, in->devices, in->device_count * sizeof(struct slate_device));
    memcpy(base + text, cmdline, cmdline_size);
    return (long)used;
}
