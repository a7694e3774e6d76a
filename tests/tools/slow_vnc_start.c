/* slow_vnc_start.so - LD_PRELOADed into slate by netflood.t: every libvncserver client start
 * (rfbStartOnHoldClient, where the library takes its client's pipe) waits 20 ms first. That
 * widens the window in which other threads take descriptors, so a slate that leaves the library's
 * pipe() to chance aborts every time instead of now and then. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void rfbStartOnHoldClient(void *client);

void rfbStartOnHoldClient(void *client)
{
    static void (*real)(void *);
    if (!real) {
        /* libvncserver is loaded by slate's VNC module, locally: find it by name. */
        void *lib = dlopen("libvncserver.so.1", RTLD_NOW | RTLD_NOLOAD);
        real = lib ? (void (*)(void *))dlsym(lib, "rfbStartOnHoldClient") : NULL;
        if (!real) {
            fprintf(stderr, "slow_vnc_start: libvncserver's rfbStartOnHoldClient not found\n");
            abort();
        }
    }
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    real(client);
}
