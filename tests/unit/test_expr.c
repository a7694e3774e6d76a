/* The monitor's address expressions: numbers, $registers and function names, added and
 * subtracted, and errors that say what was not understood. */
#include "unit.h"

#include "expr.h"

static bool reg(void *ctx, const char *name, uint64_t *v)
{
    (void)ctx;
    if (!strcmp(name, "rsp"))
        return *v = 0x7fff0, true;
    if (!strcmp(name, "cr3"))
        return *v = 0x1000, true;
    return false;
}

static bool sym(void *ctx, const char *name, uint64_t *v)
{
    (void)ctx;
    return !strcmp(name, "kmain") ? (*v = 0x100020, true) : false;
}

static const struct expr_env env = {reg, sym, NULL};

static uint64_t eval(const char *text)
{
    uint64_t v = 0;
    char err[200] = "";
    if (expr_eval(text, &env, &v, err, sizeof(err)))
        fail_msg("%s: %s", text, err);
    return v;
}

static void numbers_registers_and_symbols(void **state)
{
    (void)state;
    assert_int_equal(eval("0x100000"), 0x100000);
    assert_int_equal(eval("4096"), 4096);
    assert_int_equal(eval("$rsp"), 0x7fff0);
    assert_int_equal(eval("$rsp+16"), 0x80000);
    assert_int_equal(eval(" $rsp + 16 - 0x10 "), 0x7fff0);
    assert_int_equal(eval("kmain"), 0x100020);
    assert_int_equal(eval("kmain+0x20"), 0x100040);
    assert_int_equal(eval("$cr3"), 0x1000);
}

static void errors_say_what(void **state)
{
    (void)state;
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"$rsq", "'$rsq' is not a register"},
        {"kmian", "'kmian' is not a number, and not a function in the kernel's symbols"},
        {"0x12g", "'0x12g' is not a number"},
        {"$rsp*2", "expected + or - at '*2'"},
        {"$rsp+", "expected a number, $register or function name at ''"},
        {"", "expected a number"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        char err[200] = "";
        assert_int_equal(expr_eval(bad[i].text, &env, &v, err, sizeof(err)), -1);
        assert_contains(err, bad[i].says);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_registers_and_symbols),
        cmocka_unit_test(errors_say_what),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
