/* pagewalk.c - see pagewalk.h. */
#include "pagewalk.h"

#include "x86.h"

#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_U (1ULL << 2)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR 0x000FFFFFFFFFF000ULL
#define CR4_PSE (1ULL << 4)
#define CR4_LA57 (1ULL << 12)
#define CR4_SMAP (1ULL << 21)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_VM (1ULL << 17)

/* One paging structure level: where its index sits in va, and whether a large page may end it. */
struct level {
    unsigned shift, bits;
    bool large_ok;
};

/* A walk over 8-byte entries (PAE, 4-level, 5-level) from `table` through `levels`. */
static bool walk8(const struct pagewalk_memory *mem, uint64_t table, uint64_t va, const struct level *levels,
                  unsigned count, bool nx_on, struct page_rights *out)
{
    for (unsigned i = 0; i < count; i++) {
        const struct level *l = &levels[i];
        uint64_t e;
        uint64_t index = (va >> l->shift) & ((1ULL << l->bits) - 1);
        if (!mem->read(mem->ctx, table + index * 8, &e, 8) || !(e & PTE_P))
            return false;
        out->writable &= (e & PTE_W) != 0;
        out->user &= (e & PTE_U) != 0;
        out->executable &= !(nx_on && (e & PTE_NX));
        bool last = i == count - 1 || (l->large_ok && (e & PTE_PS));
        if (last) {
            out->page_size = 1ULL << l->shift;
            out->pa = ((e & PTE_ADDR) & ~(out->page_size - 1)) | (va & (out->page_size - 1));
            return true;
        }
        table = e & PTE_ADDR;
    }
    return false;
}

/* 32-bit paging: two levels of 4-byte entries, 4 MiB pages under CR4.PSE. */
static bool walk32(const struct pagewalk_memory *mem, const struct kvm_sregs *s, uint32_t va,
                   struct page_rights *out)
{
    uint32_t pde, pte;
    if (!mem->read(mem->ctx, (s->cr3 & 0xFFFFF000u) + (va >> 22) * 4, &pde, 4) || !(pde & PTE_P))
        return false;
    out->writable = pde & PTE_W, out->user = pde & PTE_U;
    if ((pde & PTE_PS) && (s->cr4 & CR4_PSE)) {
        out->page_size = 4u << 20;
        out->pa = (pde & 0xFFC00000u) | (va & 0x3FFFFFu);
        return true;
    }
    if (!mem->read(mem->ctx, (pde & 0xFFFFF000u) + ((va >> 12) & 1023) * 4, &pte, 4) || !(pte & PTE_P))
        return false;
    out->writable &= (pte & PTE_W) != 0, out->user &= (pte & PTE_U) != 0;
    out->page_size = 4096;
    out->pa = (pte & 0xFFFFF000u) | (va & 0xFFF);
    return true;
}

/* PAE: four PDPTEs (which carry no rights), then a page directory and a page table. */
static bool walk_pae(const struct pagewalk_memory *mem, const struct kvm_sregs *s, uint32_t va, bool nx_on,
                     struct page_rights *out)
{
    static const struct level rest[] = {{21, 9, true}, {12, 9, false}};
    uint64_t pdpte;
    if (!mem->read(mem->ctx, (s->cr3 & 0xFFFFFFE0u) + (va >> 30) * 8, &pdpte, 8) || !(pdpte & PTE_P))
        return false;
    return walk8(mem, pdpte & PTE_ADDR, va, rest, 2, nx_on, out);
}

bool pagewalk(const struct pagewalk_memory *mem, const struct kvm_sregs *s, uint64_t va,
              struct page_rights *out)
{
    *out = (struct page_rights){.pa = va, .page_size = 0, .writable = true, .user = true, .executable = true};
    bool nx_on = s->efer & X86_EFER_NXE;
    if (!(s->cr0 & X86_CR0_PG)) {
        out->pa = s->efer & X86_EFER_LMA ? va : va & 0xFFFFFFFFu;
        return true;
    }
    if (s->efer & X86_EFER_LMA) {
        static const struct level five[] = {{48, 9, false}, {39, 9, false}, {30, 9, true}, {21, 9, true},
                                            {12, 9, false}};
        bool la57 = s->cr4 & CR4_LA57;
        unsigned bits = la57 ? 57 : 48;
        int64_t sign = (int64_t)(va << (64 - bits)) >> (64 - bits);
        if ((uint64_t)sign != va)
            return false; /* not canonical */
        return walk8(mem, s->cr3 & PTE_ADDR, va, la57 ? five : five + 1, la57 ? 5 : 4, nx_on, out);
    }
    if (s->cr4 & X86_CR4_PAE)
        return walk_pae(mem, s, (uint32_t)va, nx_on, out);
    return walk32(mem, s, (uint32_t)va, out);
}

unsigned pagewalk_cpl(const struct kvm_sregs *s, uint64_t rflags)
{
    if (!(s->cr0 & X86_CR0_PE))
        return 0;
    if (rflags & RFLAGS_VM)
        return 3;
    return s->ss.dpl & 3;
}

bool pagewalk_allows(const struct page_rights *p, const struct kvm_sregs *s, uint64_t rflags,
                     unsigned cpl, bool write)
{
    if (!(s->cr0 & X86_CR0_PG))
        return true;
    if (cpl == 3)
        return p->user && (!write || p->writable);
    if (write && !p->writable && (s->cr0 & X86_CR0_WP))
        return false;
    return !(p->user && (s->cr4 & CR4_SMAP) && !(rflags & RFLAGS_AC));
}
