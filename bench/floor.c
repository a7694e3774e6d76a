/* floor.c - the raw-KVM floor for slate's benchmarks: the least a VMM can do to run the bench
 * guests (one vCPU, one memslot, real mode at 0:0, port I/O only, no irqchip, no threads). Its
 * times are what slate's are measured against. Guest ABI: the slate hypercall port (0xFFFF) with
 * EAX = 0 nop, 1 exit (code in EDI); port 0xE9 prints a byte. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (2u << 20)

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(125);
}

static int checked_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
    int rc = ioctl(fd, req, arg);
    if (rc < 0)
        die(what);
    return rc;
}

static void load(uint8_t *ram, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    ssize_t n = read(fd, ram, RAM_SIZE);
    if (n <= 0)
        die(path);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: floor FLAT-BINARY\n");
        return 125;
    }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    int vm = checked_ioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
    uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ram == MAP_FAILED)
        die("mmap");
    load(ram, argv[1]);
    struct kvm_userspace_memory_region slot = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)ram};
    checked_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot, "KVM_SET_USER_MEMORY_REGION");
    int cpu = checked_ioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
    int run_size = checked_ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");

    struct kvm_sregs sregs;
    checked_ioctl(cpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    sregs.cs.selector = 0;
    sregs.cs.base = 0;
    checked_ioctl(cpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0, .rflags = 2};
    checked_ioctl(cpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

    /* Registers come back in kvm_run on every exit (KVM_CAP_SYNC_REGS): no GET/SET_REGS. */
    run->kvm_valid_regs = KVM_SYNC_X86_REGS;
    for (;;) {
        if (ioctl(cpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("KVM_RUN");
        }
        if (run->exit_reason != KVM_EXIT_IO) {
            fprintf(stderr, "floor: unexpected exit %u\n", run->exit_reason);
            return 126;
        }
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        if (run->io.direction != KVM_EXIT_IO_OUT)
            continue;
        if (run->io.port == 0xE9) {
            if (write(STDOUT_FILENO, data, 1) != 1)
                die("write");
        } else if (run->io.port == 0xFFFF) {
            struct kvm_regs *r = &run->s.regs.regs;
            if ((uint32_t)r->rax == 1)
                return (int)(r->rdi & 0x7F);
            r->rax = 0;
            run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
        }
    }
}
