/* disasm.c - see disasm.h. */
#include "disasm.h"

#include <capstone/capstone.h>
#include <stdio.h>
#include <string.h>

static size_t disasm_decode(const uint8_t *code, size_t len, uint64_t address, unsigned bits,
                            struct disasm_insn *out, size_t max)
{
    csh cs;
    cs_mode mode = bits == 64 ? CS_MODE_64 : bits == 32 ? CS_MODE_32 : CS_MODE_16;
    if (cs_open(CS_ARCH_X86, mode, &cs) != CS_ERR_OK)
        return 0;
    cs_insn *insn;
    size_t count = cs_disasm(cs, code, len, address, max, &insn);
    for (size_t i = 0; i < count; i++) {
        out[i] = (struct disasm_insn){.address = insn[i].address, .size = insn[i].size};
        memcpy(out[i].bytes, insn[i].bytes, insn[i].size < 16 ? insn[i].size : 16);
        snprintf(out[i].mnemonic, sizeof(out[i].mnemonic), "%s", insn[i].mnemonic);
        snprintf(out[i].operands, sizeof(out[i].operands), "%s", insn[i].op_str);
    }
    if (count)
        cs_free(insn, count);
    cs_close(&cs);
    return count;
}

const struct disasm_module slate_disasm_module = {.decode = disasm_decode};
