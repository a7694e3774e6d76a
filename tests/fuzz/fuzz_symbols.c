/* libFuzzer harness: libdw and libelf reading a kernel ELF the user names (the crash report and
 * the monitor symbolize addresses with it): any file, its symbols and DWARF line table, looked up
 * at addresses taken from the input. The file goes through a memfd, as a path libdwfl can open. */
#include "symbols.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("kernel", MFD_CLOEXEC);
    assert(fd >= 0);
    assert(write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct symbols *syms = symbols_open(path);
    if (syms) {
        /* Addresses: the ELF's own entry and a few taken from its last bytes. */
        uint64_t addrs[6] = {0x100000, 0x100010, 0x101000, 0xffffffff80000000ULL, 0, ~0ULL};
        for (size_t i = 0; i < 2 && size >= 8 * (i + 1); i++)
            memcpy(&addrs[4 + i], data + size - 8 * (i + 1), 8);
        for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
            char buf[256];
            struct symbol_info info;
            symbols_describe(syms, addrs[i], buf, sizeof(buf));
            if (symbols_lookup(syms, addrs[i], &info))
                assert(info.offset == addrs[i] - info.function_start);
        }
        symbols_close(syms);
    }
    close(fd);
    return 0;
}
