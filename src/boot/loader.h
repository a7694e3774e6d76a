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

/* A range of RAM slate wrote for the boot protocol: Multiboot information, Limine responses,
 * page tables and stacks. Allocations avoid these, the images and the boot stack. */
struct boot_range {
    uint64_t base, size;
};
#define BOOT_DATA_MAX 16

/* The framebuffer a protocol kernel gets when it asks for one without a size (Multiboot) or
 * cannot give one (Limine). */
#define BOOT_FB_DEFAULT_W 1024
#define BOOT_FB_DEFAULT_H 768

/* The display's largest mode (display.h), to which a protocol kernel's request is clamped. */
#define DISPLAY_MAX_W 1920
#define DISPLAY_MAX_H 1080

/* What the screen shows when the kernel starts (the display device reads it at setup). */
struct boot_screen {
    uint32_t width, height; /* graphics mode at these sizes; 0: text mode */
    bool vga_text;          /* text mode shows the VGA buffer at 0xB8000 (protocol boots) */
};

/* A Limine kernel's loadable segment: mapped at vaddr with these ELF flags (PF_X, PF_W). */
struct boot_segment {
    uint64_t vaddr, size;
    uint32_t flags;
};
#define BOOT_SEGMENTS_MAX 16

/* The long-mode state a Limine kernel starts in (every CPU shares it). */
struct boot_paging {
    /* The kernel: loaded at kernel_phys, linked at kernel_virt (one offset), kernel_size bytes;
     * its file is also in RAM at file_gpa (the executable-file response). */
    uint64_t kernel_phys, kernel_virt, kernel_size, file_gpa, file_size;
    struct boot_segment segments[BOOT_SEGMENTS_MAX];
    unsigned segment_count;
    uint64_t cr3;
    uint64_t gdt_base; /* a linear (HHDM) address */
    uint16_t gdt_limit;
    uint16_t code_sel, data_sel;
    /* Application processors start at ap_rip (the parking stub) with RDI = ap_info + i * stride
     * for AP i (1-based CPU index i, so the BSP's slot is ap_info itself); 0: APs wait for INIT/SIPI. */
    uint64_t ap_rip, ap_info, ap_info_stride;
};

struct boot_plan {
    enum boot_protocol protocol; /* never BOOT_DETECT once the kernel is loaded */
    enum entry_mode entry; /* never ENTRY_DEFAULT once the kernel is loaded */
    uint64_t entry_point;  /* the initial RIP/EIP: guest-physical (identity-mapped), or for Limine
                            * a virtual address in the kernel's own mapping */
    struct loaded_image images[1 + MAX_LOADS];
    unsigned image_count;
    struct boot_range data[BOOT_DATA_MAX];
    unsigned data_count;
    uint64_t rax, rbx; /* the boot CPU's EAX/EBX (Multiboot's magic and information) */
    uint64_t rsp;      /* 0: slate's boot stack with its call frame */
    struct boot_screen screen;
    struct boot_paging paging; /* Limine only (cr3 != 0) */
};

/* Loads a kernel image held in memory with cfg's --entry and --boot (either may ask to detect).
 * Returns 0, or -1 with a message in err (without the file name). */
int loader_load_kernel(struct guest_memory *mem, const struct slate_config *cfg, const char *name,
                       const void *data, size_t size, struct boot_plan *plan, char *err,
                       size_t errlen);

/* Loads an ELF32/ELF64 kernel's segments at their physical addresses; the entry mode is
 * `requested`, or by default protected for ELF32 and long for ELF64. */
int loader_load_elf(struct guest_memory *mem, const char *name, const uint8_t *data, size_t size,
                    enum entry_mode requested, struct boot_plan *plan, char *err, size_t errlen);

/* Which boot protocol a kernel file asks for: a Limine request, then a Multiboot2 header, then a
 * Multiboot 1 header; BOOT_NATIVE when none. */
enum boot_protocol loader_detect_protocol(const void *data, size_t size);

/* Loads an ELF64 kernel's segments physically contiguous from phys_base, each at phys_base plus
 * its distance from the lowest virtual address (Limine's placement). Sets *virt_base, *image_size
 * and *entry (the ELF entry, virtual), and records the segments in plan->paging. Returns 0, or -1
 * with a message in err. */
int loader_load_elf_contiguous(struct guest_memory *mem, const char *name, const uint8_t *data,
                               size_t size, uint64_t phys_base, struct boot_plan *plan,
                               uint64_t *virt_base, uint64_t *image_size, uint64_t *entry,
                               char *err, size_t errlen);

/* Copies filesz bytes of src to guest-physical addr and records an image of memsz bytes there
 * (the rest is zero: fresh RAM). Returns 0, or -1 with a message in err. */
int loader_copy_image(struct guest_memory *mem, struct boot_plan *plan, const char *name,
                      const void *src, uint64_t filesz, uint64_t addr, uint64_t memsz,
                      uint32_t flags, char *err, size_t errlen);

/* Finds size bytes of low RAM at or above floor, `align`-aligned (a power of two), clear of the
 * images, of earlier allocations, of the legacy hole [0xA0000, 0x100000) and of the boot stack,
 * and records them in plan->data. Returns 0, or -1 with a message in err. */
int loader_alloc(const struct guest_memory *mem, struct boot_plan *plan, uint64_t size,
                 uint64_t align, uint64_t floor, uint64_t *gpa, char *err, size_t errlen);

/* Whether cfg gives the machine a display, and where its window (the framebuffer) will be. */
bool loader_display_window(const struct slate_config *cfg, uint64_t *gpa);

/* The lowest page-aligned address above every image and allocation so far. */
uint64_t loader_end_of_images(const struct boot_plan *plan);

/* The physical memory map a boot protocol hands over, sorted, without overlaps. */
enum boot_mem_type {
    BOOT_MEM_USABLE,
    BOOT_MEM_RESERVED,  /* the legacy hole [0xA0000, 0x100000) and page 0 */
    BOOT_MEM_KERNEL,    /* the kernel and the modules (--load) */
    BOOT_MEM_BOOT_DATA, /* plan->data */
    BOOT_MEM_FRAMEBUFFER,
};
struct boot_mem_entry {
    uint64_t base, size;
    enum boot_mem_type type;
};
#define BOOT_MEM_MAX 96
/* Fills out[] (BOOT_MEM_MAX entries) and returns the count. With `detailed` false, the kernel,
 * modules and boot data count as usable (Multiboot's view: the kernel knows where they are).
 * A framebuffer of fb_size bytes at fb_base is listed when fb_size is not 0. */
unsigned loader_memory_map(const struct guest_memory *mem, const struct boot_plan *plan,
                           bool detailed, uint64_t fb_base, uint64_t fb_size,
                           struct boot_mem_entry *out);

/* Copies an extra image to guest-physical addr (LOAD_ADDR_AUTO: the first page-aligned address
 * above the kernel and the images before it). Returns 0, or -1 with a message in err. */
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
