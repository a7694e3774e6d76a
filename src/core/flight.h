/* flight.h - the flight recorder: the machine's last N port, MMIO, hypercall, interrupt and
 * exception events (--flight N, default FLIGHT_EVENTS), kept in memory at the cost of a few
 * stores per exit and printed only in a crash or hang report (and --report's JSON). */
#ifndef SLATE_FLIGHT_H
#define SLATE_FLIGHT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#define FLIGHT_EVENTS 32      /* the default size */
#define FLIGHT_EVENTS_MAX 4096 /* the largest --flight */
#define FLIGHT_TEXT 23         /* bytes of console output one event holds */

enum flight_kind { FLIGHT_IN, FLIGHT_OUT, FLIGHT_MMIO_READ, FLIGHT_MMIO_WRITE, FLIGHT_HYPERCALL, FLIGHT_IRQ,
                   FLIGHT_EXCEPTION };

struct flight_event {
    int64_t ns;       /* CLOCK_MONOTONIC */
    uint32_t cpu;     /* the CPU (for an interrupt: the one it was sent to) */
    uint8_t kind;     /* enum flight_kind */
    uint8_t width;    /* bytes, for I/O */
    uint64_t addr;    /* port, physical address, hypercall function, or vector */
                      /* (for an exception: the vector, and the faulting RIP as value) */
    uint64_t value;   /* the value written or read; a hypercall's result */
    /* Byte writes to one port in a row from one CPU (a console: port 0xE9, a UART's data
     * register) are one event: the bytes, up to FLIGHT_TEXT of them, so the last events are not
     * the last letters. 0 for every other event. */
    uint8_t text_len;
    char text[FLIGHT_TEXT];
};

struct flight_recorder {
    _Atomic uint64_t next;        /* events recorded so far; slot next % size is the oldest */
    unsigned size;                /* 0: the recorder is off */
    struct flight_event *events;  /* size slots */
};

/* A recorder of size events (0 turns it off); false when out of memory. */
bool flight_init(struct flight_recorder *fr, unsigned size);
void flight_free(struct flight_recorder *fr);

/* Any thread. Events from several CPUs interleave; a report is read while the machine is held,
 * so no event is half-written then. */
void flight_record(struct flight_recorder *fr, enum flight_kind kind, uint32_t cpu, uint64_t addr,
                   uint64_t value, uint8_t width);

/* Calls fn for each recorded event, oldest first; returns how many. */
unsigned flight_each(const struct flight_recorder *fr, void (*fn)(void *ctx, const struct flight_event *e),
                     void *ctx);

/* A byte run as a C string literal's contents ("hello\\n"), in at most len bytes. */
void flight_text(const struct flight_event *e, char *buf, size_t len);

/* "out", "in", "mmio read", ... */
const char *flight_kind_name(enum flight_kind kind);

#endif
