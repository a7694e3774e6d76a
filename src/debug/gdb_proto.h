/* gdb_proto.h - the GDB remote protocol's framing and hex encoding (gdb_proto.c). */
#ifndef SLATE_GDB_PROTO_H
#define SLATE_GDB_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GDB_PACKET_MAX 16384 /* advertised as PacketSize; longer packets are refused */

/* A hex digit's value, or -1. */
int gdb_hexval(char c);
/* Writes n bytes as 2n lowercase hex digits and a NUL; returns the end (at the NUL). */
char *gdb_put_hex(char *p, const uint8_t *bytes, size_t n);
/* Parses hex digits into *v, stopping at the first non-digit; returns the rest, NULL when there
 * were no digits or more than 16. */
const char *gdb_parse_hex(const char *p, uint64_t *v);
/* Decodes 2n hex digits at p into out; false at the first pair that is not hex. */
bool gdb_hex_bytes(const char *p, uint8_t *out, size_t n);
/* The frame "$data#checksum" in a malloc'd buffer of *len bytes (not NUL-terminated for the
 * wire; it does end in a NUL); NULL when out of memory. */
char *gdb_frame(const char *data, size_t *len);

/* Takes the next complete item out of rx (rx_len bytes): a packet's payload is copied
 * NUL-terminated into out (GDB_PACKET_MAX + 1 bytes). *ack is set to '+' or '-' for a framed
 * packet (good or bad) and 0 otherwise. */
enum gdb_item { GDB_ITEM_NONE, GDB_ITEM_PACKET, GDB_ITEM_INTERRUPT, GDB_ITEM_DROPPED };
enum gdb_item gdb_take_item(char *rx, size_t *rx_len, char *out, char *ack);

#endif
