/* symbols_dw.c - libdwfl over the kernel ELF, reported as an offline module at its link
 * addresses: guest virtual addresses are the ELF's virtual addresses, whatever the load address.
 * A module (slate-symbols.so, module.h): a run that names no address loads no libdw. */
#include "symbols.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dw_symbols {
    Dwfl *dwfl;
    Dwfl_Module *module;
    bool attached;                      /* dwfl_attach_state done (once per Dwfl) */
    const struct symbols_stack *stack;  /* the unwind in progress */
    uint64_t *pcs;
    bool *activation;
    unsigned count, max;
    uint64_t restart[SYMBOLS_UNWIND_REGS]; /* the interrupted code's registers, to unwind on from */
    bool restarting;
};

static char *debuginfo_path = NULL;
static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

static void dw_close(void *handle);

static void *dw_open(const char *path)
{
    struct dw_symbols *syms = calloc(1, sizeof(*syms));
    if (!syms)
        return NULL;
    syms->dwfl = dwfl_begin(&offline_callbacks);
    if (syms->dwfl) {
        dwfl_report_begin(syms->dwfl);
        syms->module = dwfl_report_offline(syms->dwfl, "kernel", path, -1);
        dwfl_report_end(syms->dwfl, NULL, NULL);
    }
    if (!syms->module || dwfl_module_getsymtab(syms->module) <= 0) {
        dw_close(syms);
        return NULL;
    }
    return syms;
}

static void dw_close(void *handle)
{
    struct dw_symbols *syms = handle;
    if (!syms)
        return;
    if (syms->dwfl)
        dwfl_end(syms->dwfl);
    free(syms);
}

static bool dw_lookup(void *handle, uint64_t addr, struct symbol_info *out)
{
    struct dw_symbols *syms = handle;
    *out = (struct symbol_info){0};
    GElf_Sym sym;
    GElf_Off offset;
    const char *name = dwfl_module_addrinfo(syms->module, addr, &offset, &sym, NULL, NULL, NULL);
    if (!name || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
        return false;
    out->function = name;
    out->offset = offset;
    out->function_start = addr - offset;
    Dwfl_Line *line = dwfl_module_getsrc(syms->module, addr);
    if (line) {
        const char *file = dwfl_lineinfo(line, NULL, &out->line, NULL, NULL, NULL);
        out->file = file;
    }
    return true;
}

static bool dw_find(void *handle, const char *name, uint64_t *addr)
{
    struct dw_symbols *syms = handle;
    int n = dwfl_module_getsymtab(syms->module);
    for (int i = 0; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr value;
        const char *sname = dwfl_module_getsym_info(syms->module, i, &sym, &value, NULL, NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info);
        if (sname && (type == STT_FUNC || type == STT_OBJECT) && !strcmp(sname, name)) {
            *addr = value;
            return true;
        }
    }
    return false;
}

/* ---- unwinding: libdw's unwinder over one "thread", the CPU, with slate's registers and guest
 * memory ---------------------------------------------------------------------------------------- */

static pid_t one_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl;
    if (*thread_argp)
        return 0; /* no second thread */
    *thread_argp = arg;
    return 1;
}

static bool read_guest(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    const struct dw_symbols *syms = arg;
    uint64_t v;
    if (!syms->stack->read(syms->stack->ctx, addr, &v))
        return false;
    *result = v;
    return true;
}

static bool initial_registers(Dwfl_Thread *thread, void *arg)
{
    const struct dw_symbols *syms = arg;
    Dwarf_Word regs[SYMBOLS_UNWIND_REGS];
    for (int i = 0; i < SYMBOLS_UNWIND_REGS; i++)
        regs[i] = syms->stack->regs[i];
    if (!dwfl_thread_state_registers(thread, 0, SYMBOLS_UNWIND_REGS - 1, regs))
        return false;
    dwfl_thread_state_register_pc(thread, regs[SYMBOLS_UNWIND_REGS - 1]);
    return true;
}

static const Dwfl_Thread_Callbacks cpu_thread = {
    .next_thread = one_thread,
    .memory_read = read_guest,
    .set_initial_registers = initial_registers,
};

/* An interrupt or exception handler's call frame information ends its frame at the RIP the CPU
 * pushed, so the unwinder's next frame is the interrupted code with RSP at the CS word of the
 * interrupt frame (RIP, CS, RFLAGS, RSP, SS). Seen there, the frame is marked interrupted and
 * the unwind starts again from the interrupted code's own RSP. */
static bool interrupted(struct dw_symbols *syms, Dwfl_Frame *state, uint64_t pc)
{
    Dwarf_Word rsp;
    uint64_t cs, rflags, old_rsp;
    if (dwfl_frame_reg(state, 7, &rsp) != 0 || !syms->stack->read(syms->stack->ctx, rsp, &cs) ||
        !syms->stack->read(syms->stack->ctx, rsp + 8, &rflags) ||
        !syms->stack->read(syms->stack->ctx, rsp + 16, &old_rsp))
        return false;
    if (cs < 8 || cs >= 0x10000 || !(cs & ~7ULL) || !(rflags & 2) || (rflags >> 22))
        return false;
    for (unsigned r = 0; r < SYMBOLS_UNWIND_REGS - 1; r++) {
        Dwarf_Word v;
        syms->restart[r] = dwfl_frame_reg(state, r, &v) == 0 ? v : 0;
    }
    syms->restart[7] = old_rsp;
    syms->restart[SYMBOLS_UNWIND_REGS - 1] = pc;
    return true;
}

static int one_frame(Dwfl_Frame *state, void *arg)
{
    struct dw_symbols *syms = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(state, &pc, &activation) || syms->count == syms->max)
        return DWARF_CB_ABORT;
    if (!activation && syms->count && interrupted(syms, state, pc)) {
        syms->pcs[syms->count] = pc;
        syms->activation[syms->count++] = true;
        syms->restarting = true;
        return DWARF_CB_ABORT;
    }
    syms->pcs[syms->count] = pc;
    syms->activation[syms->count++] = activation;
    return DWARF_CB_OK;
}

static unsigned dw_unwind(void *handle, const struct symbols_stack *stack, uint64_t *pcs, bool *activation,
                          unsigned max)
{
    struct dw_symbols *syms = handle;
    if (!syms->attached) {
        Dwarf_Addr bias;
        Elf *elf = dwfl_module_getelf(syms->module, &bias);
        syms->attached = elf && dwfl_attach_state(syms->dwfl, elf, 1, &cpu_thread, syms);
        if (!syms->attached)
            return 0;
    }
    syms->pcs = pcs, syms->activation = activation;
    syms->count = 0, syms->max = max;
    struct symbols_stack from = *stack;
    for (unsigned rounds = 0; rounds < 8; rounds++) { /* once more per interrupt frame crossed */
        syms->stack = &from;
        syms->restarting = false;
        dwfl_getthread_frames(syms->dwfl, 1, one_frame, syms); /* stops where it cannot go on */
        if (!syms->restarting || syms->count == syms->max)
            break;
        /* The interrupted frame is counted: the next round starts at it again (its own frame,
         * counted once), with the interrupted code's registers. */
        syms->count--;
        from.regs = syms->restart;
    }
    syms->stack = NULL;
    return syms->count;
}

static int dw_cfa_sp_offset(void *handle, uint64_t pc)
{
    struct dw_symbols *syms = handle;
    Dwarf_Addr bias;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(syms->module, &bias);
    Dwarf_Frame *frame = NULL;
    if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0) {
        cfi = dwfl_module_dwarf_cfi(syms->module, &bias);
        if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &frame) != 0)
            return -1;
    }
    Dwarf_Op *ops;
    size_t nops;
    int offset = -1;
    /* CFA = RSP + N (RSP is DWARF register 7): DW_OP_breg7 N, or DW_OP_bregx 7 N as libdw gives it */
    if (dwarf_frame_cfa(frame, &ops, &nops) == 0 && nops == 1) {
        if (ops[0].atom == DW_OP_breg7 && ops[0].number < 4096)
            offset = (int)ops[0].number;
        else if (ops[0].atom == DW_OP_bregx && ops[0].number == 7 && ops[0].number2 < 4096)
            offset = (int)ops[0].number2;
    }
    free(frame);
    return offset;
}

const struct symbols_module slate_symbols_module = {dw_open, dw_close, dw_lookup, dw_find, dw_unwind,
                                                    dw_cfa_sp_offset};
