/* pagewalk.h - a linear address as a CPU in a given state sees it: the physical address and the
 * rights every level of the page tables grants, for each paging mode (off, 32-bit, PAE, 4-level,
 * 5-level); and whether an access is allowed as the CPU would judge it (U/S, R/W with CR0.WP,
 * SMAP with RFLAGS.AC). Pure: memory comes through a callback, so unit tests build the tables. */
#ifndef SLATE_PAGEWALK_H
#define SLATE_PAGEWALK_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest-physical memory: copies len bytes at gpa into buf; false if any of it is not memory. */
struct pagewalk_memory {
    bool (*read)(void *ctx, uint64_t gpa, void *buf, size_t len);
    void *ctx;
};

struct page_rights {
    uint64_t pa;                     /* the physical address of the byte at va */
    uint64_t page_size;              /* 4 KiB, 2 or 4 MiB, 1 GiB; the whole space with paging off */
    bool writable, user, executable; /* granted by every level */
};

/* Walks va's translation. False when a level is not present, a table is not memory, or va is
 * not canonical (long mode). */
bool pagewalk(const struct pagewalk_memory *mem, const struct kvm_sregs *s, uint64_t va,
              struct page_rights *out);

/* The privilege a CPU in state s (with rflags) accesses memory with: 3 in user mode (CPL 3, or
 * virtual-8086 mode), else the CPL. */
unsigned pagewalk_cpl(const struct kvm_sregs *s, uint64_t rflags);

/* Whether a data access at privilege `cpl` (a write when `write`) to a page with rights p is
 * allowed: CPL 3 needs a user page (and a writable one to write); a supervisor write to a
 * read-only page needs CR0.WP clear; a supervisor access to a user page faults under CR4.SMAP
 * unless RFLAGS.AC is set. Paging off allows everything. */
bool pagewalk_allows(const struct page_rights *p, const struct kvm_sregs *s, uint64_t rflags,
                     unsigned cpl, bool write);

#endif
