/* record.h - recording a run and replaying it exactly (--record PATH, --replay PATH). One vCPU.
 *
 * What the guest cannot compute itself is logged at exits: the value every port or MMIO read
 * returned, every hypercall's result, and each device interrupt with the point it entered the
 * guest. In record mode a device's interrupt does not go to KVM when the device raises it: it
 * waits for the vCPU's next exit (the vCPU is kicked out of KVM_RUN if it runs on without one)
 * and is signalled there, so it enters at a point the replay can find again: right after exit
 * N, or, for a kick, at the register state the log keeps, which the replay reaches again by
 * single steps. A replay runs the same kernel, feeds it the logged values, and compares every
 * exit with the log: a divergence stops it with one line naming where (docs/debugging.md). */
#ifndef SLATE_RECORD_H
#define SLATE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct irq_line;
struct slate_config;

/* Opens the log for --record or --replay (vm_create, after the vCPUs exist). 0 or -1, logged. */
int record_attach(struct vm *vm);
/* Recording: writes the end of the log (the machine's status, a hash of its memory) and closes
 * it. Replaying: checks the end against the log's. 0, or the status slate must end with instead
 * (a replay whose memory ended otherwise: EXIT_FAILURE_SLATE, logged). */
int record_detach(struct vm *vm, int status);

/* The vCPU thread's hooks (vcpu.c), each only when vm->record is set. */
void record_exit_before(struct vcpu *cpu); /* a real exit happened, not yet handled */
void record_exit_after(struct vcpu *cpu);  /* it was handled; the guest resumes next */
void record_kicked(struct vcpu *cpu);      /* KVM_RUN returned without an exit (EINTR) */

/* Recording: a device wrote guest memory [gpa, gpa+len), now at `host`, while the current exit
 * was handled (device_wrote); the bytes go into the log after that exit, and a replay writes
 * them there. */
void record_wrote(struct vm *vm, uint64_t gpa, const void *host, uint64_t len);

/* A device raised a line: true when recording or replaying took it (irq.c then does nothing). */
bool record_raise(struct irq_line *line);

/* Time travel (gdb's reverse execution on a replay, timetravel.c). A mark is where the replay
 * is in the log and in the run (record_mark_size bytes), saved with a checkpoint and put back
 * with it; with the console's output hash. record_mark_restore: 0, or -1 (errno). */
size_t record_mark_size(void);
void record_mark_save(struct vm *vm, void *mark);
int record_mark_restore(struct vm *vm, const void *mark);
/* The exits a mark was taken after, and the exits the run has made so far. */
uint64_t record_mark_exits(const void *mark);
uint64_t record_exit_count(struct vm *vm);
/* Recording, at a crash (on the crashed CPU's thread): the log gets its end now (status
 * EXIT_CRASH, the crash's memory hash) and is read back, and the recorder becomes a replayer of
 * it, so time travel can run the recorded window again: marks taken while recording are places
 * in it. Devices then act as in a replay (device_record_mode): nothing reaches a disk or a
 * network twice. 0, or -1 (logged). */
int record_turn_to_replay(struct vm *vm);
/* Stepped: time travel runs the CPU one instruction at a time and calls record_step_point at
 * every instruction boundary (the replay arms no breakpoint of its own then). Machine held. */
void record_set_stepped(struct vcpu *cpu, bool stepped);
/* At an instruction boundary: true if the recording kicked the CPU here, and what came there
 * (device writes, interrupts) has now happened. */
bool record_step_point(struct vcpu *cpu);
/* The exit the CPU just made is the recording's last (or beyond it): its end. */
bool record_exit_ends_log(struct vm *vm);
bool record_replaying(struct vm *vm);
/* Quiet: a divergence is only noted (record_diverged), neither said nor a stop: time travel runs
 * part of a replay again to look at it, and puts the machine back if it fails. */
void record_set_quiet(struct vm *vm, bool quiet);
bool record_diverged(struct vm *vm);

/* The vectors interrupts were delivered on so far (up to max, lowest first). */
unsigned record_vectors(struct vm *vm, uint8_t *out, unsigned max);
/* The CPU crashed: the hash of memory the log ends with is taken now, before a crash report
 * (which may run instructions again, replay.h) can change it. */
void record_crashed(struct vm *vm);

/* --replay: the machine the log describes, from its saved command line with the options the user
 * gave now (the kernel file is the log's). 0 or -1, logged; strings live until exit. */
int record_replay_config(const char *path, const struct slate_config *given, struct slate_config *out);

#endif
