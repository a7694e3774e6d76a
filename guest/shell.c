/* shell.c - a command line on the serial console and on the screen at once. */
#include "kernel.h"

#define LINE_MAX 160

static void cmd_help(const char *args);

static void cmd_devices(const char *args) { (void)args, print_devices(); }
static void cmd_cpus(const char *args) { (void)args, print_cpus(); }
static void cmd_mem(const char *args) { (void)args, print_memory(); }
static void cmd_time(const char *args) { (void)args, print_time(); }
static void cmd_net(const char *args) { (void)args, print_net(); }
static void cmd_draw(const char *args) { (void)args, screen_draw_demo(); }
static void cmd_echo(const char *args) { kprintf("%s\n", args); }

static void cmd_ping(const char *args)
{
    uint32_t ip;
    uint64_t count = 3;
    if (!parse_ipv4(&args, &ip) || (*(args = skip_spaces(args)) && (!parse_u64(&args, &count) || !count))) {
        kprintf("usage: ping A.B.C.D [COUNT]\n");
        return;
    }
    net_ping(ip, count > 100 ? 100 : (unsigned)count);
}

static void cmd_sleep(const char *args)
{
    uint64_t ms;
    if (!parse_u64(&args, &ms)) {
        kprintf("usage: sleep MILLISECONDS\n");
        return;
    }
    sleep_ms(ms);
}

/* profile on|off: slate's --profile samples only in between (SLATE_HC_PROFILE). */
static void cmd_profile(const char *args)
{
    bool on = !strcmp(args, "on");
    if (!on && strcmp(args, "off")) {
        kprintf("usage: profile on|off\n");
        return;
    }
    int64_t rc = slate_hypercall(SLATE_HC_PROFILE, on, 0, 0, 0);
    kprintf(rc == 0 ? "profiling %s\n" : "no profiler (start slate with --profile PATH,paused)\n",
            on ? "on" : "off");
}

static void cmd_reboot(const char *args)
{
    (void)args;
    kprintf("rebooting\n");
    power_reset();
}

static void cmd_poweroff(const char *args)
{
    uint64_t code = 0;
    if (*args && (!parse_u64(&args, &code) || code > 123)) {
        kprintf("usage: poweroff [EXIT-CODE 0..123]\n");
        return;
    }
    kprintf("powering off\n");
    power_off((uint32_t)code);
}

static const struct command {
    const char *name, *usage, *help;
    void (*run)(const char *args);
} commands[] = {
    {"help", "", "this list", cmd_help},
    {"devices", "", "the device table from the info block", cmd_devices},
    {"cpus", "", "every CPU and the timer ticks it has counted", cmd_cpus},
    {"mem", "", "RAM regions and where the kernel is", cmd_mem},
    {"time", "", "uptime and the wall clock", cmd_time},
    {"net", "", "the network card's address and counters", cmd_net},
    {"ping", " A.B.C.D [N]", "send N pings (default 3)", cmd_ping},
    {"disk", " [read N | write N TEXT]", "the disk: size, or one sector", disk_command},
    {"draw", "", "graphics demo: paint with the pointer, q to end", cmd_draw},
    {"sleep", " MS", "wait MS milliseconds", cmd_sleep},
    {"profile", " on|off", "sample with slate's --profile only in between", cmd_profile},
    {"echo", " TEXT", "print TEXT", cmd_echo},
    {"reboot", "", "reset the machine", cmd_reboot},
    {"poweroff", " [CODE]", "stop the machine; slate exits with CODE", cmd_poweroff},
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void cmd_help(const char *args)
{
    (void)args;
    for (unsigned i = 0; i < COMMAND_COUNT; i++) {
        char left[48];
        snprintf(left, sizeof(left), "%s%s", commands[i].name, commands[i].usage);
        kprintf("  %-30s %s\n", left, commands[i].help);
    }
}

static void run_line(const char *line)
{
    line = skip_spaces(line);
    if (!*line)
        return;
    for (unsigned i = 0; i < COMMAND_COUNT; i++) {
        size_t n = strlen(commands[i].name);
        if (!strncmp(line, commands[i].name, n) && (line[n] == 0 || line[n] == ' ')) {
            commands[i].run(skip_spaces(line + n));
            return;
        }
    }
    kprintf("%s: no such command (try help)\n", line);
}

/* Reads a line with echo and backspace. Returns false when input has ended for good: the host
 * closed the serial port and there is no keyboard to type on instead. */
static bool read_line(char *line, size_t size)
{
    static bool after_cr;
    size_t len = 0;
    for (;;) {
        cli();
        int c = console_get_input();
        if (c < 0) {
            if (console_input_ended() && !device_find(SLATE_DEV_KEYBOARD)) {
                sti();
                return false;
            }
            __asm__ volatile("sti; hlt"); /* an interrupt (input, tick, network) wakes us */
            kernel_poll();
            continue;
        }
        sti();
        if (c == '\n' && after_cr) { /* CR LF from a terminal or a file: one line end */
            after_cr = false;
            continue;
        }
        after_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            console_write("\n", 1);
            line[len] = 0;
            return true;
        }
        if ((c == 8 || c == 127) && len) {
            len--;
            console_write("\b \b", 3);
        } else if (c >= ' ' && c < 0x7F && len + 1 < size) {
            line[len++] = (char)c;
            console_write(&line[len - 1], 1);
        }
    }
}

void shell_run(void)
{
    char line[LINE_MAX];
    kprintf("Type help for the commands.\n");
    for (;;) {
        kprintf("slate> ");
        if (!read_line(line, sizeof(line))) {
            kprintf("\nserial input ended; powering off\n");
            power_off(0);
        }
        run_line(line);
    }
}
