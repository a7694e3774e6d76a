/* explain.h - why an exception could not be delivered: the triple-fault explainer. It simulates
 * the CPU's delivery of an exception step by step (IDT limit, gate, code segment, handler page,
 * TSS, stack) over the guest's own tables and names the first step that fails. Pure: memory comes
 * through a callback, so the unit tests build the tables by hand. */
#ifndef SLATE_EXPLAIN_H
#define SLATE_EXPLAIN_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest-physical memory: copies len bytes at gpa into buf; false if any of it is not memory. */
struct explain_memory {
    bool (*read)(void *ctx, uint64_t gpa, void *buf, size_t len);
    void *ctx;
};

/* Whether exception `vector` can be delivered by a CPU in state s with stack pointer rsp. True
 * with "delivered to HANDLER" in why, or false with the step that fails ("IDT[14] not present").
 * Long mode is checked in full; protected mode checks the IDT and gate; real mode the IVT. */
bool explain_delivery(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                      unsigned vector, char *why, size_t whylen);

/* The chain of a triple fault: `first` (a vector, or -1 when unknown) -> #DF -> triple fault, each
 * with why it failed, e.g. "#PF: IDT[14] is past the IDT's limit (0) -> #DF: IDT[8] is past the
 * IDT's limit (0) -> triple fault". When #DF could be delivered, says so: the #DF handler itself
 * must have faulted. */
void explain_triple_fault(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t rsp,
                          int first, char *out, size_t outlen);

/* Whether a CPU in state s page-faults when it reads (or writes) linear address va: true with
 * why ("not mapped", "read-only", "a supervisor page"). Long-mode paging only. */
bool explain_page_fault(const struct explain_memory *mem, const struct kvm_sregs *s, uint64_t va, bool write,
                        char *why, size_t whylen);

/* "#PF", "#GP", ... or "vector 40". */
const char *explain_vector_name(unsigned vector, char *buf, size_t len);

#endif
