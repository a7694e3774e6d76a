/* fuzz_input.h - the fuzzer's bytes, taken a field at a time (both fakes' harnesses use it). */
#ifndef SLATE_FUZZ_INPUT_H
#define SLATE_FUZZ_INPUT_H

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

#endif
