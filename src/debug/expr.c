/* expr.c - see expr.h. */
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static bool name_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$'; }

/* One term: a number, $register or a symbol; *p moves past it. */
static int term(const char **p, const struct expr_env *env, uint64_t *v, char *err, size_t errlen)
{
    const char *start = skip_space(*p), *end = start;
    while (name_char(*end))
        end++;
    size_t len = (size_t)(end - start);
    if (!len) {
        snprintf(err, errlen, "expected a number, $register or function name at '%s'", start);
        return -1;
    }
    char word[NAME_MAX_LEN];
    if (len >= sizeof(word)) {
        snprintf(err, errlen, "'%.40s...' is too long", start);
        return -1;
    }
    memcpy(word, start, len);
    word[len] = 0;
    *p = end;
    if (isdigit((unsigned char)word[0])) {
        char *stop;
        errno = 0;
        *v = strtoull(word, &stop, 0);
        if (*stop || errno) {
            snprintf(err, errlen, "'%s' is not a number", word);
            return -1;
        }
        return 0;
    }
    if (word[0] == '$') {
        if (env->reg && env->reg(env->ctx, word + 1, v))
            return 0;
        snprintf(err, errlen, "'%s' is not a register ($rax..$r15, $rip, $rsp, $rflags, $cr0, $cr2, $cr3, "
                              "$cr4, $cr8, $efer, $fs_base, $gs_base)", word);
        return -1;
    }
    if (env->sym && env->sym(env->ctx, word, v))
        return 0;
    snprintf(err, errlen, "'%s' is not a number, and not a function in the kernel's symbols", word);
    return -1;
}

int expr_eval(const char *text, const struct expr_env *env, uint64_t *value, char *err, size_t errlen)
{
    const char *p = text;
    uint64_t v;
    if (term(&p, env, &v, err, errlen))
        return -1;
    for (p = skip_space(p); *p; p = skip_space(p)) {
        if (*p != '+' && *p != '-') {
            snprintf(err, errlen, "expected + or - at '%s'", p);
            return -1;
        }
        char op = *p++;
        uint64_t t;
        if (term(&p, env, &t, err, errlen))
            return -1;
        v = op == '+' ? v + t : v - t;
    }
    *value = v;
    return 0;
}
