/* libFuzzer harness: the snapshot file reader (snapfile.c), which --restore runs on any file it
 * is given: every section it accepts is then decoded as memory, as restore would. */
#include "snapfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snap_file f;
    char err[256];
    for (int verify = 0; verify < 2; verify++) {
        if (snap_parse(data, size, verify, &f, err, sizeof(err)))
            continue;
        for (unsigned i = 0; i < f.count; i++) {
            struct snap_memory m;
            if (!strcmp(f.sections[i].kind, "memory") && !snap_memory(&f.sections[i], &m, err, sizeof(err))) {
                volatile uint8_t sink = 0;
                for (uint64_t p = 0; p < m.size / SNAP_PAGE; p++)
                    if (snap_page_present(&m, p))
                        sink ^= m.pages[0];
                (void)sink;
            }
        }
        snap_file_free(&f);
    }
    return 0;
}
