/* disasm.c - see disasm.h. */
#include "disasm.h"

#include <capstone/capstone.h>
#include <stdio.h>
#include <string.h>

static void name_reg(csh cs, unsigned reg, char *out, size_t outlen)
{
    const char *name = reg != X86_REG_INVALID ? cs_reg_name(cs, reg) : NULL;
    snprintf(out, outlen, "%s", name ? name : "");
}

static void memory_operands(csh cs, const cs_insn *insn, struct disasm_insn *out)
{
    const cs_x86 *x86 = &insn->detail->x86;
    for (uint8_t i = 0; i < x86->op_count && out->mem_count < 2; i++) {
        const cs_x86_op *op = &x86->operands[i];
        if (op->type != X86_OP_MEM || !strcmp(insn->mnemonic, "lea") || !strcmp(insn->mnemonic, "nop"))
            continue; /* (lea and nop compute an address but touch no memory) */
        struct disasm_mem *m = &out->mem[out->mem_count++];
        name_reg(cs, op->mem.segment, m->segment, sizeof(m->segment));
        name_reg(cs, op->mem.base, m->base, sizeof(m->base));
        name_reg(cs, op->mem.index, m->index, sizeof(m->index));
        m->scale = op->mem.scale;
        m->disp = op->mem.disp;
        m->size = op->size;
        m->read = (op->access & CS_AC_READ) != 0;
        m->write = (op->access & CS_AC_WRITE) != 0;
    }
}

static size_t disasm_decode(const uint8_t *code, size_t len, uint64_t address, unsigned bits,
                            struct disasm_insn *out, size_t max)
{
    csh cs;
    cs_mode mode = bits == 64 ? CS_MODE_64 : bits == 32 ? CS_MODE_32 : CS_MODE_16;
    if (cs_open(CS_ARCH_X86, mode, &cs) != CS_ERR_OK)
        return 0;
    cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
    cs_insn *insn;
    size_t count = cs_disasm(cs, code, len, address, max, &insn);
    for (size_t i = 0; i < count; i++) {
        out[i] = (struct disasm_insn){.address = insn[i].address, .size = insn[i].size};
        memcpy(out[i].bytes, insn[i].bytes, insn[i].size < 16 ? insn[i].size : 16);
        snprintf(out[i].mnemonic, sizeof(out[i].mnemonic), "%s", insn[i].mnemonic);
        snprintf(out[i].operands, sizeof(out[i].operands), "%s", insn[i].op_str);
        if (insn[i].detail)
            memory_operands(cs, &insn[i], &out[i]);
    }
    if (count)
        cs_free(insn, count);
    cs_close(&cs);
    return count;
}

const struct disasm_module slate_disasm_module = {.decode = disasm_decode};
