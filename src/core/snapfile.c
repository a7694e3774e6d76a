/* snapfile.c - see snapfile.h. Layout (all little-endian, docs/machine.md):
 *
 *   file header, 64 bytes: "SLATESNP", u32 version, u32 header size, zeros, u32 CRC of bytes 0..59
 *   sections, each 8-byte aligned:
 *     header, 64 bytes: char kind[16] (NUL-padded), u32 index, u32 version, u64 data length,
 *                       u32 CRC-32 of the data, zeros, u32 CRC of bytes 0..59
 *     data
 *   the last section: kind "end", its data the u32 number of sections before it.
 *
 * A memory section's data: u64 gpa, u64 size, u64 pages present, u64 offset of the first page
 * (from the start of the data), the bitmap (one bit per page, padded to 8 bytes), zeros up to a
 * page boundary of the file, then the pages present, in order. */
#include "snapfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static uint32_t crc_of(const void *data, uint64_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const uint8_t *p = data;
    while (len) { /* zlib takes lengths as uInt */
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, p, n);
        p += n, len -= n;
    }
    return (uint32_t)crc;
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int parse_header(const uint8_t *b, size_t size, char *err, size_t errlen)
{
    if (size < SNAP_HEADER_SIZE || memcmp(b, SNAP_MAGIC, 8))
        return fail(err, errlen, "not a slate snapshot (no SLATESNP header)");
    if (get32(b + 60) != crc_of(b, 60))
        return fail(err, errlen, "the file header is corrupted (checksum mismatch)");
    if (get32(b + 8) != SNAP_VERSION)
        return fail(err, errlen, "snapshot format version %u; this slate reads version %d", get32(b + 8),
                    SNAP_VERSION);
    if (get32(b + 12) != SNAP_HEADER_SIZE)
        return fail(err, errlen, "the file header is malformed (size %u)", get32(b + 12));
    return 0;
}

/* One section header at pos: checks it and fills *s. */
static int parse_section(const uint8_t *b, size_t size, uint64_t pos, struct snap_section *s, char *err,
                         size_t errlen)
{
    if (size - pos < SNAP_SECTION_HEADER_SIZE)
        return fail(err, errlen, "truncated: the file ends inside a section header at offset %llu "
                    "(no end section)", (unsigned long long)pos);
    const uint8_t *h = b + pos;
    if (get32(h + 60) != crc_of(h, 60))
        return fail(err, errlen, "corrupted: the section header at offset %llu fails its checksum",
                    (unsigned long long)pos);
    memcpy(s->kind, h, SNAP_KIND_MAX);
    s->kind[SNAP_KIND_MAX] = 0;
    if (!s->kind[0])
        return fail(err, errlen, "malformed: a section without a kind at offset %llu", (unsigned long long)pos);
    for (const char *c = s->kind; *c; c++)
        if (*c < 'a' || *c > 'z')
            return fail(err, errlen, "malformed: a section kind that is not a word at offset %llu",
                        (unsigned long long)pos);
    s->index = get32(h + 16);
    s->version = get32(h + 20);
    s->length = get64(h + 24);
    s->offset = pos + SNAP_SECTION_HEADER_SIZE;
    if (s->length > size - s->offset)
        return fail(err, errlen, "truncated: section %s %u needs %llu bytes, the file has %llu after it",
                    s->kind, s->index, (unsigned long long)s->length,
                    (unsigned long long)(size - s->offset));
    s->data = b + s->offset;
    return 0;
}

int snap_parse(const uint8_t *bytes, size_t size, bool verify_memory, struct snap_file *out, char *err,
               size_t errlen)
{
    *out = (struct snap_file){.bytes = bytes, .size = size};
    if (parse_header(bytes, size, err, errlen))
        return -1;
    unsigned cap = 0;
    for (uint64_t pos = SNAP_HEADER_SIZE;;) {
        if (out->count == SNAP_MAX_SECTIONS) {
            snap_file_free(out);
            return fail(err, errlen, "malformed: more than %d sections", SNAP_MAX_SECTIONS);
        }
        if (out->count == cap) {
            cap = cap ? cap * 2 : 32;
            struct snap_section *grown = realloc(out->sections, cap * sizeof(*grown));
            if (!grown) {
                snap_file_free(out);
                return fail(err, errlen, "out of memory");
            }
            out->sections = grown;
        }
        struct snap_section *s = &out->sections[out->count];
        if (parse_section(bytes, size, pos, s, err, errlen)) {
            snap_file_free(out);
            return -1;
        }
        bool memory = !strcmp(s->kind, "memory");
        if ((!memory || verify_memory) && crc_of(s->data, s->length) != get32(bytes + pos + 32)) {
            fail(err, errlen, "corrupted: section %s %u fails its checksum", s->kind, s->index);
            snap_file_free(out);
            return -1;
        }
        if (!strcmp(s->kind, "end")) {
            if (s->length != 4 || get32(s->data) != out->count) {
                snap_file_free(out);
                return fail(err, errlen, "malformed: the end section does not count the sections");
            }
            return 0; /* bytes after the end section are ignored */
        }
        out->count++;
        pos = (s->offset + s->length + 7) & ~7ULL;
        if (pos > size) {
            snap_file_free(out);
            return fail(err, errlen, "truncated: the file ends after section %s %u (no end section)",
                        s->kind, s->index);
        }
    }
}

void snap_file_free(struct snap_file *f)
{
    free(f->sections);
    f->sections = NULL;
    f->count = 0;
}

const struct snap_section *snap_find(const struct snap_file *f, const char *kind, uint32_t index)
{
    for (unsigned i = 0; i < f->count; i++)
        if (f->sections[i].index == index && !strcmp(f->sections[i].kind, kind))
            return &f->sections[i];
    return NULL;
}

int snap_memory(const struct snap_section *s, struct snap_memory *m, char *err, size_t errlen)
{
    if (s->length < 32)
        return fail(err, errlen, "malformed: memory section %u is too short", s->index);
    m->gpa = get64(s->data);
    m->size = get64(s->data + 8);
    m->page_count = get64(s->data + 16);
    m->pages_offset = get64(s->data + 24);
    uint64_t pages = m->size / SNAP_PAGE, bitmap_bytes = ((pages + 63) / 64) * 8;
    if (m->size % SNAP_PAGE || m->gpa % SNAP_PAGE || m->size == 0 || m->size > (1ULL << 46) ||
        m->gpa > (1ULL << 52))
        return fail(err, errlen, "malformed: memory section %u covers %#llx+%#llx", s->index,
                    (unsigned long long)m->gpa, (unsigned long long)m->size);
    if (m->pages_offset < 32 + bitmap_bytes || m->pages_offset > s->length ||
        (s->offset + m->pages_offset) % SNAP_PAGE || m->page_count > pages ||
        (s->length - m->pages_offset) / SNAP_PAGE != m->page_count ||
        (s->length - m->pages_offset) % SNAP_PAGE)
        return fail(err, errlen, "malformed: memory section %u's page table does not fit its length",
                    s->index);
    m->bitmap = s->data + 32;
    m->pages = s->data + m->pages_offset;
    m->pages_offset += s->offset;
    uint64_t counted = 0;
    for (uint64_t i = 0; i < bitmap_bytes; i++)
        counted += (uint64_t)__builtin_popcount(m->bitmap[i]);
    for (uint64_t p = pages; p < bitmap_bytes * 8; p++)
        if (snap_page_present(m, p))
            return fail(err, errlen, "malformed: memory section %u lists pages past its end", s->index);
    if (counted != m->page_count)
        return fail(err, errlen, "malformed: memory section %u lists %llu pages and holds %llu", s->index,
                    (unsigned long long)counted, (unsigned long long)m->page_count);
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void put(struct snap_writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len && !w->error) {
        ssize_t n = write(w->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->error = n < 0 ? -errno : -EIO;
            return;
        }
        p += n, len -= (size_t)n, w->pos += (uint64_t)n;
    }
}

static void put_zeros(struct snap_writer *w, uint64_t len)
{
    static const uint8_t zeros[4096];
    while (len) {
        size_t n = len > sizeof(zeros) ? sizeof(zeros) : (size_t)len;
        put(w, zeros, n);
        len -= n;
    }
}

void snap_writer_begin(struct snap_writer *w, int fd)
{
    *w = (struct snap_writer){.fd = fd};
    uint8_t h[SNAP_HEADER_SIZE] = {0};
    memcpy(h, SNAP_MAGIC, 8);
    uint32_t version = SNAP_VERSION, size = SNAP_HEADER_SIZE;
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &size, 4);
    uint32_t crc = crc_of(h, 60);
    memcpy(h + 60, &crc, 4);
    put(w, h, sizeof(h));
}

void snap_section_begin(struct snap_writer *w, const char *kind, uint32_t index, uint32_t version)
{
    put_zeros(w, ((w->pos + 7) & ~7ULL) - w->pos);
    w->header_at = w->pos;
    memset(w->kind, 0, sizeof(w->kind));
    memcpy(w->kind, kind, strnlen(kind, sizeof(w->kind)));
    w->index = index, w->version = version;
    w->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    put_zeros(w, SNAP_SECTION_HEADER_SIZE); /* written for real by snap_section_end */
}

void snap_append(struct snap_writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t done = 0; done < len;) {
        uInt n = len - done > (1u << 30) ? (1u << 30) : (uInt)(len - done);
        w->crc = (uint32_t)crc32(w->crc, p + done, n);
        done += n;
    }
    put(w, data, len);
}

void snap_section_end(struct snap_writer *w)
{
    uint8_t h[SNAP_SECTION_HEADER_SIZE] = {0};
    uint64_t length = w->pos - w->header_at - SNAP_SECTION_HEADER_SIZE;
    memcpy(h, w->kind, SNAP_KIND_MAX);
    memcpy(h + 16, &w->index, 4);
    memcpy(h + 20, &w->version, 4);
    memcpy(h + 24, &length, 8);
    memcpy(h + 32, &w->crc, 4);
    uint32_t crc = crc_of(h, 60);
    memcpy(h + 60, &crc, 4);
    if (!w->error && pwrite(w->fd, h, sizeof(h), (off_t)w->header_at) != (ssize_t)sizeof(h))
        w->error = -errno ? -errno : -EIO;
    w->sections++;
}

void snap_write_section(struct snap_writer *w, const char *kind, uint32_t index, uint32_t version,
                        const void *data, size_t len)
{
    snap_section_begin(w, kind, index, version);
    snap_append(w, data, len);
    snap_section_end(w);
}

void snap_write_memory(struct snap_writer *w, uint32_t index, uint64_t gpa, uint64_t size,
                       const uint8_t *host, const uint8_t *present)
{
    uint64_t pages = size / SNAP_PAGE, bitmap_bytes = ((pages + 63) / 64) * 8, count = 0;
    for (uint64_t p = 0; p < pages; p++)
        count += (present[p / 8] >> (p % 8)) & 1;
    snap_section_begin(w, "memory", index, 1);
    uint64_t data_at = w->pos;
    uint64_t first_page = (data_at + 32 + bitmap_bytes + SNAP_PAGE - 1) & ~(SNAP_PAGE - 1);
    uint64_t head[4] = {gpa, size, count, first_page - data_at};
    snap_append(w, head, sizeof(head));
    snap_append(w, present, (size_t)((pages + 7) / 8));
    static const uint8_t zeros[SNAP_PAGE];
    for (uint64_t left = first_page - w->pos; left;) {
        size_t n = left > sizeof(zeros) ? sizeof(zeros) : (size_t)left;
        snap_append(w, zeros, n);
        left -= n;
    }
    for (uint64_t p = 0; p < pages && !w->error;) { /* runs of present pages in one write */
        if (!((present[p / 8] >> (p % 8)) & 1)) {
            p++;
            continue;
        }
        uint64_t end = p;
        while (end < pages && ((present[end / 8] >> (end % 8)) & 1) && end - p < 256)
            end++;
        snap_append(w, host + p * SNAP_PAGE, (size_t)((end - p) * SNAP_PAGE));
        p = end;
    }
    snap_section_end(w);
}

int snap_writer_end(struct snap_writer *w)
{
    uint32_t count = w->sections;
    snap_write_section(w, "end", 0, 1, &count, sizeof(count));
    return w->error;
}
