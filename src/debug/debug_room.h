/* debug_room.h - the debugging room's state for one machine: each tool's own, which the others
 * may read (the crash report reads the replay's and the tracer's), reached from the machine
 * through debug_room(). Created and attached by debug.c. */
#ifndef SLATE_DEBUG_ROOM_H
#define SLATE_DEBUG_ROOM_H

struct vm;
struct replay;
struct exc_tracer;
struct profiler;
struct timetravel;

struct debug_room {
    struct vm *vm;
    struct replay *replay;     /* where KVM resets a triple-faulted CPU (replay.h), or NULL */
    struct exc_tracer *exc;    /* --trace exc, or NULL */
    struct profiler *profiler; /* --profile, or NULL */
    struct timetravel *timetravel; /* --replay: checkpoints, gdb's reverse execution, or NULL */
    char crash_why[512];       /* the triple-fault explainer's verdict, when there was one */
};

/* The machine's debugging room (never NULL once debug_attach succeeded). */
struct debug_room *debug_room(const struct vm *vm);

#endif
