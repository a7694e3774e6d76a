/* dev_block.c - the block device (type 7): a raw image or block device behind a request ring in
 * shared memory. The guest's doorbell is a KVM ioeventfd, so submitting costs no exit to user
 * space; a worker thread per disk does the I/O off the vCPUs and completes through the irqfd. */
#define _FILE_OFFSET_BITS 64
#include "device.h"
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR SLATE_BLOCK_SECTOR_SIZE
#define DIRECT_ALIGN 4096 /* memory alignment for O_DIRECT; offsets need one sector */
#define MAX_BYTES ((size_t)SLATE_BLOCK_MAX_SECTORS * SECTOR)

struct disk {
    struct device *dev;
    const struct disk_spec *spec;
    unsigned index;
    int fd;
    bool direct;          /* opened with O_DIRECT */
    uint64_t capacity;    /* sectors */
    int notify_fd;        /* the ioeventfd behind NOTIFY */
    int stop_fd;          /* written once at teardown */
    pthread_t worker;
    bool worker_started;
    uint32_t consumed;    /* requests taken from the ring; only the worker touches it */
    _Atomic uint32_t broken;
    /* Failed writes, discards and flushes since the guest last cleared WRITE_ERRORS. While it is
     * not 0, every FLUSH fails: Linux reports a writeback error once, then clears it, so a
     * retried fdatasync would say OK about data that never reached the disk. */
    _Atomic uint32_t write_errors;
    pthread_mutex_t lock; /* guards irq_status */
    uint32_t irq_status;
    uint8_t *bounce;      /* aligned buffer for O_DIRECT when the guest's is not */
    struct ratelimit warn_limit; /* failed host I/O, which a guest can provoke at will */
};

/* Full-length positioned I/O; returns 0 or -errno. A read past the end of a file gives zeroes. */
static int io_all(struct disk *d, bool write, uint8_t *buf, size_t len, uint64_t offset)
{
    while (len) {
        ssize_t n = write ? pwrite(d->fd, buf, len, (off_t)offset) : pread(d->fd, buf, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (write)
                return -EIO;
            memset(buf, 0, len);
            return 0;
        }
        buf += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* O_DIRECT needs aligned memory: a guest buffer that is not goes through the bounce buffer. */
static int disk_transfer(struct disk *d, bool write, uint8_t *guest, size_t len, uint64_t offset)
{
    if (!d->direct || ((uintptr_t)guest % DIRECT_ALIGN == 0 && len % DIRECT_ALIGN == 0))
        return io_all(d, write, guest, len, offset);
    if (write)
        memcpy(d->bounce, guest, len);
    int rc = io_all(d, write, d->bounce, len, offset);
    if (!write && rc == 0)
        memcpy(guest, d->bounce, len);
    return rc;
}

static uint8_t check_range(const struct disk *d, const struct slate_block_request *req)
{
    if (req->count == 0 || req->count > SLATE_BLOCK_MAX_SECTORS || req->sector >= d->capacity ||
        req->count > d->capacity - req->sector)
        return SLATE_BLOCK_OUT_OF_RANGE;
    return SLATE_BLOCK_OK;
}

static uint8_t do_rw(struct disk *d, const struct slate_block_request *req, bool write)
{
    uint8_t status = check_range(d, req);
    if (status)
        return status;
    size_t len = (size_t)req->count * SECTOR;
    uint8_t *buf = device_ram(d->dev, req->buffer, len);
    if (!buf)
        return SLATE_BLOCK_BAD_BUFFER;
    if (write && d->spec->read_only)
        return SLATE_BLOCK_READ_ONLY_ERR;
    int rc = disk_transfer(d, write, buf, len, req->sector * SECTOR);
    if (rc) {
        log_warn_limited(&d->warn_limit, "%s: %s of %u sectors at %" PRIu64 " failed: %s",
                         d->dev->name, write ? "write" : "read", req->count, req->sector,
                         strerror(-rc));
        if (write)
            atomic_fetch_add(&d->write_errors, 1);
        return SLATE_BLOCK_IO_ERROR;
    }
    return SLATE_BLOCK_OK;
}

static uint8_t do_flush(struct disk *d)
{
    if (d->spec->read_only)
        return SLATE_BLOCK_OK; /* nothing of ours to make durable */
    if (fdatasync(d->fd) < 0) {
        log_warn_limited(&d->warn_limit, "%s: fdatasync: %s", d->dev->name, strerror(errno));
        atomic_fetch_add(&d->write_errors, 1);
        return SLATE_BLOCK_IO_ERROR;
    }
    /* Sticky: a write that failed earlier is lost whatever this fdatasync says. */
    return atomic_load(&d->write_errors) ? SLATE_BLOCK_IO_ERROR : SLATE_BLOCK_OK;
}

static uint8_t do_discard(struct disk *d, const struct slate_block_request *req)
{
    uint8_t status = check_range(d, req);
    if (status)
        return status;
    if (d->spec->read_only)
        return SLATE_BLOCK_READ_ONLY_ERR;
    if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(req->sector * SECTOR),
                  (off_t)req->count * SECTOR) < 0) {
        if (errno == EOPNOTSUPP || errno == ENODEV)
            return SLATE_BLOCK_UNSUPPORTED;
        atomic_fetch_add(&d->write_errors, 1);
        return SLATE_BLOCK_IO_ERROR;
    }
    return SLATE_BLOCK_OK;
}

static uint8_t do_identify(struct disk *d, const struct slate_block_request *req)
{
    struct slate_block_identity *id = device_ram(d->dev, req->buffer, sizeof(*id));
    if (!id)
        return SLATE_BLOCK_BAD_BUFFER;
    struct slate_block_identity local = {
        .capacity = d->capacity,
        .sector_size = SECTOR,
        .flags = d->spec->read_only ? SLATE_BLOCK_READ_ONLY : 0,
        .model = "slate disk",
    };
    snprintf(local.serial, sizeof(local.serial), "slate-disk-%u", d->index);
    memcpy(id, &local, sizeof(local));
    return SLATE_BLOCK_OK;
}

static uint8_t execute(struct disk *d, const struct slate_block_request *req)
{
    switch (req->op) {
    case SLATE_BLOCK_OP_READ: return do_rw(d, req, false);
    case SLATE_BLOCK_OP_WRITE: return do_rw(d, req, true);
    case SLATE_BLOCK_OP_FLUSH: return do_flush(d);
    case SLATE_BLOCK_OP_DISCARD: return do_discard(d, req);
    case SLATE_BLOCK_OP_IDENTIFY: return do_identify(d, req);
    default: return SLATE_BLOCK_UNSUPPORTED;
    }
}

static void raise_completion(struct disk *d)
{
    pthread_mutex_lock(&d->lock);
    if (!(d->irq_status & 1)) {
        d->irq_status |= 1;
        device_raise(d->dev, 0);
    }
    pthread_mutex_unlock(&d->lock);
}

/* Takes every submitted request in order. Each slot is copied before it is checked, so the guest
 * cannot change a request between the check and the I/O. */
static void process_ring(struct disk *d)
{
    struct slate_block_ring *ring = d->dev->window;
    while (!atomic_load(&d->broken)) {
        uint32_t submitted = __atomic_load_n(&ring->submitted, __ATOMIC_ACQUIRE);
        if (submitted == d->consumed)
            return;
        if (submitted - d->consumed > SLATE_BLOCK_RING_SIZE) {
            device_warn(d->dev, "%s: the guest submitted %u requests with %u outstanding (the ring holds %d); "
                     "the device stops (ERROR register set)", d->dev->name, submitted - d->consumed,
                     d->consumed - __atomic_load_n(&ring->completed, __ATOMIC_RELAXED),
                     SLATE_BLOCK_RING_SIZE);
            atomic_store(&d->broken, 1);
            return;
        }
        while (d->consumed != submitted) {
            struct slate_block_request *slot = &ring->slots[d->consumed % SLATE_BLOCK_RING_SIZE];
            struct slate_block_request req;
            memcpy(&req, (const void *)slot, sizeof(req));
            uint8_t status = execute(d, &req);
            __atomic_store_n(&slot->status, status, __ATOMIC_RELAXED);
            d->consumed++;
            __atomic_store_n(&ring->completed, d->consumed, __ATOMIC_RELEASE);
            /* Per request, not per batch: the guest can refill the ring while the rest run.
             * Until the guest acknowledges, this is only a lock and a test. */
            raise_completion(d);
        }
    }
}

static void *disk_worker(void *arg)
{
    struct disk *d = arg;
    struct pollfd fds[2] = {{.fd = d->notify_fd, .events = POLLIN}, {.fd = d->stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        uint64_t count;
        if (fds[0].revents & POLLIN && read(d->notify_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
            break;
        /* Stopping: the vCPUs have stopped, so what is in the ring is all there will be. Finish it:
         * a request the guest saw submitted is carried out, as a disk would. */
        process_ring(d);
        if (fds[1].revents & POLLIN)
            break;
    }
    return NULL;
}

static void block_pio(struct device *dev, struct bus_io *io)
{
    struct disk *d = dev->state;
    if (io->is_write) {
        if (io->offset == SLATE_BLOCK_NOTIFY) /* a notify narrower than 32 bits lands here */
            eventfd_write(d->notify_fd, 1);
        else if (io->offset == SLATE_BLOCK_IRQ_STATUS) {
            pthread_mutex_lock(&d->lock);
            d->irq_status &= ~(uint32_t)io->value;
            pthread_mutex_unlock(&d->lock);
        } else if (io->offset == SLATE_BLOCK_WRITE_ERRORS) {
            atomic_store(&d->write_errors, 0); /* the guest knows what was lost */
        }
        return;
    }
    switch (io->offset) {
    case SLATE_BLOCK_CAPACITY_LO: io->value = (uint32_t)d->capacity; break;
    case SLATE_BLOCK_CAPACITY_HI: io->value = (uint32_t)(d->capacity >> 32); break;
    case SLATE_BLOCK_FLAGS: io->value = d->spec->read_only ? SLATE_BLOCK_READ_ONLY : 0; break;
    case SLATE_BLOCK_IRQ_STATUS:
        pthread_mutex_lock(&d->lock);
        io->value = d->irq_status;
        pthread_mutex_unlock(&d->lock);
        break;
    case SLATE_BLOCK_ERROR: io->value = atomic_load(&d->broken); break;
    case SLATE_BLOCK_WRITE_ERRORS: io->value = atomic_load(&d->write_errors); break;
    default: io->value = 0;
    }
}

static void block_irq_enabled(struct device *dev, unsigned line)
{
    struct disk *d = dev->state;
    pthread_mutex_lock(&d->lock);
    if (d->irq_status)
        device_raise(dev, line);
    pthread_mutex_unlock(&d->lock);
}

/* Opens and locks the image, and finds its size. Logs "PATH: why" and returns -1 on failure. */
static int disk_open(struct disk *d, bool warn)
{
    const struct disk_spec *spec = d->spec;
    int flags = (spec->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    d->fd = open(spec->path, flags | (spec->cache_none ? O_DIRECT : 0));
    if (d->fd < 0 && spec->cache_none && errno == EINVAL) {
        if (warn)
            log_warn("%s: the file system does not support O_DIRECT; cache=none falls back to the page "
                 "cache (flushes still reach stable storage)", spec->path);
        d->fd = open(spec->path, flags);
    } else {
        d->direct = spec->cache_none;
    }
    if (d->fd < 0) {
        log_error("%s: %s", spec->path, strerror(errno));
        return -1;
    }
    if (flock(d->fd, (spec->read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        log_error("%s: %s", spec->path, errno == EWOULDBLOCK
                  ? "in use by another process (the image is locked; use ,ro in both to share it)"
                  : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(d->fd, &st) < 0) {
        log_error("%s: %s", spec->path, strerror(errno));
        return -1;
    }
    uint64_t bytes = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(d->fd, BLKGETSIZE64, &bytes) < 0) {
        log_error("%s: BLKGETSIZE64: %s", spec->path, strerror(errno));
        return -1;
    } else if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
        log_error("%s: not a regular file or block device", spec->path);
        return -1;
    }
    d->capacity = bytes / SECTOR;
    if (d->capacity == 0) {
        log_error("%s: the image is smaller than one sector (make one: truncate -s 64M %s)",
                  spec->path, spec->path);
        return -1;
    }
    if (bytes % SECTOR && warn)
        log_warn("%s: the last %" PRIu64 " bytes are not a whole sector; the guest cannot see them",
                 spec->path, bytes % SECTOR);
    return 0;
}

static int disk_start(struct disk *d)
{
    d->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (d->notify_fd < 0 || d->stop_fd < 0) {
        log_error("%s: eventfd: %s", d->dev->name, strerror(errno));
        return -1;
    }
    if (device_doorbell(d->dev, SLATE_BLOCK_NOTIFY, d->notify_fd))
        return -1;
    int rc = pthread_create(&d->worker, NULL, disk_worker, d);
    if (rc) {
        log_error("%s: cannot start its I/O thread: %s", d->dev->name, strerror(rc));
        return -1;
    }
    d->worker_started = true;
    return 0;
}

/* ---- --disk ------------------------------------------------------------------------------------ */

/* PATH[,ro][,cache=writeback|none]. A path containing commas is not supported. */
static int parse_disk(struct slate_config *cfg, const char *arg, char *err, size_t errlen)
{
    if (cfg->disk_count == MAX_DISKS)
        return error_text(err, errlen, "--disk: at most %d disks", MAX_DISKS);
    struct disk_spec disk = {0};
    const char *comma = strchr(arg, ',');
    size_t path_len = comma ? (size_t)(comma - arg) : strlen(arg);
    if (path_len == 0)
        return error_text(err, errlen, "--disk %s: expected PATH[,ro][,cache=writeback|none]", arg);
    if (path_len >= LOAD_PATH_MAX)
        return error_text(err, errlen, "--disk: the file name is longer than %d bytes", LOAD_PATH_MAX - 1);
    memcpy(disk.path, arg, path_len);
    while (comma) {
        const char *opt = comma + 1;
        comma = strchr(opt, ',');
        size_t len = comma ? (size_t)(comma - opt) : strlen(opt);
        if (len == 2 && !strncmp(opt, "ro", 2))
            disk.read_only = true;
        else if (len == 15 && !strncmp(opt, "cache=writeback", 15))
            disk.cache_none = false;
        else if (len == 10 && !strncmp(opt, "cache=none", 10))
            disk.cache_none = true;
        else
            return error_text(err, errlen, "--disk %s: unknown option '%.*s' (expected ro, "
                        "cache=writeback or cache=none)", arg, (int)len, opt);
    }
    cfg->disks[cfg->disk_count++] = disk;
    return 0;
}

static const struct device_option block_options[] = {
    {"disk", true,
     "  --disk PATH[,ro][,cache=writeback|none]\n"
     "                         a raw disk image or block device (repeatable, up to 8);\n"
     "                         locked while in use; cache=none uses O_DIRECT\n",
     parse_disk},
    {0},
};

static unsigned block_instances(const struct slate_config *cfg) { return cfg->disk_count; }

/* Before KVM: the image opens, locks (released again on close) and has at least one sector. */
static int block_check(const struct slate_config *cfg, unsigned index)
{
    struct disk probe = {.spec = &cfg->disks[index], .fd = -1};
    int rc = disk_open(&probe, false);
    if (probe.fd >= 0)
        close(probe.fd);
    return rc;
}

static int block_setup(struct device *dev, unsigned index)
{
    struct disk *d = calloc(1, sizeof(*d));
    if (!d) {
        log_error("out of memory");
        return -ENOMEM;
    }
    dev->state = d;
    *d = (struct disk){.dev = dev, .spec = &device_config(dev)->disks[index], .index = index, .fd = -1,
                       .notify_fd = -1, .stop_fd = -1, .warn_limit = RATELIMIT_INIT};
    pthread_mutex_init(&d->lock, NULL);
    if (disk_open(d, true))
        return -EIO;
    if (d->direct && posix_memalign((void **)&d->bounce, DIRECT_ALIGN, MAX_BYTES)) {
        log_error("out of memory");
        return -ENOMEM;
    }
    return disk_start(d) ? -EIO : 0;
}

static void block_teardown(struct device *dev)
{
    struct disk *d = dev->state;
    if (!d)
        return;
    if (d->worker_started) {
        eventfd_write(d->stop_fd, 1);
        pthread_join(d->worker, NULL);
    }
    /* A last flush: what the guest wrote without flushing reaches the disk, and a failure is
     * told, not lost in close(). */
    if (d->fd >= 0 && !d->spec->read_only && fdatasync(d->fd) < 0)
        log_warn("%s: %s: the final flush failed: %s", d->dev->name, d->spec->path, strerror(errno));
    if (d->fd >= 0 && close(d->fd) < 0) /* also drops the lock */
        log_warn("%s: %s: close: %s", d->dev->name, d->spec->path, strerror(errno));
    if (d->notify_fd >= 0)
        close(d->notify_fd);
    if (d->stop_fd >= 0)
        close(d->stop_fd);
    free(d->bounce);
    pthread_mutex_destroy(&d->lock);
    free(d);
    dev->state = NULL;
}

const struct device_ops block_device = {
    .name = "disk",
    .type = SLATE_DEV_BLOCK,
    .version = 1,
    .port_count = 0x40,
    .window_size = sizeof(struct slate_block_ring),
    .irq_reg = SLATE_BLOCK_IRQ_REG,
    .irq_status_reg = SLATE_BLOCK_IRQ_STATUS,
    .irq_count = 1,
    .options = block_options,
    .instances = block_instances,
    .check = block_check,
    .setup = block_setup,
    .pio = block_pio,
    .irq_enabled = block_irq_enabled,
    .teardown = block_teardown,
};
