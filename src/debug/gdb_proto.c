/* gdb_proto.c - the GDB remote protocol's framing and hex encoding: pure functions, no sockets and
 * no machine, so the fuzzer drives them directly (tests/fuzz/fuzz_gdb_packets.c). */
#include "gdb_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

int gdb_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *gdb_put_hex(char *p, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *p++ = hexdigits[bytes[i] >> 4];
        *p++ = hexdigits[bytes[i] & 15];
    }
    *p = 0;
    return p;
}

const char *gdb_parse_hex(const char *p, uint64_t *v)
{
    *v = 0;
    int digits = 0;
    for (int d; (d = gdb_hexval(*p)) >= 0; p++, digits++) {
        if (digits == 16)
            return NULL;
        *v = (*v << 4) | (uint64_t)d;
    }
    return digits ? p : NULL;
}

char *gdb_frame(const char *data, size_t *len)
{
    size_t n = strlen(data);
    char *frame = malloc(n + 5);
    if (!frame)
        return NULL;
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + (uint8_t)data[i]);
    frame[0] = '$';
    memcpy(frame + 1, data, n);
    snprintf(frame + 1 + n, 4, "#%02x", sum);
    *len = n + 4;
    return frame;
}

bool gdb_hex_bytes(const char *p, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = gdb_hexval(p[2 * i]), lo = hi >= 0 ? gdb_hexval(p[2 * i + 1]) : -1;
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Takes the next complete item out of rx (rx_len bytes): a packet's payload is copied
 * NUL-terminated into out (GDB_PACKET_MAX + 1 bytes). *ack is set to '+' or '-' for a framed packet
 * (good or bad) and 0 otherwise. Pure: the fuzzer drives it directly. */
enum gdb_item gdb_take_item(char *rx, size_t *rx_len, char *out, char *ack)
{
    size_t i = 0, len = *rx_len;
    *ack = 0;
    while (i < len && rx[i] != '$' && rx[i] != 0x03)
        i++; /* acks ('+', '-') and noise between packets */
    memmove(rx, rx + i, len - i);
    len -= i;
    *rx_len = len;
    if (len == 0)
        return GDB_ITEM_NONE;
    if (rx[0] == 0x03) {
        memmove(rx, rx + 1, --len);
        *rx_len = len;
        return GDB_ITEM_INTERRUPT;
    }
    char *hash = memchr(rx, '#', len);
    if (!hash) {
        if (len >= GDB_PACKET_MAX + 4) { /* too long to ever be valid: drop it */
            *ack = '-';
            *rx_len = 0;
            return GDB_ITEM_DROPPED;
        }
        return GDB_ITEM_NONE;
    }
    size_t end = (size_t)(hash - rx);
    if (end + 3 > len)
        return GDB_ITEM_NONE; /* the checksum has not arrived yet */
    size_t payload = end - 1;
    uint8_t sum = 0;
    for (size_t k = 1; k < end; k++)
        sum = (uint8_t)(sum + (uint8_t)rx[k]);
    int hi = gdb_hexval(rx[end + 1]), lo = gdb_hexval(rx[end + 2]);
    bool ok = payload < GDB_PACKET_MAX && hi >= 0 && lo >= 0 && (hi << 4 | lo) == sum;
    if (ok)
        memcpy(out, rx + 1, payload), out[payload] = 0;
    memmove(rx, rx + end + 3, len - end - 3);
    *rx_len = len - end - 3;
    *ack = ok ? '+' : '-';
    return ok ? GDB_ITEM_PACKET : GDB_ITEM_DROPPED;
}
