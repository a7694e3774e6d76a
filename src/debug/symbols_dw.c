/* symbols_dw.c - libdwfl over the kernel ELF, reported as an offline module at its link
 * addresses: guest virtual addresses are the ELF's virtual addresses, whatever the load address.
 * A module (slate-symbols.so, module.h): a run that names no address loads no libdw. */
#include "symbols.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dw_symbols {
    Dwfl *dwfl;
    Dwfl_Module *module;
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

const struct symbols_module slate_symbols_module = {dw_open, dw_close, dw_lookup, dw_find};
