/* unit.h - what every cmocka test file in tests/unit needs. */
#ifndef SLATE_UNIT_H
#define SLATE_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <string.h>

/* Asserts that the error text contains `needle`, printing both when it does not. */
#define assert_contains(haystack, needle)                                                          \
    do {                                                                                           \
        if (!strstr((haystack), (needle)))                                                         \
            fail_msg("'%s' does not contain '%s'", (haystack), (needle));                          \
    } while (0)

#endif
