/* log.c - messages to stderr; warnings the guest can provoke are rate-limited. */
#include "log.h"

#include <stdarg.h>
#include <time.h>

FILE *log_output;

static void log_line(const char *prefix, const char *fmt, va_list ap, uint32_t suppressed)
{
    char text[1024];
    FILE *out = log_output ? log_output : stderr;
    vsnprintf(text, sizeof(text), fmt, ap);
    if (suppressed)
        fprintf(out, "slate: %s%s (%u similar warnings suppressed)\n", prefix, text, suppressed);
    else
        fprintf(out, "slate: %s%s\n", prefix, text);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("", fmt, ap, 0);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("warning: ", fmt, ap, 0);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("", fmt, ap, 0);
    va_end(ap);
}

int64_t clock_read_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_now_ns(void) { return clock_read_ns(CLOCK_MONOTONIC); }

/* Takes one token if there is one; refills to one token per elapsed second. */
static int ratelimit_take(struct ratelimit *rl)
{
    uint32_t budget = atomic_load(&rl->budget);
    while (budget > 0)
        if (atomic_compare_exchange_weak(&rl->budget, &budget, budget - 1))
            return 1;
    int64_t now = clock_now_ns();
    int64_t next = atomic_load(&rl->next_ns);
    if (now >= next && atomic_compare_exchange_strong(&rl->next_ns, &next, now + 1000000000))
        return 1;
    return 0;
}

void log_warn_limited(struct ratelimit *rl, const char *fmt, ...)
{
    if (!ratelimit_take(rl)) {
        atomic_fetch_add(&rl->suppressed, 1);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_line("warning: ", fmt, ap, atomic_exchange(&rl->suppressed, 0));
    va_end(ap);
}

int error_text(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}
