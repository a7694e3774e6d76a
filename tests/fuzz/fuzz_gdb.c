/* libFuzzer harness: the gdb stub's packet framing (checksums, lengths, interrupts, noise) on
 * whatever a hostile client sends, fed in chunks as a socket would deliver it. */
#include "gdb_proto.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char rx[2 * GDB_PACKET_MAX], out[GDB_PACKET_MAX + 1];
    size_t rx_len = 0, pos = 0;
    while (pos < size) {
        size_t chunk = 1 + data[pos] % 97;
        if (chunk > size - pos)
            chunk = size - pos;
        if (rx_len + chunk > sizeof(rx))
            rx_len = 0; /* as the stub does for a client that only sends garbage */
        memcpy(rx + rx_len, data + pos, chunk);
        rx_len += chunk;
        pos += chunk;
        char ack;
        while (gdb_take_item(rx, &rx_len, out, &ack) != GDB_ITEM_NONE)
            ;
    }
    return 0;
}
