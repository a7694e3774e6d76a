/* log.h - messages to stderr: errors, warnings, and rate-limited warnings for guest mistakes. */
#ifndef SLATE_LOG_H
#define SLATE_LOG_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Where messages go; NULL (the default) is stderr. The fuzz harnesses point it at /dev/null. */
extern FILE *log_output;

#define SLATE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/* "slate: <message>" on one line. */
void log_error(const char *fmt, ...) SLATE_PRINTF(1, 2);
/* "slate: warning: <message>" on one line. */
void log_warn(const char *fmt, ...) SLATE_PRINTF(1, 2);
/* A plain notice on stderr ("slate: ..."): what the user asked for happened. */
void log_info(const char *fmt, ...) SLATE_PRINTF(1, 2);

/* A token bucket for warnings a guest can trigger at will: at most `burst` messages, refilled at
 * one per second; what is dropped is counted and reported with the next message that passes. */
struct ratelimit {
    _Atomic int64_t next_ns; /* the earliest time the next message may pass once the burst is spent */
    _Atomic uint32_t budget;
    _Atomic uint32_t suppressed;
};
#define RATELIMIT_INIT {0, 10, 0}

void log_warn_limited(struct ratelimit *rl, const char *fmt, ...) SLATE_PRINTF(2, 3);

/* Formats a one-line error into err (errlen bytes) for the caller to report; returns -1. */
int error_text(char *err, size_t errlen, const char *fmt, ...) SLATE_PRINTF(3, 4);

/* Monotonic clock in nanoseconds. */
int64_t clock_now_ns(void); /* CLOCK_MONOTONIC in ns */
int64_t clock_read_ns(clockid_t clock);

#endif
