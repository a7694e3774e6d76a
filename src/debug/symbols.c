/* symbols.c - see symbols.h: the symbols module (libdw), loaded on the first lookup's behalf. */
#include "symbols.h"

#include "module.h"

#include <stdio.h>
#include <stdlib.h>

struct symbols {
    const struct symbols_module *module;
    void *handle;
};

struct symbols *symbols_open(const char *path)
{
    if (!path)
        return NULL;
    const struct symbols_module *m =
        module_load("symbols", "slate_symbols_module", &slate_symbols_module, "function names");
    void *handle = m ? m->open(path) : NULL;
    struct symbols *syms = handle ? malloc(sizeof(*syms)) : NULL;
    if (!syms) {
        if (handle)
            m->close(handle);
        return NULL;
    }
    *syms = (struct symbols){m, handle};
    return syms;
}

void symbols_close(struct symbols *syms)
{
    if (!syms)
        return;
    syms->module->close(syms->handle);
    free(syms);
}

bool symbols_lookup(struct symbols *syms, uint64_t addr, struct symbol_info *out)
{
    *out = (struct symbol_info){0};
    return syms && syms->module->lookup(syms->handle, addr, out);
}

bool symbols_find(struct symbols *syms, const char *name, uint64_t *addr)
{
    return syms && syms->module->find(syms->handle, name, addr);
}

int symbols_cfa_sp_offset(struct symbols *syms, uint64_t pc)
{
    return syms ? syms->module->cfa_sp_offset(syms->handle, pc) : -1;
}

unsigned symbols_unwind(struct symbols *syms, const struct symbols_stack *stack, uint64_t *pcs,
                        bool *activation, unsigned max)
{
    return syms ? syms->module->unwind(syms->handle, stack, pcs, activation, max) : 0;
}

const char *symbols_describe_return(struct symbols *syms, uint64_t addr, char *buf, size_t len)
{
    struct symbol_info info;
    buf[0] = 0;
    if (!addr || !symbols_lookup(syms, addr - 1, &info))
        return buf;
    if (info.file)
        snprintf(buf, len, "%s+0x%llx (%s:%d)", info.function, (unsigned long long)(addr - info.function_start),
                 info.file, info.line);
    else
        snprintf(buf, len, "%s+0x%llx", info.function, (unsigned long long)(addr - info.function_start));
    return buf;
}

const char *symbols_describe(struct symbols *syms, uint64_t addr, char *buf, size_t len)
{
    struct symbol_info info;
    buf[0] = 0;
    if (!symbols_lookup(syms, addr, &info))
        return buf;
    if (info.file)
        snprintf(buf, len, "%s+0x%llx (%s:%d)", info.function, (unsigned long long)info.offset,
                 info.file, info.line);
    else
        snprintf(buf, len, "%s+0x%llx", info.function, (unsigned long long)info.offset);
    return buf;
}
