/* debug.c - see debug.h. */
#include "debug.h"

#include "core.h"
#include "debug_room.h"
#include "exctrace.h"
#include "hang.h"
#include "inspect.h"
#include "profile.h"
#include "replay.h"
#include "report.h"
#include "timetravel.h"
#include "vm.h"

#include <stdlib.h>

struct debug_room *debug_room(const struct vm *vm) { return vm->debug; }

static void on_crash(void *opaque, struct vcpu *cpu, const char *what)
{
    struct debug_room *room = opaque;
    if (room->timetravel) /* recorded: the instructions before the fault, run again */
        timetravel_crash_trail(room->timetravel, cpu);
    if (room->replay)
        replay_recover_crash(cpu); /* first: KVM on AMD reset the CPU the report describes */
    crash_report(cpu, what);
}

static void on_report(void *opaque, FILE *out, const char *why)
{
    struct debug_room *room = opaque;
    hang_report(room->vm, out, why);
}

static void on_end(void *opaque, int status)
{
    struct debug_room *room = opaque;
    struct vm *vm = room->vm;
    profile_finish(vm, status != VM_STATUS_RESET);
    if (vm->cfg->report && status != VM_STATUS_RESET)
        report_write(vm, vm->cfg->report, status);
    if (vm->cfg->dump_core && vm->crash_cpu >= 0)
        core_dump(vm, vm->cfg->dump_core);
}

static void on_destroy(void *opaque)
{
    struct debug_room *room = opaque;
    profile_finish(room->vm, false); /* (when the machine never ran) */
    exc_trace_stop(room->vm);
    replay_detach(room->vm);
    timetravel_close(room->timetravel);
    room->vm->debug = NULL;
    free(room);
}

int debug_attach(struct vm *vm)
{
    struct debug_room *room = calloc(1, sizeof(*room));
    if (!room) {
        log_error("out of memory");
        return -1;
    }
    room->vm = vm;
    vm->debug = room;
    if (vm_add_observer(vm, &(struct vm_observer){.crash = on_crash, .report = on_report, .end = on_end,
                                                   .destroy = on_destroy, .opaque = room})) {
        log_error("internal: too many observers");
        vm->debug = NULL;
        free(room);
        return -1;
    }
    if (vm->record && !(room->timetravel = timetravel_open(vm)))
        return -1;
    if (replay_attach(vm) || (vm->cfg->profile_path[0] && profile_attach(vm)) ||
        ((vm->cfg->trace & TRACE_EXC) && exc_trace_start(vm)))
        return -1;
    return 0;
}
