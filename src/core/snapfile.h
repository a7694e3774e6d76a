/* snapfile.h - the snapshot file format (docs/machine.md, "The snapshot file"): a header, then
 * sections, each with its own header and a CRC-32 of its data, ending with an "end" section.
 * This file knows bytes, not machines: snapshot.c says what goes in the sections. The reader
 * takes any bytes (a truncated, corrupted or foreign file) and refuses them with one line
 * naming what is wrong; it is fuzzed (tests/fuzz/fuzz_snapfile.c). */
#ifndef SLATE_SNAPFILE_H
#define SLATE_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC "SLATESNP"
#define SNAP_VERSION 1
#define SNAP_HEADER_SIZE 64
#define SNAP_SECTION_HEADER_SIZE 64
#define SNAP_PAGE 4096ULL
#define SNAP_KIND_MAX 16
#define SNAP_MAX_SECTIONS 4096

/* One section as the reader found it: data points into the file's bytes. */
struct snap_section {
    char kind[SNAP_KIND_MAX + 1]; /* "machine", "cpu", "device", "memory", ... */
    uint32_t index;               /* which CPU, device or memory range */
    uint32_t version;             /* the layout of its data */
    uint64_t offset;              /* of its data in the file */
    uint64_t length;
    const uint8_t *data;
};

struct snap_file {
    const uint8_t *bytes;
    size_t size;
    struct snap_section *sections;
    unsigned count;
};

/* Checks bytes[0, size) as a snapshot file: the header, every section header, every data CRC
 * (for memory sections only when verify_memory), and the end section. 0, or -1 with one line in
 * err. Free with snap_file_free. */
int snap_parse(const uint8_t *bytes, size_t size, bool verify_memory, struct snap_file *out, char *err,
               size_t errlen);
void snap_file_free(struct snap_file *f);

/* The section of this kind and index, or NULL. */
const struct snap_section *snap_find(const struct snap_file *f, const char *kind, uint32_t index);

/* A memory section's pages: those present (bit set) are stored in order from `pages`, which
 * sits at a page-aligned offset of the file (pages_offset), so a restore may map them. */
struct snap_memory {
    uint64_t gpa, size; /* the range it covers (page multiples) */
    uint64_t page_count;
    const uint8_t *bitmap; /* one bit per page of the range */
    const uint8_t *pages;
    uint64_t pages_offset; /* of `pages` in the file */
};
/* Decodes and checks a memory section. 0, or -1 with one line in err. */
int snap_memory(const struct snap_section *s, struct snap_memory *m, char *err, size_t errlen);
static inline bool snap_page_present(const struct snap_memory *m, uint64_t page)
{
    return (m->bitmap[page / 8] >> (page % 8)) & 1;
}

/* The writer: sequential writes to fd, each section's header written once its data is. On the
 * first failure it records -errno and ignores the rest; snap_writer_end returns it. */
struct snap_writer {
    int fd;
    uint64_t pos;
    int error;
    /* the open section */
    uint64_t header_at;
    uint32_t crc;
    char kind[SNAP_KIND_MAX];
    uint32_t index, version;
    unsigned sections;
};
void snap_writer_begin(struct snap_writer *w, int fd);
void snap_section_begin(struct snap_writer *w, const char *kind, uint32_t index, uint32_t version);
void snap_append(struct snap_writer *w, const void *data, size_t len);
void snap_section_end(struct snap_writer *w);
/* A whole section of one piece. */
void snap_write_section(struct snap_writer *w, const char *kind, uint32_t index, uint32_t version,
                        const void *data, size_t len);
/* A memory section for [gpa, gpa+size) held at host: the pages whose bit is set in `present`
 * (one bit per page; pages that are all zero should be left out by the caller). */
void snap_write_memory(struct snap_writer *w, uint32_t index, uint64_t gpa, uint64_t size,
                       const uint8_t *host, const uint8_t *present);
/* Writes the end section. 0 or the first -errno. */
int snap_writer_end(struct snap_writer *w);

#endif
