/* module.c - see module.h. */
#include "module.h"

#include "log.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where the modules are: $SLATE_MODULE_DIR, else the slate binary's own directory (a build
 * tree), else ../lib/slate beside it (an installed tree, wherever it was moved). */
static void module_dir(char *dir, size_t size)
{
    const char *env = getenv("SLATE_MODULE_DIR");
    if (env && *env) {
        snprintf(dir, size, "%s", env);
        return;
    }
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    dir[n > 0 ? n : 0] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, size, ".");
}

const void *module_load(const char *name, const char *symbol, const void *builtin, const char *purpose)
{
    if (builtin)
        return builtin;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* dlerror is per thread, dlopen not */
    char dir[PATH_MAX], path[PATH_MAX + 64];
    module_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/slate-%s.so", dir, name);
    if (access(path, F_OK) != 0 && !getenv("SLATE_MODULE_DIR")) {
        char installed[PATH_MAX + 64];
        snprintf(installed, sizeof(installed), "%s/../lib/slate/slate-%s.so", dir, name);
        if (access(installed, F_OK) == 0)
            snprintf(path, sizeof(path), "%s", installed);
    }
    pthread_mutex_lock(&lock);
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: its code runs until exit */
    const void *table = handle ? dlsym(handle, symbol) : NULL;
    if (!table)
        log_error("%s: cannot load %s: %s", purpose, path, dlerror());
    pthread_mutex_unlock(&lock);
    return table;
}
