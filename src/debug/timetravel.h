/* timetravel.h - reverse execution on a replay (--replay with --gdb): gdb's reverse-stepi,
 * reverse-continue and the rest.
 *
 * While gdb drives a replay, the CPU runs one instruction at a time, so every point of the run
 * has a number: the instructions since gdb first stopped it (the origin). Every 100 ms of that
 * stepping a checkpoint keeps the CPU's whole state, where the replay is in the log, and the
 * guest pages that changed since the checkpoint before (compared byte for byte); the last 512
 * are kept, so the window gdb can go back in is about the last 50 s of stepping. Going back to
 * instruction N puts the latest checkpoint at or before N back and steps forward to N; the guest
 * gets exactly what it got the first time, from the log, and what it prints again is not shown
 * twice. reverse-continue steps forward from the checkpoints before the current point, one
 * interval at a time going back, and stops at the last breakpoint or watchpoint hit it saw.
 *
 * What counts as one instruction is what one single step of this host's KVM does: where KVM
 * injects an interrupt during a step, the step ends inside the handler (after its first
 * instruction, on PVM), so a breakpoint on an interrupt handler's very first instruction is not
 * seen. A HLT is stepped by slate itself (the CPU halts; a replay wakes it only from the log). */
#ifndef SLATE_TIMETRAVEL_H
#define SLATE_TIMETRAVEL_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct timetravel;

/* Breakpoints (addresses of instructions) and write watchpoints, as gdb has them. */
struct tt_watch {
    uint64_t addr;
    unsigned len; /* 1, 2, 4 or 8 */
};
struct tt_points {
    const uint64_t *breaks;
    unsigned break_count;
    const struct tt_watch *watches;
    unsigned watch_count;
};

enum tt_action { TT_STEP, TT_CONTINUE, TT_REVERSE_STEP, TT_REVERSE_CONTINUE };

enum tt_reason {
    TT_STEPPED,     /* one instruction, forward or back */
    TT_BREAKPOINT,  /* at a breakpoint's instruction */
    TT_WATCHPOINT,  /* forward: after the instruction that changed a watched value; back: before it */
    TT_BEGIN,       /* at the start of the window: nothing earlier is kept */
    TT_END,         /* at the end of the recording: the next instruction is its last exit */
    TT_CRASH,       /* at the instruction the recorded run crashed on */
    TT_INTERRUPTED, /* Ctrl-C from gdb */
    TT_FAILED,      /* the machine is stopping (a divergence, an error: logged) */
};

struct tt_stop {
    enum tt_reason reason;
    uint64_t watch_addr; /* TT_WATCHPOINT */
};

/* For a recording or a replay (vm_create done, vCPUs exist): the engine, or NULL when it is
 * neither or memory ran out (logged). */
struct timetravel *timetravel_open(struct vm *vm);
/* Whether gdb can go back now: on a replay, or on a recording that crashed (it then replays its
 * own log: record_turn_to_replay). A recording that still runs is debugged as any run. */
bool timetravel_ready(const struct timetravel *tt);
void timetravel_close(struct timetravel *tt);

/* gdb's thread, with the machine held: carries out `action` on the CPU's own thread and returns
 * where it stopped. While it runs, `poll(opaque)` is called every few milliseconds: true asks it
 * to stop (Ctrl-C). */
struct tt_stop timetravel_run(struct timetravel *tt, enum tt_action action, const struct tt_points *points,
                              bool (*poll)(void *opaque), void *opaque);

/* gdb left: the replay runs on by itself from where it is (machine held). */
void timetravel_leave(struct timetravel *tt);

/* Without gdb, a recording or a replay keeps a checkpoint every 20 ms of its run (at an exit;
 * further apart if taking one costs more than 5% of that), the last 512 (about 10 s). Their
 * instruction numbers are not known. When the run crashes, the crash observer calls
 * timetravel_crash_trail first (on the crashed CPU's thread); a recording turns into a replay of
 * its own log there (record_turn_to_replay). The CPU is run again by single steps from the last
 * checkpoint to the fault, keeping the last TT_TRAIL_LEN instructions, and left at the faulting
 * instruction with its state then (memory included). That run is gdb's window when the machine
 * stays (--on-crash pause): instruction 0 is that checkpoint, and going back before it runs the
 * checkpoint before forward to count its instructions, one at a time (up to 2 million each). If
 * the run does not reach the fault, the machine is put back as it was. */
#define TT_TRAIL_LEN 64
struct trail_insn {
    uint64_t rip; /* linear */
    uint8_t bytes[15];
    uint8_t bits; /* 16, 32, 64 */
};
void timetravel_crash_trail(struct timetravel *tt, struct vcpu *cpu);
/* The instructions kept, oldest first (the last is the one that faulted); how many replayed. */
unsigned timetravel_trail(const struct timetravel *tt, struct trail_insn *out, uint64_t *replayed);

#endif
