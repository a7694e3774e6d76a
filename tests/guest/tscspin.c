/* Spins on the TSC for about a millisecond, counting, then prints the count and the TSC: under --record the
 * TSC is not recorded, so a replay cannot count the same and must say so (tests/t/record.t). */
#include "guest.h"

KMAIN kmain(const struct slate_info *info)
{
    (void)info;
    puts_hc("spinning\n");
    uint64_t until = rdtsc() + 1000000, spins = 0;
    while (rdtsc() < until)
        spins++;
    puts_hc("spins: ");
    put_dec((int64_t)spins);
    puts_hc(", tsc low bits: ");
    put_dec((int64_t)(rdtsc() & 0xFFFF));
    puts_hc("\n");
    guest_exit(0);
}
