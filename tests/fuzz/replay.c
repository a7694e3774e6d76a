/* replay.c - runs a fuzz harness without libFuzzer: each file named on the command line (or each
 * file in a named directory) is one input. `make check` links every harness with this and replays
 * the committed corpus and the inputs that once crashed slate (tests/t/fuzz.t), so they stay
 * fixed, under the sanitizers in `make check-asan`. Prints "ok N inputs". */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned replayed;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        perror(path);
        return -1;
    }
    uint8_t *copy = malloc(n ? n : 1); /* exactly sized, so ASan sees reads past the input */
    if (!copy)
        return -1;
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    replayed++;
    return 0;
}

static int replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path);
    struct dirent **names;
    int count = scandir(path, &names, NULL, alphasort), rc = count < 0 ? -1 : 0;
    for (int i = 0; i < count; i++) {
        if (names[i]->d_name[0] != '.' && rc == 0) {
            char child[4096];
            snprintf(child, sizeof(child), "%s/%s", path, names[i]->d_name);
            rc = replay_path(child);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i]))
            return 1;
    printf("ok %u inputs\n", replayed);
    return 0;
}
