/* device.h - the one small interface every device implements. A device file defines a
 * `const struct device_ops` and is listed in device_types[] (devices.c); the core allocates its
 * ports, window and interrupt lines, and handles the common IRQ_VECTOR/IRQ_CPU registers. */
#ifndef SLATE_DEVICE_H
#define SLATE_DEVICE_H

#include "bus.h"
#include "event.h"
#include "irq_line.h"
#include "log.h"
#include "slate/slate.h"

#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slate_config; /* options.h */
struct boot_screen;  /* loader.h */

/* A device's saved state: bytes appended by save, read back in the same order by load. */
struct device_state {
    uint8_t *data;
    size_t len, cap; /* save: bytes written and allocated */
    size_t pos;      /* load: bytes read so far */
    bool failed;     /* out of memory (save), or read past the end (load) */
};

static inline void device_state_put(struct device_state *st, const void *src, size_t n)
{
    if (st->failed)
        return;
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        while (cap < st->len + n)
            cap *= 2;
        uint8_t *grown = realloc(st->data, cap);
        if (!grown) {
            st->failed = true;
            return;
        }
        st->data = grown, st->cap = cap;
    }
    memcpy(st->data + st->len, src, n);
    st->len += n;
}

/* Copies the next n bytes to dst; false (and dst zeroed) when the state is shorter. */
static inline bool device_state_get(struct device_state *st, void *dst, size_t n)
{
    if (st->failed || n > st->len - st->pos) {
        st->failed = true;
        memset(dst, 0, n);
        return false;
    }
    memcpy(dst, st->data + st->pos, n);
    st->pos += n;
    return true;
}

/* True when load consumed exactly what save wrote. */
static inline bool device_state_done(const struct device_state *st)
{
    return !st->failed && st->pos == st->len;
}

struct vm; /* the machine: opaque here, reached only through the device_* functions below */
struct device;
struct console;

/* A command-line option a device owns. */
struct device_option {
    const char *name; /* without the dashes: "disk" */
    bool has_arg;
    const char *usage; /* its lines in --help, each ending in a newline */
    /* Stores what arg says in cfg. 0, or -1 with a one-line message in err ("--disk X: why"). */
    int (*parse)(struct slate_config *cfg, const char *arg, char *err, size_t errlen);
};

struct device_ops {
    const char *name;     /* instance names are name + index: "serial0" */
    uint16_t type;        /* SLATE_DEV_* */
    uint16_t version;     /* register layout version */
    uint16_t port_count;  /* ports the device decodes, a multiple of 4 */
    uint64_t window_size; /* bytes of shared memory, 0 for none */
    bool window_dirty_log; /* KVM tracks the pages the guest writes (KVM_GET_DIRTY_LOG) */
    uint16_t irq_reg;     /* port offset of line 0's IRQ_VECTOR */
    uint16_t irq_status_reg; /* port offset of its IRQ_STATUS (read without side effects), for the
                              * hang report; 0 when it has none */
    uint16_t irq_count;   /* interrupt lines */
    /* Its command-line options, ending with an entry whose name is NULL (may be NULL). */
    const struct device_option *options;
    /* How many instances this configuration asks for (NULL: exactly one). */
    unsigned (*instances)(const struct slate_config *cfg);
    /* Checks instance `index`'s configuration before KVM is opened (files exist, can be locked,
     * addresses parse), acquiring nothing. Logs "OPTION or PATH: why" and returns -1 (may be
     * NULL). */
    int (*check)(const struct slate_config *cfg, unsigned index);
    /* Allocates dev->state and connects backends. Returns 0 or -errno after logging why. */
    int (*setup)(struct device *dev, unsigned index);
    /* Register access at io->offset, outside the IRQ registers (which the core serves). */
    void (*pio)(struct device *dev, struct bus_io *io);
    /* A line got a vector: if its condition already holds, the device raises it now, so events
     * that came before the guest set up its interrupts are not lost (may be NULL). */
    void (*irq_enabled)(struct device *dev, unsigned line);
    /* Releases what setup acquired (may be NULL). Runs after every vCPU has stopped. */
    void (*teardown)(struct device *dev);
    /* Snapshots (docs/machine.md): the device's state as bytes laid out as `state_version`
     * says. save runs with every vCPU parked: it finishes what it took from the guest (requests
     * in a ring) and appends its registers, queues and ring positions with device_state_put.
     * load gives a device fresh from setup (or one being put back to a snapshot by --each) the
     * state save wrote, checking every value: a snapshot file is input like any other. Returns
     * 0, or -1 after logging why ("disk0: ..."). A device with no save cannot be saved, and a
     * snapshot of a machine that has one fails naming it. Its window's memory and its interrupt
     * lines are the core's to save. */
    uint16_t state_version;
    int (*save)(struct device *dev, struct device_state *out);
    int (*load)(struct device *dev, struct device_state *in);
    /* Recording (device_record_mode): on the vCPU's thread at each of its exits and kicks, the
     * device puts into guest memory what arrived since (received frames), naming what it wrote
     * with device_wrote; device_record_kick asks for the next such stop soon (may be NULL). */
    void (*record_sync)(struct device *dev);
};

#define DEVICE_MAX_IRQS 8

struct device {
    const struct device_ops *ops;
    struct vm *vm; /* the machine it belongs to (opaque: use the device_* functions) */
    char name[16];
    uint16_t port_base;
    uint64_t window_gpa;
    void *window; /* host mapping of the window */
    uint64_t window_bytes; /* its mapped size: window_size rounded up as device_plan does */
    unsigned window_slot; /* its KVM memory slot (the core's business) */
    struct irq_line irq[DEVICE_MAX_IRQS]; /* vector and cpu are what the guest programmed */
    void *state;
};

/* ---- What the machine offers a device ---------------------------------------------------------
 * The whole device-facing API: device files include this header (and their backend's), never
 * vm.h, and make no KVM ioctl. The core implements these functions (src/device_host.c); the unit
 * tests' fake machine (tests/unit/fake_machine.c) implements them without KVM. */

/* The parsed command line (a device reads its own options: cfg->disks[index] and so on). */
const struct slate_config *device_config(const struct device *dev);

/* A host pointer to guest RAM [gpa, gpa+len), or NULL if any of it is not RAM. The only way a
 * device touches guest memory outside its window: everything the guest hands over is checked. */
void *device_ram(struct device *dev, uint64_t gpa, uint64_t len);

/* Sends interrupt `line` if the guest enabled it. Any thread. */
void device_raise(struct device *dev, unsigned line);

/* A doorbell: a 4-byte guest write to port_base+offset signals eventfd `fd` instead of exiting
 * to slate (KVM_IOEVENTFD). 0, or -errno after logging why. */
int device_doorbell(struct device *dev, uint16_t offset, int fd);

/* Fds served by the machine's event thread: src->fn runs there. 0 or -errno (-EPERM: the fd
 * cannot be polled, such as a regular file). */
int device_watch(struct device *dev, struct event_source *src, uint32_t events);
int device_watch_modify(struct device *dev, struct event_source *src, uint32_t events);
void device_unwatch(struct device *dev, struct event_source *src);

/* Which pages of the window the guest wrote since the last call (ops->window_dirty_log): one bit
 * per 4 KiB page in `bitmap`, which holds window_bytes/4096 bits. False if unknown (treat all as
 * written). */
bool device_window_dirty(struct device *dev, unsigned long *bitmap);

/* Record and replay (docs/debugging.md). A device that can be recorded does its guest-memory
 * work only at the vCPU's exits: while recording, a doorbell is an exit like any other port
 * write (device_doorbell registers no ioeventfd), the device does the work right there on the
 * vCPU's thread, and it names each range of guest memory it wrote (device_wrote), which the log
 * keeps. A replay writes the same bytes at the same exit: the device then has no backend and
 * does nothing (its register reads, too, come from the log). A recording that crashed becomes a
 * replay of its own log (time travel runs it again): device_record_mode says REPLAYING from then
 * on, so a device asks it where it acts on an exit, not only once at start. */
enum device_record_mode { DEVICE_LIVE, DEVICE_RECORDING, DEVICE_REPLAYING };
enum device_record_mode device_record_mode(const struct device *dev);
/* While recording: the device wrote guest memory [gpa, gpa+len) (RAM or its window), whose
 * bytes are at `host`, during the exit being handled. Otherwise nothing. */
void device_wrote(struct device *dev, uint64_t gpa, const void *host, uint64_t len);
/* While recording: something arrived for the guest; the vCPU stops soon (a kick) and the
 * device's record_sync runs there. Any thread. */
void device_record_kick(struct device *dev);

/* Ends the machine with exit status `status` (0..255), or resets it (DEVICE_RESET). The first
 * request wins. Any thread. */
#define DEVICE_RESET (-2)
void device_stop_machine(struct device *dev, int status);
/* The decided end of the machine: -1 while it runs, else the status given above. */
int device_machine_status(const struct device *dev);

/* The guest's monotonic clock in ns (zero at boot), and the host CLOCK_MONOTONIC time of a guest
 * clock reading (for timerfds). */
int64_t device_clock_ns(const struct device *dev);
int64_t device_host_time(const struct device *dev, int64_t guest_ns);

unsigned device_cpu_count(const struct device *dev);

/* How the kernel's boot protocol left the screen (loader.h): a graphics mode at a size, and
 * whether text mode shows the VGA buffer at 0xB8000. All zero for slate's own boot. */
const struct boot_screen *device_boot_screen(const struct device *dev);

/* The serial console's backend (console.h). */
struct console *device_console(struct device *dev);

/* A warning about a guest mistake, rate-limited per machine so a guest cannot flood stderr. */
void device_warn(struct device *dev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A hypercall this device serves: `function` (SLATE_HC_*) with the caller's RDI, RSI, RCX, RBX
 * in args; the result goes to the caller's RAX. Returns 0 or -EEXIST. */
typedef int64_t (*device_hypercall_fn)(struct device *dev, const uint64_t args[4]);
int device_add_hypercall(struct device *dev, uint64_t function, device_hypercall_fn fn);

/* Input: the keyboard and pointer attach themselves as the machine's sinks (NULL detaches, after
 * which no call reaches them); the display's front ends (VNC, SDL) feed them from any thread. */
struct input_sink {
    /* An X11 keysym (as VNC sends them) pressed or released. */
    void (*key)(struct device *sink, uint32_t keysym, bool down);
    /* The pointer at (x, y) with VNC's button mask: bit 0 left, 1 middle, 2 right, 3 wheel up,
     * 4 wheel down. */
    void (*pointer)(struct device *sink, int x, int y, uint32_t buttons);
};
void device_attach_input(struct device *dev, const struct input_sink *sink);

/* The machine's side of the above (devices.c), for whoever implements device.h: the sinks, and a
 * lock so that front ends' threads, which may outlive the sinks at teardown, take turns with
 * attaching and detaching. */
struct input_sinks {
    pthread_mutex_t lock;
    struct device *key, *pointer;
    const struct input_sink *key_ops, *pointer_ops;
};
void input_sinks_attach(struct input_sinks *s, struct device *dev, const struct input_sink *sink);
void input_sinks_key(struct input_sinks *s, uint32_t keysym, bool down);
void input_sinks_pointer(struct input_sinks *s, int x, int y, uint32_t buttons);
void device_input_key(struct device *from, uint32_t keysym, bool down);
void device_input_pointer(struct device *from, int x, int y, uint32_t buttons);

/* The screen, offered by the display for the monitor's screendump: writes PNG `name` in dirfd
 * (a temporary file renamed into place, never through a link; `replace`: over an existing
 * file). 0 or -errno (-EEXIST: the file exists). */
typedef int (*device_screenshot_fn)(struct device *dev, int dirfd, const char *name, bool replace);
void device_offer_screenshot(struct device *dev, device_screenshot_fn fn);

/* A guest access to one of dev's ports (opaque is the device): the common IRQ_VECTOR/IRQ_CPU
 * registers, then ops->pio. The port bus calls it; so do the unit tests and fuzz harnesses. */
void device_register_io(void *opaque, struct bus_io *io);

/* Points interrupt `line` at (vector, cpu), both already checked (vector 0: disabled), and
 * stores them in dev->irq[line]. Called by device_register_io; the machine implements it. */
void device_route(struct device *dev, unsigned line, uint32_t vector, uint32_t cpu);

/* Every device type slate knows, in the order they are created. */
extern const struct device_ops *const device_types[];

#define DEVICE_MAX 32

/* Where one device instance sits in the machine: the same for --check and the real run. */
struct device_place {
    const struct device_ops *ops;
    unsigned index;         /* instance number: serial0, block1 */
    uint16_t port_base;     /* 0x1000 + 0x100 per device, in creation order */
    uint64_t window_gpa;    /* 0 without a window */
    uint64_t window_bytes;  /* window_size rounded up to 1 MiB (KVM slots are whole pages) */
};

/* Lays out every device instance cfg asks for. Returns how many, or -1 with err set when there
 * are more than DEVICE_MAX or their windows do not fit below SLATE_DEVICE_WINDOWS_END. */
int device_plan(const struct slate_config *cfg, struct device_place places[DEVICE_MAX], char *err,
                size_t errlen);

#endif
