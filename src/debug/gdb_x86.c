/* gdb_x86.c - the x86 and KVM side of the gdb stub: the register set gdb is told about, reading
 * and writing it through KVM, the debug registers' encoding, and what this KVM can do. */
#include "gdb_x86.h"

#include "cpu_state.h"
#include "log.h"
#include "replay.h"

#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

const char gdb_target_xml[] =
    "<?xml version=\"1.0\"?><!DOCTYPE target SYSTEM \"gdb-target.dtd\">"
    "<target version=\"1.0\"><architecture>i386:x86-64</architecture>"
    "<feature name=\"org.gnu.gdb.i386.core\">"
    "<reg name=\"rax\" bitsize=\"64\" type=\"int64\"/><reg name=\"rbx\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"rcx\" bitsize=\"64\" type=\"int64\"/><reg name=\"rdx\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"rsi\" bitsize=\"64\" type=\"int64\"/><reg name=\"rdi\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"rbp\" bitsize=\"64\" type=\"data_ptr\"/><reg name=\"rsp\" bitsize=\"64\" type=\"data_ptr\"/>"
    "<reg name=\"r8\" bitsize=\"64\" type=\"int64\"/><reg name=\"r9\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"r10\" bitsize=\"64\" type=\"int64\"/><reg name=\"r11\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"r12\" bitsize=\"64\" type=\"int64\"/><reg name=\"r13\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"r14\" bitsize=\"64\" type=\"int64\"/><reg name=\"r15\" bitsize=\"64\" type=\"int64\"/>"
    "<reg name=\"rip\" bitsize=\"64\" type=\"code_ptr\"/><reg name=\"eflags\" bitsize=\"32\" type=\"int32\"/>"
    "<reg name=\"cs\" bitsize=\"32\" type=\"int32\"/><reg name=\"ss\" bitsize=\"32\" type=\"int32\"/>"
    "<reg name=\"ds\" bitsize=\"32\" type=\"int32\"/><reg name=\"es\" bitsize=\"32\" type=\"int32\"/>"
    "<reg name=\"fs\" bitsize=\"32\" type=\"int32\"/><reg name=\"gs\" bitsize=\"32\" type=\"int32\"/>"
    "<reg name=\"st0\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st1\" bitsize=\"80\" type=\"i387_ext\"/>"
    "<reg name=\"st2\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st3\" bitsize=\"80\" type=\"i387_ext\"/>"
    "<reg name=\"st4\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st5\" bitsize=\"80\" type=\"i387_ext\"/>"
    "<reg name=\"st6\" bitsize=\"80\" type=\"i387_ext\"/><reg name=\"st7\" bitsize=\"80\" type=\"i387_ext\"/>"
    "<reg name=\"fctrl\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"fstat\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"ftag\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"fiseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"fioff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"foseg\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"fooff\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "<reg name=\"fop\" bitsize=\"32\" type=\"int\" group=\"float\"/>"
    "</feature><feature name=\"org.gnu.gdb.i386.sse\">"
    "<vector id=\"v4f\" type=\"ieee_single\" count=\"4\"/><vector id=\"v2d\" type=\"ieee_double\" count=\"2\"/>"
    "<vector id=\"v16i8\" type=\"int8\" count=\"16\"/><vector id=\"v8i16\" type=\"int16\" count=\"8\"/>"
    "<vector id=\"v4i32\" type=\"int32\" count=\"4\"/><vector id=\"v2i64\" type=\"int64\" count=\"2\"/>"
    "<union id=\"vec128\"><field name=\"v4_float\" type=\"v4f\"/><field name=\"v2_double\" type=\"v2d\"/>"
    "<field name=\"v16_int8\" type=\"v16i8\"/><field name=\"v8_int16\" type=\"v8i16\"/>"
    "<field name=\"v4_int32\" type=\"v4i32\"/><field name=\"v2_int64\" type=\"v2i64\"/>"
    "<field name=\"uint128\" type=\"uint128\"/></union>"
    "<reg name=\"xmm0\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm1\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm2\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm3\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm4\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm5\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm6\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm7\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm8\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm9\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm10\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm11\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm12\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm13\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"xmm14\" bitsize=\"128\" type=\"vec128\"/><reg name=\"xmm15\" bitsize=\"128\" type=\"vec128\"/>"
    "<reg name=\"mxcsr\" bitsize=\"32\" type=\"int\" group=\"vector\"/>"
    "</feature><feature name=\"org.gnu.gdb.i386.segments\">"
    "<reg name=\"fs_base\" bitsize=\"64\" type=\"int\"/><reg name=\"gs_base\" bitsize=\"64\" type=\"int\"/>"
    "</feature><feature name=\"org.slate.x86.control\">"
    "<reg name=\"cr0\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "<reg name=\"cr2\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "<reg name=\"cr3\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "<reg name=\"cr4\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "<reg name=\"cr8\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "<reg name=\"efer\" bitsize=\"64\" type=\"int\" group=\"system\"/>"
    "</feature></target>";

bool gdb_load_state(struct vcpu *cpu, struct gdb_regs *st)
{
    struct cpu_state cs = {0};
    if (cpu_state_get(cpu, CPU_REGS | CPU_SREGS | CPU_FPU, &cs, NULL))
        return false;
    st->regs = cs.regs, st->sregs = cs.sregs;
    cpu_state_fpu(&cs, &st->fpu);
    return true;
}

/* kvm_regs in gdb's order: rax rbx rcx rdx rsi rdi rbp rsp r8..r15. */
static __u64 *gpr(struct kvm_regs *r, int n)
{
    __u64 *order[16] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rbp, &r->rsp,
                           &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return order[n];
}

size_t gdb_reg_bytes(struct gdb_regs *st, int n, uint8_t *out)
{
    uint64_t v = 0;
    size_t size = 8;
    struct kvm_sregs *s = &st->sregs;
    const struct kvm_segment *segs[6] = {&s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs};
    if (n >= REG_RAX && n <= REG_R15) {
        v = *gpr(&st->regs, n);
    } else if (n == REG_RIP) {
        v = st->regs.rip;
    } else if (n == REG_EFLAGS) {
        v = st->regs.rflags, size = 4;
    } else if (n >= REG_CS && n <= REG_GS) {
        v = segs[n - REG_CS]->selector, size = 4;
    } else if (n >= REG_ST0 && n <= REG_ST7) {
        memcpy(out, st->fpu.fpr[n - REG_ST0], 10);
        return 10;
    } else if (n >= REG_FCTRL && n <= REG_FOP) {
        uint32_t fpu[8] = {st->fpu.fcw, st->fpu.fsw,
                           /* the full tag word from FXSAVE's abridged one: valid or empty */
                           0, (uint32_t)(st->fpu.last_ip >> 32), (uint32_t)st->fpu.last_ip,
                           (uint32_t)(st->fpu.last_dp >> 32), (uint32_t)st->fpu.last_dp,
                           st->fpu.last_opcode};
        for (int i = 0; i < 8; i++)
            if (!(st->fpu.ftwx & (1 << i)))
                fpu[2] |= 3u << (2 * i);
        v = fpu[n - REG_FCTRL], size = 4;
    } else if (n >= REG_XMM0 && n <= REG_XMM15) {
        memcpy(out, st->fpu.xmm[n - REG_XMM0], 16);
        return 16;
    } else if (n == REG_MXCSR) {
        v = st->fpu.mxcsr, size = 4;
    } else if (n == REG_FS_BASE || n == REG_GS_BASE) {
        v = n == REG_FS_BASE ? s->fs.base : s->gs.base;
    } else if (n >= REG_CR0 && n <= REG_EFER) {
        uint64_t ctrl[6] = {s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer};
        v = ctrl[n - REG_CR0];
    } else {
        return 0;
    }
    memcpy(out, &v, size);
    return size;
}

bool gdb_set_register(struct vcpu *cpu, int n, uint64_t v)
{
    struct cpu_state cs = {0};
    if (n < REG_RAX || n > REG_EFLAGS || cpu_state_get(cpu, CPU_REGS, &cs, NULL))
        return false;
    if (n == REG_RIP)
        cs.regs.rip = v;
    else if (n == REG_EFLAGS)
        cs.regs.rflags = (cs.regs.rflags & ~0xFFFFFFFFULL) | (v & 0xFFFFFFFF) | 2;
    else
        *gpr(&cs.regs, n) = v;
    replay_forget(cpu); /* a replay from before this write would not be this CPU's path */
    return cpu_state_put(cpu, CPU_REGS, &cs, NULL) == 0;
}

uint64_t gdb_dr7(const struct hw_bp hw[HW_SLOTS])
{
    static const unsigned len_bits[9] = {0, 0, 1, 0, 3, 0, 0, 0, 2};
    uint64_t dr7 = 0;
    for (int i = 0; i < HW_SLOTS; i++) {
        const struct hw_bp *h = &hw[i];
        if (!h->used)
            continue;
        dr7 |= 1ULL << (2 * i); /* local enable */
        dr7 |= (uint64_t)h->kind << (16 + 4 * i);
        if (h->kind != HW_EXEC)
            dr7 |= (uint64_t)len_bits[h->len] << (18 + 4 * i);
    }
    return dr7;
}

/* Runs `code` in real mode at 0 in a throwaway VM with `dbg` and says whether KVM_RUN came back
 * with KVM_EXIT_DEBUG. Vector 3 in the IVT points at a hlt, so an int3 that reaches the guest
 * ends in a HLT exit instead. */
static bool probe_debug_exit(int kvm, const uint8_t *code, size_t len, const struct kvm_guest_debug *dbg)
{
    bool hit = false;
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    int cpu = vm >= 0 ? ioctl(vm, KVM_CREATE_VCPU, 0) : -1;
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    uint8_t *ram = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_run *run = cpu >= 0 && run_size > 0
                              ? mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0)
                              : MAP_FAILED;
    if (ram != MAP_FAILED && run != MAP_FAILED) {
        memcpy(ram + 0x20, code, len);
        ram[0x40] = 0xF4;                          /* hlt: where int3 lands if the guest gets it */
        memcpy(ram + 0x0C, (uint16_t[]){0x40, 0}, 4); /* IVT[3] = 0000:0040 */
        struct kvm_userspace_memory_region slot = {.memory_size = 0x1000, .userspace_addr = (uint64_t)ram};
        struct cpu_state st = {0};
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) == 0 && cpu_state_get_fd(cpu, CPU_SREGS, &st, NULL) == 0) {
            st.sregs.cs.selector = 0;
            st.sregs.cs.base = 0;
            st.regs = (struct kvm_regs){.rip = 0x20, .rflags = 2};
            st.have |= CPU_REGS;
            if (cpu_state_put_fd(cpu, CPU_SREGS | CPU_REGS, &st, NULL) == 0 &&
                ioctl(cpu, KVM_SET_GUEST_DEBUG, dbg) == 0 && ioctl(cpu, KVM_RUN, 0) == 0)
                hit = run->exit_reason == KVM_EXIT_DEBUG;
        }
    }
    if (run != MAP_FAILED)
        munmap(run, (size_t)run_size);
    if (ram != MAP_FAILED)
        munmap(ram, 0x1000);
    if (cpu >= 0)
        close(cpu);
    if (vm >= 0)
        close(vm);
    return hit;
}

void gdb_probe_kvm(bool *int3_intercepted, bool *data_breakpoints)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return; /* the VM itself will say why */
    static const uint8_t int3[] = {0xCC, 0xF4};
    struct kvm_guest_debug sw = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP};
    *int3_intercepted = probe_debug_exit(kvm, int3, sizeof(int3), &sw);
    static const uint8_t store[] = {0xA2, 0x00, 0x01, 0xF4}; /* mov %al, (0x100); hlt */
    struct kvm_guest_debug hw = {.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP};
    hw.arch.debugreg[0] = 0x100;
    hw.arch.debugreg[7] = 1 | (1u << 16); /* L0, write, 1 byte */
    *data_breakpoints = probe_debug_exit(kvm, store, sizeof(store), &hw);
    close(kvm);
    if (!*int3_intercepted)
        log_warn("gdb: this KVM delivers int3 to the guest instead of reporting it (nested KVM); "
                 "breakpoints use the 4 debug registers instead, so at most 4 at a time");
    if (!*data_breakpoints)
        log_warn("gdb: this KVM ignores data breakpoints; gdb will use software watchpoints "
                 "(single steps), which are slow");
}
