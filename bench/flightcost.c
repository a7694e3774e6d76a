/* flightcost.c - what one flight-recorder event costs slate's exit path: flight_record() timed
 * over ten million events (bench/run.sh sets it beside the cost of an exit measured in the same
 * run). Wall-clock comparisons of whole runs with and without the recorder are lost in the noise
 * of a shared machine; this is not. */
#include "flight.h"
#include "log.h"

#include <stdio.h>

int main(void)
{
    enum { EVENTS = 10000000 };
    struct flight_recorder fr;
    if (!flight_init(&fr, FLIGHT_EVENTS))
        return 1;
    double best = 1e9;
    for (int round = 0; round < 5; round++) {
        int64_t start = clock_now_ns();
        for (unsigned i = 0; i < EVENTS; i++)
            flight_record(&fr, FLIGHT_OUT, 0, 0x3F8, i, 1);
        double ns = (double)(clock_now_ns() - start) / EVENTS;
        best = ns < best ? ns : best;
    }
    printf("%.1f\n", best);
    flight_free(&fr);
    return 0;
}
