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
#include <sys/uio.h>
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
    /* --record: the ring is worked through at NOTIFY exits, on the vCPU (the choice made at
     * start; after a recording turns into a replay, block_pio asks device_record_mode). */
    bool recording;
    bool replaying;       /* --replay: no image, no thread; the log writes what the disk did */
    uint32_t consumed;    /* requests taken from the ring; only the worker touches it */
    _Atomic uint32_t broken;
    /* Failed writes, discards and flushes since the guest last cleared WRITE_ERRORS. While it is
     * not 0, every FLUSH fails: Linux reports a writeback error once, then clears it, so a
     * retried fdatasync would say OK about data that never reached the disk. */
    _Atomic uint32_t write_errors;
    pthread_mutex_t lock; /* guards irq_status */
    /* Held by the worker while it works the ring, so a snapshot finds it between requests. */
    pthread_mutex_t io_lock;
    uint32_t irq_status;
    /* ,snapshot: fd is a private copy of the image; base_fd the image itself (read-only), and
     * `written` one bit per CHUNK of the copy the guest changed, so a snapshot saves them and
     * --each puts them back. */
    int base_fd;
    uint8_t *written;
    /* The image as the guest first saw it (size and modification time), to tell whether it
     * changed under a snapshot. */
    uint64_t base_bytes;
    int64_t base_mtime_ns;
    uint8_t *bounce;      /* aligned buffer for O_DIRECT when the guest's is not */
    struct ratelimit warn_limit; /* failed host I/O, which a guest can provoke at will */
};

static int transfer_run(struct disk *d, bool write, struct iovec *iov, unsigned count, uint64_t offset);

/* Full-length positioned I/O; returns 0 or -errno. A read past the end of a file gives zeroes. */
static int io_all(struct disk *d, bool write, uint8_t *buf, size_t len, uint64_t offset)
{
    struct iovec one = {buf, len};
    return transfer_run(d, write, &one, 1, offset);
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

#define CHUNK ((uint64_t)4096) /* the unit in which a ,snapshot disk's changes are tracked */

static void mark_written(struct disk *d, uint64_t sector, uint32_t count)
{
    if (!d->written)
        return;
    for (uint64_t c = sector * SECTOR / CHUNK; c <= ((sector + count) * SECTOR - 1) / CHUNK; c++)
        d->written[c / 8] |= (uint8_t)(1u << (c % 8));
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
    if (write)
        mark_written(d, req->sector, req->count);
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
    mark_written(d, req->sector, req->count);
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

/* ---- several adjacent requests in one system call ------------------------------------------- */

#define MERGE_MAX 32 /* requests taken from the ring at a time, and the most one preadv joins */

/* Whether req can go into one preadv/pwritev with others: a read or write that will succeed as
 * far as slate can tell (in range, RAM buffer, writable disk). O_DIRECT's alignment rules keep a
 * cache=none disk to one request at a time. */
static uint8_t *mergeable(struct disk *d, const struct slate_block_request *req)
{
    if ((req->op != SLATE_BLOCK_OP_READ && req->op != SLATE_BLOCK_OP_WRITE) || d->direct || check_range(d, req) ||
        (req->op == SLATE_BLOCK_OP_WRITE && d->spec->read_only))
        return NULL;
    return device_ram(d->dev, req->buffer, (size_t)req->count * SECTOR);
}

/* How many requests from reqs[0] one call can do: the same op, each starting where the last
 * ended. Their buffers go into iov. */
static unsigned merge_run(struct disk *d, const struct slate_block_request *reqs, unsigned n, struct iovec *iov)
{
    unsigned run = 0;
    for (; run < n; run++) {
        const struct slate_block_request *r = &reqs[run];
        if (run && (r->op != reqs[0].op || r->sector != reqs[run - 1].sector + reqs[run - 1].count))
            break;
        uint8_t *buf = mergeable(d, r);
        if (!buf)
            break;
        iov[run] = (struct iovec){buf, (size_t)r->count * SECTOR};
    }
    return run;
}

/* preadv or pwritev of the whole run (io_all's too), resumed after short transfers; a read past
 * the end of the file gives zeroes. 0 or -errno. */
static int transfer_run(struct disk *d, bool write, struct iovec *iov, unsigned count, uint64_t offset)
{
    while (count) {
        ssize_t n = write ? pwritev(d->fd, iov, (int)count, (off_t)offset) : preadv(d->fd, iov, (int)count, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (write)
                return -EIO;
            for (unsigned i = 0; i < count; i++)
                memset(iov[i].iov_base, 0, iov[i].iov_len);
            return 0;
        }
        offset += (uint64_t)n;
        size_t done = (size_t)n;
        for (; count && done >= iov->iov_len; iov++, count--)
            done -= iov->iov_len;
        if (count) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Carries out n requests in order, each status into status[]: runs of adjacent reads or writes
 * in one system call each; anything else, or a run the host fails, one by one (so every request
 * gets its own precise status). */
static void execute_all(struct disk *d, const struct slate_block_request *reqs, unsigned n, uint8_t *status)
{
    struct iovec iov[MERGE_MAX];
    for (unsigned i = 0; i < n;) {
        unsigned run = merge_run(d, reqs + i, n - i, iov);
        bool write = reqs[i].op == SLATE_BLOCK_OP_WRITE;
        if (run > 1) {
            for (unsigned k = 0; write && k < run; k++)
                mark_written(d, reqs[i + k].sector, reqs[i + k].count);
            if (transfer_run(d, write, iov, run, reqs[i].sector * SECTOR) == 0) {
                memset(status + i, SLATE_BLOCK_OK, run);
                i += run;
                continue;
            }
        }
        run = run > 1 ? run : 1;
        for (unsigned k = 0; k < run; k++)
            status[i + k] = execute(d, &reqs[i + k]);
        i += run;
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
 * cannot change a request between the check and the I/O. While it works, the ring's device_busy
 * says so and the guest need not ring NOTIFY; having caught up, it clears the flag and looks at
 * `submitted` once more (the guest may have decided not to ring just before the flag went down:
 * both sides store, fence, then load, so one of them sees the other). Interrupts: one per
 * completion, or with irq_batch N one per N and one on catching up. */
/* Recording: what the device wrote for request `n` of the ring (its slot, and a read's data) goes
 * into the log, so a replay can write it with no disk at all. */
static void note_request(struct disk *d, uint32_t n, const struct slate_block_request *req, uint8_t status)
{
    struct device *dev = d->dev;
    struct slate_block_ring *ring = dev->window;
    struct slate_block_request *slot = &ring->slots[n % SLATE_BLOCK_RING_SIZE];
    device_wrote(dev, dev->window_gpa + (uint64_t)((uint8_t *)slot - (uint8_t *)ring), slot, sizeof(*slot));
    uint64_t len = req->op == SLATE_BLOCK_OP_IDENTIFY ? sizeof(struct slate_block_identity)
                   : req->op == SLATE_BLOCK_OP_READ   ? (uint64_t)req->count * SECTOR
                                                      : 0;
    void *buf = len && (status == SLATE_BLOCK_OK || status == SLATE_BLOCK_IO_ERROR) && len <= MAX_BYTES
                    ? device_ram(dev, req->buffer, len)
                    : NULL;
    if (buf)
        device_wrote(dev, req->buffer, buf, len);
}

static void process_ring(struct disk *d)
{
    struct slate_block_ring *ring = d->dev->window;
    uint32_t unsignalled = 0;
    __atomic_store_n(&ring->device_busy, 1, __ATOMIC_SEQ_CST);
    while (!atomic_load(&d->broken)) {
        uint32_t submitted = __atomic_load_n(&ring->submitted, __ATOMIC_ACQUIRE);
        if (submitted == d->consumed) {
            if (unsignalled)
                raise_completion(d);
            unsignalled = 0;
            __atomic_store_n(&ring->device_busy, 0, __ATOMIC_SEQ_CST);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(&ring->submitted, __ATOMIC_ACQUIRE) == d->consumed)
                return;
            __atomic_store_n(&ring->device_busy, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        if (submitted - d->consumed > SLATE_BLOCK_RING_SIZE) {
            device_warn(d->dev, "%s: the guest submitted %u requests with %u outstanding (the ring holds %d); "
                     "the device stops (ERROR register set)", d->dev->name, submitted - d->consumed,
                     d->consumed - __atomic_load_n(&ring->completed, __ATOMIC_RELAXED),
                     SLATE_BLOCK_RING_SIZE);
            atomic_store(&d->broken, 1);
            break;
        }
        while (d->consumed != submitted) {
            struct slate_block_request reqs[MERGE_MAX];
            uint8_t status[MERGE_MAX];
            unsigned n = submitted - d->consumed < MERGE_MAX ? submitted - d->consumed : MERGE_MAX;
            for (unsigned i = 0; i < n; i++)
                memcpy(&reqs[i], &ring->slots[(d->consumed + i) % SLATE_BLOCK_RING_SIZE], sizeof(reqs[i]));
            execute_all(d, reqs, n, status);
            for (unsigned i = 0; i < n; i++) {
                __atomic_store_n(&ring->slots[d->consumed % SLATE_BLOCK_RING_SIZE].status, status[i], __ATOMIC_RELAXED);
                if (d->recording)
                    note_request(d, d->consumed, &reqs[i], status[i]);
                d->consumed++;
                __atomic_store_n(&ring->completed, d->consumed, __ATOMIC_RELEASE);
                /* Per request unless batched: the guest can refill the ring while the rest
                 * run. Until the guest acknowledges, raising is only a lock and a test. */
                uint32_t batch = __atomic_load_n(&ring->irq_batch, __ATOMIC_RELAXED);
                if (++unsignalled >= batch) {
                    raise_completion(d);
                    unsignalled = 0;
                }
            }
        }
    }
    if (unsignalled)
        raise_completion(d);
    __atomic_store_n(&ring->device_busy, 0, __ATOMIC_RELEASE); /* broken: NOTIFY is harmless */
}

/* The ring's header as the device left it (completed, device_busy), for the log. */
static void note_ring_header(struct disk *d)
{
    device_wrote(d->dev, d->dev->window_gpa, d->dev->window, offsetof(struct slate_block_ring, reserved));
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
        pthread_mutex_lock(&d->io_lock);
        process_ring(d);
        pthread_mutex_unlock(&d->io_lock);
        if (fds[1].revents & POLLIN)
            break;
    }
    return NULL;
}

static void block_pio(struct device *dev, struct bus_io *io)
{
    struct disk *d = dev->state;
    enum device_record_mode mode = device_record_mode(dev); /* (a crashed recording replays) */
    if (io->is_write) {
        if (io->offset == SLATE_BLOCK_NOTIFY && mode == DEVICE_RECORDING) { /* the work, at this exit */
            pthread_mutex_lock(&d->io_lock);
            process_ring(d);
            note_ring_header(d);
            pthread_mutex_unlock(&d->io_lock);
        } else if (io->offset == SLATE_BLOCK_NOTIFY && mode == DEVICE_LIVE) {
            eventfd_write(d->notify_fd, 1); /* a notify narrower than 32 bits lands here */
        }
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
    bool shared = spec->read_only || spec->overlay; /* the image itself is only read */
    int flags = (shared ? O_RDONLY : O_RDWR) | O_CLOEXEC;
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
    if (flock(d->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
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
    d->base_bytes = bytes;
    d->base_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
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

/* Copies len bytes of `from` at off into `to`, data extents only: holes stay holes. */
static int copy_extents(int from, int to, uint64_t len)
{
    for (off_t off = 0; (uint64_t)off < len;) {
        off_t data = lseek(from, off, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno; /* ENXIO: only a hole is left */
        off_t hole = lseek(from, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        for (off_t in = data; in < hole;) {
            off_t out = in;
            ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(hole - in), 0);
            if (n > 0)
                continue;
            if (n < 0 && errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
                return -errno;
            char buf[65536]; /* no copy_file_range here: by hand */
            size_t want = sizeof(buf) < (size_t)(hole - in) ? sizeof(buf) : (size_t)(hole - in);
            ssize_t got = pread(from, buf, want, in);
            if (got <= 0 || pwrite(to, buf, (size_t)got, in) != got)
                return got < 0 ? -errno : -EIO;
            in += got;
        }
        off = hole;
    }
    return 0;
}

/* ,snapshot: the guest gets a private copy of the image, an unnamed file that disappears with
 * slate (beside the image, else in $TMPDIR or /var/tmp). A reflink where the file system has
 * them (btrfs, XFS) costs nothing; elsewhere the data is copied, holes kept. */
static int disk_make_overlay(struct disk *d)
{
    const char *path = d->spec->path, *tmpdir = getenv("TMPDIR");
    char dir[LOAD_PATH_MAX];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    const char *dirs[] = {dir, tmpdir && *tmpdir ? tmpdir : "/var/tmp", "/tmp"};
    int fd = -1;
    for (size_t i = 0; i < 3 && fd < 0; i++)
        fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("%s: ,snapshot: cannot create its private copy: %s", path, strerror(errno));
        return -1;
    }
    int rc = ioctl(fd, FICLONE, d->fd) == 0 ? 0 : copy_extents(d->fd, fd, d->base_bytes);
    if (rc == 0 && ftruncate(fd, (off_t)d->base_bytes) < 0)
        rc = -errno;
    uint64_t chunks = (d->base_bytes + CHUNK - 1) / CHUNK;
    if (rc == 0 && !(d->written = calloc((chunks + 7) / 8, 1)))
        rc = -ENOMEM;
    if (rc) {
        log_error("%s: ,snapshot: cannot copy the image: %s", path, strerror(-rc));
        close(fd);
        return -1;
    }
    d->base_fd = d->fd;
    d->fd = fd;
    d->direct = false;
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
    if (d->recording)
        return 0; /* no thread: the work happens at the guest's NOTIFY exits (block_pio) */
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
        return error_text(err, errlen, "--disk %s: expected PATH[,ro][,snapshot][,cache=writeback|none]", arg);
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
        else if (len == 8 && !strncmp(opt, "snapshot", 8))
            disk.overlay = true;
        else
            return error_text(err, errlen, "--disk %s: unknown option '%.*s' (expected ro, "
                        "snapshot, cache=writeback or cache=none)", arg, (int)len, opt);
    }
    cfg->disks[cfg->disk_count++] = disk;
    return 0;
}

static const struct device_option block_options[] = {
    {"disk", true,
     "  --disk PATH[,ro][,snapshot][,cache=writeback|none]\n"
     "                         a raw disk image or block device (repeatable, up to 8);\n"
     "                         locked while in use; ,snapshot: writes go to a private\n"
     "                         copy dropped at exit; cache=none uses O_DIRECT\n",
     parse_disk},
    {0},
};

static unsigned block_instances(const struct slate_config *cfg) { return cfg->disk_count; }

/* Before KVM: the image opens, locks (released again on close) and has at least one sector. */
static int block_check(const struct slate_config *cfg, unsigned index)
{
    if (cfg->replay_path)
        return 0; /* a replay reads nothing from the disk: the log has what it gave */
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
                       .base_fd = -1, .notify_fd = -1, .stop_fd = -1, .warn_limit = RATELIMIT_INIT};
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->io_lock, NULL);
    d->recording = device_record_mode(dev) == DEVICE_RECORDING;
    d->replaying = device_record_mode(dev) == DEVICE_REPLAYING;
    if (d->replaying)
        return 0; /* no image, no thread: reads and the ring's changes come from the log */
    if (disk_open(d, true) || (d->spec->overlay && disk_make_overlay(d)))
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
    if (d->fd >= 0 && !d->spec->read_only && !d->spec->overlay && fdatasync(d->fd) < 0)
        log_warn("%s: %s: the final flush failed: %s", d->dev->name, d->spec->path, strerror(errno));
    if (d->fd >= 0 && close(d->fd) < 0) /* also drops the lock */
        log_warn("%s: %s: close: %s", d->dev->name, d->spec->path, strerror(errno));
    if (d->notify_fd >= 0)
        close(d->notify_fd);
    if (d->stop_fd >= 0)
        close(d->stop_fd);
    if (d->base_fd >= 0)
        close(d->base_fd);
    free(d->written);
    free(d->bounce);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->io_lock);
    free(d);
    dev->state = NULL;
}

/* ---- snapshots -------------------------------------------------------------------------------- */

/* The ring position, the error registers, which image it was (its size and modification time
 * then), and for a ,snapshot disk every chunk the guest changed in its private copy. */
struct saved_disk {
    uint64_t capacity, bytes;
    int64_t mtime_ns;
    uint32_t consumed, irq_status, write_errors, broken;
    uint64_t chunks; /* followed by that many: the chunk's index (8 bytes), its CHUNK bytes */
};

static int block_save(struct device *dev, struct device_state *out)
{
    struct disk *d = dev->state;
    pthread_mutex_lock(&d->io_lock);
    process_ring(d); /* what the guest submitted is done before the snapshot, as a disk would */
    struct saved_disk st = {.capacity = d->capacity, .bytes = d->base_bytes, .mtime_ns = d->base_mtime_ns,
                            .consumed = d->consumed, .write_errors = atomic_load(&d->write_errors),
                            .broken = atomic_load(&d->broken)};
    struct stat now;
    if (!d->spec->overlay && fstat(d->fd, &now) == 0) /* the guest's own writes changed it */
        st.mtime_ns = (int64_t)now.st_mtim.tv_sec * 1000000000 + now.st_mtim.tv_nsec;
    pthread_mutex_lock(&d->lock);
    st.irq_status = d->irq_status;
    pthread_mutex_unlock(&d->lock);
    uint64_t chunks = (d->base_bytes + CHUNK - 1) / CHUNK;
    for (uint64_t c = 0; d->written && c < chunks; c++)
        st.chunks += (d->written[c / 8] >> (c % 8)) & 1;
    device_state_put(out, &st, sizeof(st));
    int rc = 0;
    for (uint64_t c = 0; d->written && c < chunks && !rc; c++) {
        if (!((d->written[c / 8] >> (c % 8)) & 1))
            continue;
        uint8_t data[CHUNK] = {0};
        if (pread(d->fd, data, CHUNK, (off_t)(c * CHUNK)) < 0)
            rc = -errno;
        device_state_put(out, &c, sizeof(c));
        device_state_put(out, data, CHUNK);
    }
    pthread_mutex_unlock(&d->io_lock);
    if (rc)
        log_error("%s: cannot read its private copy: %s", dev->name, strerror(-rc));
    return rc ? -1 : 0;
}

/* Puts chunk c of the private copy back to the image's own data. */
static int revert_chunk(struct disk *d, uint64_t c)
{
    uint8_t data[CHUNK] = {0};
    ssize_t n = pread(d->base_fd, data, CHUNK, (off_t)(c * CHUNK));
    return n >= 0 && pwrite(d->fd, data, (size_t)n, (off_t)(c * CHUNK)) == n ? 0 : -1;
}

static int block_load(struct device *dev, struct device_state *in)
{
    struct disk *d = dev->state;
    const char *path = d->spec->path;
    struct saved_disk st;
    uint64_t chunks = (d->base_bytes + CHUNK - 1) / CHUNK;
    if (!device_state_get(in, &st, sizeof(st)) || st.broken > 1 || st.irq_status > 1 ||
        st.chunks > chunks || (in->len - in->pos) != st.chunks * (8 + CHUNK)) {
        log_error("%s: the saved disk state is malformed", dev->name);
        return -1;
    }
    if (st.capacity != d->capacity) {
        log_error("%s: %s has %" PRIu64 " sectors; the snapshot's disk had %" PRIu64, dev->name, path,
                  d->capacity, st.capacity);
        return -1;
    }
    if (st.chunks && !d->spec->overlay) {
        log_error("%s: the snapshot holds %" PRIu64 " KiB the guest wrote to its private copy; restore "
                  "with --disk %s,snapshot", dev->name, st.chunks * CHUNK / 1024, path);
        return -1;
    }
    if (st.bytes != d->base_bytes || st.mtime_ns != d->base_mtime_ns) {
        if (!d->spec->read_only && !d->spec->overlay) {
            log_error("%s: %s changed since the snapshot (its size or modification time differ): "
                      "restore with --disk %s,snapshot or ,ro to use it as it is now", dev->name, path, path);
            return -1;
        }
        log_warn("%s: %s changed since the snapshot; the guest sees it as it is now", dev->name, path);
    }
    pthread_mutex_lock(&d->io_lock);
    int rc = 0;
    for (uint64_t c = 0; d->written && c < chunks && !rc; c++) /* (--each) the last case's writes */
        if ((d->written[c / 8] >> (c % 8)) & 1)
            rc = revert_chunk(d, c);
    if (d->written)
        memset(d->written, 0, (chunks + 7) / 8);
    for (uint64_t i = 0; i < st.chunks && !rc; i++) {
        uint64_t c;
        uint8_t data[CHUNK];
        device_state_get(in, &c, sizeof(c));
        device_state_get(in, data, CHUNK);
        uint64_t len = c < chunks ? (c + 1 < chunks ? CHUNK : d->base_bytes - c * CHUNK) : 0;
        if (!len) {
            log_error("%s: the saved disk state is malformed", dev->name);
            rc = -1;
        } else if (pwrite(d->fd, data, len, (off_t)(c * CHUNK)) != (ssize_t)len) {
            rc = -1;
        } else {
            d->written[c / 8] |= (uint8_t)(1u << (c % 8));
        }
    }
    d->consumed = st.consumed;
    atomic_store(&d->write_errors, st.write_errors);
    atomic_store(&d->broken, st.broken);
    pthread_mutex_lock(&d->lock);
    d->irq_status = st.irq_status;
    pthread_mutex_unlock(&d->lock);
    pthread_mutex_unlock(&d->io_lock);
    if (rc)
        log_error("%s: cannot write its private copy", dev->name);
    return rc;
}

const struct device_ops block_device = {
    .name = "disk",
    .type = SLATE_DEV_BLOCK,
    .version = 2,
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
    .state_version = 1,
    .save = block_save,
    .load = block_load,
};
