/* The flame graph writer: frames merged by name at each depth, widths in proportion to samples,
 * callers below callees, tooltips with counts and shares, names escaped for XML. */
#include "unit.h"

#include "flamegraph.h"

#include <stdio.h>
#include <stdlib.h>

static char *svg_of(const char *folded)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    int rc = flamegraph_svg(folded, "test <kernel>", out);
    fclose(out);
    if (rc) {
        free(text);
        return NULL;
    }
    return text;
}

/* The rect that follows the frame's <title>, as "x width". */
static void frame_box(const char *svg, const char *title, double *x, double *width)
{
    const char *t = strstr(svg, title);
    assert_non_null(t);
    assert_int_equal(sscanf(strstr(t, "<rect"), "<rect x=\"%lf\" y=\"%*f\" width=\"%lf\"", x, width), 2);
}

static void widths_follow_samples(void **state)
{
    (void)state;
    char *svg = svg_of("kmain;left;hot 40\nkmain;right;hot 30\nkmain;warm 20\n[halted] 10\n");
    assert_non_null(svg);
    assert_contains(svg, "(100 samples)");
    double x, w;
    frame_box(svg, "<title>kmain (90 samples, 90.00%)</title>", &x, &w);
    assert_true(w > 1079 && w < 1081); /* 90% of 1200 */
    frame_box(svg, "<title>warm (20 samples, 20.00%)</title>", &x, &w);
    assert_true(w > 239 && w < 241);
    /* hot appears twice, once under each caller, merged within each */
    assert_non_null(strstr(svg, "<title>hot (40 samples, 40.00%)</title>"));
    assert_non_null(strstr(svg, "<title>hot (30 samples, 30.00%)</title>"));
    /* siblings in alphabetical order: [halted] at x 0, then kmain after it */
    frame_box(svg, "<title>[halted] (10 samples, 10.00%)</title>", &x, &w);
    assert_true(x < 0.01);
    frame_box(svg, "<title>kmain (90 samples", &x, &w);
    assert_true(x > 119 && x < 121);
    free(svg);
}

static void callees_above_callers(void **state)
{
    (void)state;
    char *svg = svg_of("a;b;c 5\n");
    double ya, yc;
    sscanf(strstr(strstr(svg, "<title>a "), "<rect"), "<rect x=\"%*f\" y=\"%lf\"", &ya);
    sscanf(strstr(strstr(svg, "<title>c "), "<rect"), "<rect x=\"%*f\" y=\"%lf\"", &yc);
    assert_true(yc < ya); /* SVG y grows downwards: the leaf is on top */
    free(svg);
}

static void names_are_escaped(void **state)
{
    (void)state;
    char *svg = svg_of("ops<int>&co 3\n");
    assert_contains(svg, "ops&lt;int&gt;&amp;co");
    assert_contains(svg, "test &lt;kernel&gt;");
    free(svg);
}

static void nothing_to_draw(void **state)
{
    (void)state;
    assert_null(svg_of(""));
    assert_null(svg_of("garbage without a count\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(widths_follow_samples), cmocka_unit_test(callees_above_callers),
        cmocka_unit_test(names_are_escaped), cmocka_unit_test(nothing_to_draw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
