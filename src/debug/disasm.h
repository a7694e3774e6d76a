/* disasm.h - x86 disassembly with capstone, in a module (slate-disasm.so, module.h): only a crash
 * report and the monitor's `x/i` and `step` load it. */
#ifndef SLATE_DISASM_H
#define SLATE_DISASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A memory operand: segment:[base + index * scale + disp], registers named as in assembly
 * ("rax", "r8d", "eip"; "" when absent). */
struct disasm_mem {
    char segment[4], base[8], index[8];
    int scale;
    int64_t disp;
    uint8_t size; /* bytes */
    bool read, write;
};

struct disasm_insn {
    uint64_t address;
    uint16_t size;
    uint8_t bytes[16];
    char mnemonic[32];
    char operands[160];
    uint8_t mem_count;        /* explicit memory operands (not a push's or call's stack) */
    struct disasm_mem mem[2];
};

struct disasm_module {
    /* Decodes up to `max` instructions of `code` (len bytes at guest address `address`) for a CPU
     * in `bits`-bit mode (16, 32 or 64), stopping at the first byte that is not an instruction.
     * Returns how many it decoded. */
    size_t (*decode)(const uint8_t *code, size_t len, uint64_t address, unsigned bits,
                     struct disasm_insn *out, size_t max);
};
extern const struct disasm_module slate_disasm_module __attribute__((weak));

#endif
