/* entry.c - see entry.h. The state itself is x86.c's (pure); this puts it into the vCPUs. */
#include "entry.h"

#include "cpu_state.h"
#include "vm.h"
#include "x86.h"

#include <string.h>

static int put(struct vcpu *cpu, const struct cpu_state *st, const char *what)
{
    const char *failed;
    int rc = cpu_state_put(cpu, st->have, st, &failed);
    if (rc)
        log_error("cpu %u: cannot set %s: %s: %s", cpu->index, what, failed, strerror(-rc));
    return rc ? -1 : 0;
}

/* Under Limine's MP request every CPU runs from the start: the others in the parking stub,
 * waiting for their goto_address, with RDI = their struct limine_mp_info. Each finds its local
 * APIC software-enabled with spurious vector 0xFF (SVR 0x1FF), as base revision 5 promises; KVM
 * resets it disabled. */
static int limine_state(struct vm *vm, struct vcpu *cpu)
{
    const struct boot_paging *pg = &vm->plan.paging;
    struct cpu_state st = {0};
    const char *failed;
    int rc = cpu_state_get(cpu, CPU_SREGS | CPU_LAPIC, &st, &failed);
    if (rc) {
        log_error("cpu %u: %s: %s", cpu->index, failed, strerror(-rc));
        return -1;
    }
    x86_limine_sregs(&st.sregs, pg->cr3, pg->gdt_base, pg->gdt_limit, pg->code_sel, pg->data_sel);
    st.regs = (struct kvm_regs){.rflags = 0x2, .rip = vm->plan.entry_point, .rsp = vm->plan.rsp};
    if (cpu->index > 0)
        st.regs = (struct kvm_regs){.rflags = 0x2, .rip = pg->ap_rip,
                                    .rdi = pg->ap_info + cpu->index * pg->ap_info_stride};
    st.mp.mp_state = KVM_MP_STATE_RUNNABLE;
    uint32_t svr = 0x1FF;
    memcpy(st.lapic.regs + 0xF0, &svr, 4);
    st.have |= CPU_REGS | (cpu->index > 0 ? CPU_MP : 0);
    if (put(cpu, &st, "the Limine entry state"))
        return -1;
    atomic_store(&cpu->started, true);
    return 0;
}

/* The boot CPU in the entry mode, on the boot stack with its call frame; the boot GDT, and page
 * tables for long mode. */
static int native_state(struct vm *vm, struct vcpu *cpu)
{
    struct cpu_state st = {0};
    const char *failed;
    int rc = cpu_state_get(cpu, CPU_SREGS, &st, &failed);
    if (rc) {
        log_error("cpu %u: %s: %s", cpu->index, failed, strerror(-rc));
        return -1;
    }
    uint64_t cr3 = x86_write_boot_tables(vm->boot_tables, SLATE_BOOT_TABLES_SIZE, SLATE_BOOT_TABLES,
                                         vm->plan.entry == ENTRY_LONG ? vm->mem.map_top : 0);
    if (vm->plan.entry == ENTRY_LONG && !cr3) {
        log_error("internal: boot page tables do not fit");
        return -1;
    }
    x86_entry_sregs(&st.sregs, vm->plan.entry, SLATE_BOOT_TABLES + BOOT_GDT_OFFSET,
                    vm->plan.entry == ENTRY_LONG ? cr3 : 0);
    uint64_t top = loader_boot_stack_top(&vm->mem);
    uint64_t rsp = 0;
    if (vm->plan.entry != ENTRY_REAL)
        rsp = x86_entry_stack((uint8_t *)memory_ram_ptr(&vm->mem, top - 32, 32) + 32,
                              vm->plan.entry, top, SLATE_BOOT_TABLES + BOOT_EXIT_STUB_OFFSET,
                              vm->plan.rbx);
    x86_entry_regs(&st.regs, vm->plan.entry, vm->plan.entry_point, rsp, vm->plan.rbx);
    st.regs.rax = vm->plan.rax; /* Multiboot's magic */
    st.have |= CPU_REGS;
    return put(cpu, &st, "the entry state");
}

int entry_set_state(struct vm *vm)
{
    if (!vm->plan.paging.cr3)
        return native_state(vm, &vm->vcpus[0]);
    x86_write_boot_tables(vm->boot_tables, SLATE_BOOT_TABLES_SIZE, SLATE_BOOT_TABLES, 0);
    for (unsigned i = 0; i < (vm->plan.paging.ap_rip ? vm->vcpu_count : 1); i++)
        if (limine_state(vm, &vm->vcpus[i]))
            return -1;
    return 0;
}
