/* fuzz_input.h - the fuzzer's bytes, taken a field at a time (both fakes' harnesses use it). */
#ifndef SLATE_FUZZ_INPUT_H
#define SLATE_FUZZ_INPUT_H

#include "slate/slate.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Past the end every field reads as zero. */
struct fuzz_input {
    const uint8_t *data;
    size_t left;
};

static inline uint64_t fuzz_take(struct fuzz_input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && in->left; i++, in->left--)
        v |= (uint64_t)*in->data++ << (8 * i);
    return v;
}

/* Copies up to max bytes of input into dst (which must hold max); returns how many. */
static inline size_t fuzz_bytes(struct fuzz_input *in, void *dst, size_t max)
{
    size_t n = in->left < max ? in->left : max;
    memcpy(dst, in->data, n);
    in->data += n;
    in->left -= n;
    return n;
}

/* A guest-physical address a hostile guest would pick, for a machine with ram_bytes of RAM: in
 * RAM, at its end, just past it, in the hole, in a device window, or anything at all. */
static inline uint64_t fuzz_guest_address(struct fuzz_input *in, uint64_t ram_bytes)
{
    uint64_t v = fuzz_take(in, 4);
    switch (fuzz_take(in, 1) % 6) {
    case 0: return v % ram_bytes;                      /* in RAM */
    case 1: return ram_bytes - (v % 0x2000);           /* ending in or just past RAM's end */
    case 2: return SLATE_HOLE_BASE + v % (SLATE_HOLE_END - SLATE_HOLE_BASE);
    case 3: return SLATE_DEVICE_WINDOWS + v % 0x1000000;
    case 4: return ~0ULL - (v % 0x2000);               /* wrapping past the top */
    default: return v | fuzz_take(in, 4) << 32;        /* anything */
    }
}

#endif
