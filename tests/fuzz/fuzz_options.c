/* libFuzzer harness: the command-line parser, with the input split at NUL bytes into argv. */
#include "options.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct slate_config cfg;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    char *argv[64] = {"slate"};
    int argc = 1;
    for (size_t i = 0; i < size && argc < 63; i += strlen(copy + i) + 1)
        argv[argc++] = copy + i;
    argv[argc] = NULL;
    char err[512];
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w"); /* --help and --version print */
    options_parse(argc, argv, &cfg, err, sizeof(err));
    fclose(stdout);
    stdout = saved;
    free(copy);
    return 0;
}
