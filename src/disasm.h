/* disasm.h - x86 disassembly with capstone, in a module (slate-disasm.so, module.h): only a crash
 * report and the monitor's `x/i` and `step` load it. */
#ifndef SLATE_DISASM_H
#define SLATE_DISASM_H

#include <stddef.h>
#include <stdint.h>

struct disasm_insn {
    uint64_t address;
    uint16_t size;
    uint8_t bytes[16];
    char mnemonic[32];
    char operands[160];
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
