/* memory.c - guest RAM layout and checked guest-physical to host translation. */
#include "memory.h"

#include "slate/slate.h"

#include <errno.h>
#include <sys/mman.h>

void memory_layout(struct guest_memory *mem, uint64_t ram_size)
{
    *mem = (struct guest_memory){0};
    uint64_t low = ram_size < SLATE_LOW_RAM_MAX ? ram_size : SLATE_LOW_RAM_MAX;
    mem->ram[mem->ram_count++] = (struct mem_region){.gpa = 0, .size = low};
    if (ram_size > low)
        mem->ram[mem->ram_count++] =
            (struct mem_region){.gpa = SLATE_HIGH_RAM_BASE, .size = ram_size - low};
    mem->ram_total = ram_size;
    const struct mem_region *last = &mem->ram[mem->ram_count - 1];
    mem->map_top = last->gpa + last->size > SLATE_HOLE_END ? last->gpa + last->size : SLATE_HOLE_END;
}

int memory_map(struct guest_memory *mem)
{
    for (unsigned i = 0; i < mem->ram_count; i++) {
        /* MAP_NORESERVE: a 16 GiB guest starts as fast as a 64 MiB one and costs only what it
         * touches. */
        void *p = mmap(NULL, mem->ram[i].size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            int err = -errno;
            memory_unmap(mem);
            return err;
        }
        mem->ram[i].host = p;
    }
    return 0;
}

void memory_unmap(struct guest_memory *mem)
{
    for (unsigned i = 0; i < mem->ram_count; i++) {
        if (mem->ram[i].host)
            munmap(mem->ram[i].host, mem->ram[i].size);
        mem->ram[i].host = NULL;
    }
}

static const struct mem_region *region_in(const struct mem_region *regions, unsigned count,
                                          uint64_t gpa, uint64_t len)
{
    if (len > UINT64_MAX - gpa)
        return NULL;
    for (unsigned i = 0; i < count; i++) {
        const struct mem_region *r = &regions[i];
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r;
    }
    return NULL;
}

static const struct mem_region *region_for(const struct guest_memory *mem, uint64_t gpa,
                                           uint64_t len)
{
    return region_in(mem->ram, mem->ram_count, gpa, len);
}

int memory_add_extra(struct guest_memory *mem, uint64_t gpa, uint64_t size, void *host)
{
    if (mem->extra_count == MEM_MAX_EXTRA)
        return -1;
    mem->extra[mem->extra_count++] = (struct mem_region){.gpa = gpa, .size = size, .host = host};
    return 0;
}

const void *memory_readable_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
    const struct mem_region *r = region_for(mem, gpa, len); /* a read: not marked written */
    if (r && r->host)
        return r->host + (gpa - r->gpa);
    r = region_in(mem->extra, mem->extra_count, gpa, len);
    return r && r->host ? r->host + (gpa - r->gpa) : NULL;
}

/* [off, off+len) of RAM region r counts as written by slate, when someone tracks that. */
static void note_written(const struct guest_memory *mem, const struct mem_region *r, uint64_t off, uint64_t len)
{
    _Atomic unsigned long *dirty = mem->host_dirty[r - mem->ram];
    if (!dirty)
        return;
    const unsigned bits = 8 * sizeof(unsigned long);
    for (uint64_t p = off / 4096; p <= (off + (len ? len - 1 : 0)) / 4096; p++)
        atomic_fetch_or(&dirty[p / bits], 1UL << (p % bits));
}

void *memory_ram_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
    const struct mem_region *r = region_for(mem, gpa, len);
    if (!r || !r->host)
        return NULL;
    note_written(mem, r, gpa - r->gpa, len);
    return r->host + (gpa - r->gpa);
}

void memory_note_write(const struct guest_memory *mem, const void *host, uint64_t len)
{
    const uint8_t *p = host;
    for (unsigned i = 0; i < mem->ram_count; i++)
        if (mem->ram[i].host && p >= mem->ram[i].host && p < mem->ram[i].host + mem->ram[i].size)
            note_written(mem, &mem->ram[i], (uint64_t)(p - mem->ram[i].host), len);
}
