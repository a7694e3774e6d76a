/* symbols.h - names for guest code addresses, from the kernel ELF's symbols and DWARF line table
 * (elfutils libdwfl, in the symbols module: symbols_dw.c). Loaded only when something needs it: a
 * crash or hang report, the monitor, a trace or a profile. */
#ifndef SLATE_SYMBOLS_H
#define SLATE_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct symbols;

/* NULL when the file is not an ELF (a flat binary) or has no symbols. */
struct symbols *symbols_open(const char *path);
void symbols_close(struct symbols *syms);

struct symbol_info {
    const char *function; /* NULL when unknown */
    uint64_t function_start;
    uint64_t offset;      /* addr - function start */
    const char *file;     /* NULL without DWARF line information */
    int line;
};

/* Looks up addr; returns false when no function contains it. Strings live as long as syms. */
bool symbols_lookup(struct symbols *syms, uint64_t addr, struct symbol_info *out);

/* The address of the function or object called `name`; false when there is none. */
bool symbols_find(struct symbols *syms, const char *name, uint64_t *addr);

/* A CPU's call stack, unwound with the kernel's call frame information (.eh_frame or
 * .debug_frame) where it has it, and with frame pointers where it has not (libdw's unwinder). */
#define SYMBOLS_UNWIND_REGS 17 /* DWARF's x86-64 order: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip */
struct symbols_stack {
    const uint64_t *regs;                                       /* SYMBOLS_UNWIND_REGS of them */
    bool (*read)(void *ctx, uint64_t addr, uint64_t *value);   /* 8 bytes of guest memory */
    void *ctx;
};
/* Fills pcs with up to max frames, innermost first: the CPU's RIP, then each return address;
 * activation[i] is true where pcs[i] is where the CPU is (or was interrupted), false for a return
 * address. Returns the count; 0 without symbols. */
unsigned symbols_unwind(struct symbols *syms, const struct symbols_stack *stack, uint64_t *pcs,
                        bool *activation, unsigned max);

/* Where, by the kernel's call frame information, code at pc finds its return address when it has
 * set up no frame (a leaf without a frame pointer): at RSP + the returned offset - 8. -1 when
 * its frame is based on RBP, or when there is no call frame information for pc. */
int symbols_cfa_sp_offset(struct symbols *syms, uint64_t pc);

/* "func+0x12 (file.c:34)", "func+0x12", or "" into buf. */
const char *symbols_describe(struct symbols *syms, uint64_t addr, char *buf, size_t len);
/* The same for a return address: the function and line are those of the call (addr - 1), so a
 * caller's line is the call and not the line after it; the offset is addr's. */
const char *symbols_describe_return(struct symbols *syms, uint64_t addr, char *buf, size_t len);

/* The module's table (symbols_dw.c): libdw is loaded only by a run that names an address. */
struct symbols_module {
    void *(*open)(const char *path); /* NULL: not an ELF, or no symbols */
    void (*close)(void *handle);
    bool (*lookup)(void *handle, uint64_t addr, struct symbol_info *out);
    bool (*find)(void *handle, const char *name, uint64_t *addr);
    unsigned (*unwind)(void *handle, const struct symbols_stack *stack, uint64_t *pcs, bool *activation,
                       unsigned max);
    int (*cfa_sp_offset)(void *handle, uint64_t pc);
};
extern const struct symbols_module slate_symbols_module __attribute__((weak));

#endif
