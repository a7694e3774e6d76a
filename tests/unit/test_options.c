/* The command line: defaults, every option, and a clear message for each kind of bad input. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "options.h"

static char err[256];

static enum options_result parse(struct slate_config *cfg, int argc, char **argv)
{
    err[0] = 0;
    return options_parse(argc, argv, cfg, err, sizeof(err));
}

#define PARSE(cfg, ...)                                                                            \
    parse(cfg, (int)(sizeof((char *[]){"slate", __VA_ARGS__}) / sizeof(char *)),                    \
          (char *[]){"slate", __VA_ARGS__, NULL})

static void sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(parse_size("128M", &v), 0);
    assert_int_equal(v, 128ULL << 20);
    assert_int_equal(parse_size("2G", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(parse_size("4096K", &v), 0);
    assert_int_equal(v, 4ULL << 20);
    assert_int_equal(parse_size("64", &v), 0);
    assert_int_equal(v, 64ULL << 20);
    assert_int_equal(parse_size("1g", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(parse_size("1T", &v), 0);
    assert_int_equal(v, 1ULL << 40);
    assert_int_not_equal(parse_size("", &v), 0);
    assert_int_not_equal(parse_size("M", &v), 0);
    assert_int_not_equal(parse_size("12Q", &v), 0);
    assert_int_not_equal(parse_size("-1M", &v), 0);
    assert_int_not_equal(parse_size("1MB", &v), 0);
    assert_int_not_equal(parse_size("99999999999999999999G", &v), 0);
    assert_int_not_equal(parse_size("17179869184G", &v), 0); /* 2^34 GiB overflows 64 bits */
}

static void defaults(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "kernel.elf"), OPTIONS_RUN);
    assert_string_equal(cfg.kernel, "kernel.elf");
    assert_int_equal(cfg.ram_size, 128ULL << 20);
    assert_int_equal(cfg.smp, 1);
    assert_int_equal(cfg.entry, ENTRY_DEFAULT);
    assert_int_equal(cfg.load_count, 0);
    assert_int_equal(cfg.serial, SERIAL_STDIO);
    assert_true(cfg.timeout_s == 0);
    assert_false(cfg.strict);
    assert_false(cfg.check_only);
}

static void every_option(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "-m", "5G", "--smp", "4", "--entry", "protected", "--load",
                           "initrd.img@0x400000", "--load", "b@4096", "--append", "quiet debug",
                           "--serial", "file:/tmp/out.txt", "--timeout", "2.5", "--strict", "--check", "k"),
                     OPTIONS_RUN);
    assert_int_equal(cfg.ram_size, 5ULL << 30);
    assert_int_equal(cfg.smp, 4);
    assert_int_equal(cfg.entry, ENTRY_PROTECTED);
    assert_int_equal(cfg.load_count, 2);
    assert_string_equal(cfg.loads[0].path, "initrd.img");
    assert_int_equal(cfg.loads[0].addr, 0x400000);
    assert_string_equal(cfg.loads[1].path, "b");
    assert_int_equal(cfg.loads[1].addr, 4096);
    assert_string_equal(cfg.append, "quiet debug");
    assert_int_equal(cfg.serial, SERIAL_FILE);
    assert_string_equal(cfg.serial_path, "/tmp/out.txt");
    assert_true(cfg.timeout_s == 2.5);
    assert_true(cfg.strict);
    assert_true(cfg.check_only);
    assert_string_equal(cfg.kernel, "k");

    assert_int_equal(PARSE(&cfg, "--serial", "none", "--entry", "long", "k"), OPTIONS_RUN);
    assert_int_equal(cfg.serial, SERIAL_NONE);
    assert_int_equal(cfg.entry, ENTRY_LONG);
    assert_int_equal(PARSE(&cfg, "--entry=real", "k"), OPTIONS_RUN);
    assert_int_equal(cfg.entry, ENTRY_REAL);
}

/* Each bad input fails with a message that names the option and the problem. */
static void bad_input(void **state)
{
    (void)state;
    struct slate_config cfg;
    static const struct {
        const char *opt, *arg, *message;
    } cases[] = {
        {"-m", "lots", "not a size"},
        {"-m", "512", NULL}, /* fine: MiB */
        {"-m", "100K", "between 1M and 256G"},
        {"-m", "300G", "between 1M and 256G"},
        {"-m", "1025K", "multiple of 4K"},
        {"--smp", "0", "from 1 to 1024"},
        {"--smp", "1025", "from 1 to 1024"},
        {"--smp", "two", "from 1 to 1024"},
        {"--entry", "unreal", "expected real, protected or long"},
        {"--load", "initrd.img", NULL}, /* fine: slate places it */
        {"--load", "initrd.img@", "is not an address"},
        {"--boot", "grub", "expected native, multiboot2, multiboot or limine"},
        {"--boot", "limine", NULL},
        {"--load", "initrd.img@here", "is not an address"},
        {"--load", "@0x1000", "expected FILE[@ADDR]"},
        {"--serial", "tcp:1234", "expected stdio, file:PATH or none"},
        {"--serial", "file:", "expected stdio, file:PATH or none"},
        {"--timeout", "0", "above 0"},
        {"--timeout", "-3", "above 0"},
        {"--timeout", "soon", "above 0"},
        {"--disk", "", "expected PATH"},
        {"--disk", ",ro", "expected PATH"},
        {"--disk", "d.img,rw", "unknown option 'rw'"},
        {"--disk", "d.img,cache=sometimes", "unknown option 'cache=sometimes'"},
        {"--disk", "d.img,ro,cache=none", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum options_result r = PARSE(&cfg, (char *)cases[i].opt, (char *)cases[i].arg, "k");
        if (!cases[i].message) {
            assert_int_equal(r, OPTIONS_RUN);
            continue;
        }
        if (r != OPTIONS_ERROR)
            fail_msg("%s %s was accepted", cases[i].opt, cases[i].arg);
        assert_contains(err, cases[i].message);
    }
}

static void kernel_arguments(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(parse(&cfg, 1, (char *[]){"slate", NULL}), OPTIONS_ERROR);
    assert_contains(err, "no kernel given");
    assert_int_equal(PARSE(&cfg, "a.elf", "b.elf"), OPTIONS_ERROR);
    assert_contains(err, "unexpected argument");
    assert_int_equal(PARSE(&cfg, "--frobnicate", "k"), OPTIONS_ERROR);
    assert_contains(err, "--help");
    assert_int_equal(PARSE(&cfg, "k", "-m"), OPTIONS_ERROR);
}

static void too_many_loads(void **state)
{
    (void)state;
    struct slate_config cfg;
    char *argv[2 + 2 * (MAX_LOADS + 1) + 1];
    int argc = 0;
    argv[argc++] = "slate";
    for (int i = 0; i <= MAX_LOADS; i++) {
        argv[argc++] = "--load";
        argv[argc++] = "x@0x100000";
    }
    argv[argc++] = "k";
    argv[argc] = NULL;
    assert_int_equal(parse(&cfg, argc, argv), OPTIONS_ERROR);
    assert_contains(err, "at most 16 images");
}

static void long_append(void **state)
{
    (void)state;
    struct slate_config cfg;
    static char text[MAX_APPEND + 2];
    memset(text, 'a', MAX_APPEND);
    assert_int_equal(PARSE(&cfg, "--append", text, "k"), OPTIONS_RUN);
    text[MAX_APPEND] = 'a';
    assert_int_equal(PARSE(&cfg, "--append", text, "k"), OPTIONS_ERROR);
    assert_contains(err, "longer than 4095 bytes");
}

static void help_names_exit_codes(void **state)
{
    (void)state;
    char *help = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&help, &size);
    options_help(out);
    fclose(out);
    assert_contains(help, "124");
    assert_contains(help, "125");
    assert_contains(help, "126");
    assert_contains(help, "--strict");
    assert_contains(help, "--check");
    assert_contains(help, "Linux 4.17");
    /* The devices' own options, from their files. */
    assert_contains(help, "--disk PATH[,ro][,snapshot][,cache=writeback|none]");
    assert_contains(help, "--restore PATH[,lazy]");
    assert_contains(help, "--each CASE... KERNEL");
    assert_contains(help, "--net tap:IFNAME|user|socket:PATH");
    assert_contains(help, "--vnc-password FILE");
    assert_true(strstr(help, "--check") < strstr(help, "--disk")); /* core first, then devices */
    assert_true(strstr(help, "--disk") < strstr(help, "-h, --help"));
    free(help);
}

/* --snapshot, --restore, --each: what goes with what. */
static void snapshot_options(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "--restore", "m.snap,lazy"), OPTIONS_RUN);
    assert_string_equal(cfg.restore_path, "m.snap");
    assert_true(cfg.restore_lazy);
    assert_int_equal(PARSE(&cfg, "--restore", "m.snap", "kernel"), OPTIONS_ERROR);
    assert_contains(err, "--restore takes no kernel");
    assert_int_equal(PARSE(&cfg, "--each", "a", "b", "kernel"), OPTIONS_RUN);
    assert_int_equal(cfg.case_count, 2);
    assert_string_equal(cfg.cases[1], "b");
    assert_string_equal(cfg.kernel, "kernel");
    assert_int_equal(PARSE(&cfg, "--each", "kernel"), OPTIONS_ERROR);
    assert_contains(err, "--each: no cases");
    assert_int_equal(PARSE(&cfg, "--each", "a", "--snapshot", "x", "kernel"), OPTIONS_ERROR);
    assert_int_equal(PARSE(&cfg, "--case-timeout", "0", "--each", "a", "k"), OPTIONS_ERROR);
    struct slate_config machine, given;
    assert_int_equal(PARSE(&machine, "--disk", "a.img", "-m", "64M", "kernel"), OPTIONS_RUN);
    assert_int_equal(PARSE(&given, "--restore", "m.snap", "--disk", "b.img,snapshot"), OPTIONS_RUN);
    assert_int_equal(options_merge_restore(&machine, &given, err, sizeof(err)), 0);
    assert_string_equal(machine.disks[0].path, "b.img");
    assert_true(machine.disks[0].overlay);
    assert_int_equal(machine.ram_size, 64ULL << 20);
    assert_int_equal(PARSE(&machine, "--disk", "a.img", "kernel"), OPTIONS_RUN);
    assert_int_equal(PARSE(&given, "--restore", "m.snap", "-m", "1G"), OPTIONS_RUN);
    assert_int_equal(options_merge_restore(&machine, &given, err, sizeof(err)), -1);
    assert_contains(err, "comes from the snapshot");
}

static void disks(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "--disk", "a.img", "--disk", "/dev/sdz,ro", "--disk",
                           "c.img,cache=none,ro", "--disk", "d.img,cache=writeback", "k"),
                     OPTIONS_RUN);
    assert_int_equal(cfg.disk_count, 4);
    assert_string_equal(cfg.disks[0].path, "a.img");
    assert_false(cfg.disks[0].read_only);
    assert_false(cfg.disks[0].cache_none);
    assert_string_equal(cfg.disks[1].path, "/dev/sdz");
    assert_true(cfg.disks[1].read_only);
    assert_true(cfg.disks[2].read_only && cfg.disks[2].cache_none);
    assert_false(cfg.disks[3].cache_none);
    char *argv[2 + 2 * (MAX_DISKS + 1) + 1];
    int argc = 0;
    argv[argc++] = "slate";
    for (int i = 0; i <= MAX_DISKS; i++) {
        argv[argc++] = "--disk";
        argv[argc++] = "x.img";
    }
    argv[argc++] = "k";
    argv[argc] = NULL;
    assert_int_equal(parse(&cfg, argc, argv), OPTIONS_ERROR);
    assert_contains(err, "at most 8 disks");
}

static void displays(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "--display", "vnc", "k"), OPTIONS_RUN);
    assert_true(cfg.display);
    assert_false(cfg.sdl);
    assert_string_equal(cfg.vnc_host, "127.0.0.1");
    assert_int_equal(cfg.vnc_port, 5900);
    assert_int_equal(PARSE(&cfg, "--display", "sdl", "k"), OPTIONS_RUN);
    assert_true(cfg.display && cfg.sdl);
    assert_string_equal(cfg.vnc_host, ""); /* a window alone: no VNC unless asked */
    assert_int_equal(PARSE(&cfg, "--vnc", "5901", "--display", "sdl", "k"), OPTIONS_RUN);
    assert_true(cfg.sdl);
    assert_int_equal(cfg.vnc_port, 5901);
    assert_int_equal(PARSE(&cfg, "--display", "sdl", "--display", "none", "k"), OPTIONS_RUN);
    assert_false(cfg.display || cfg.sdl);
    assert_int_equal(PARSE(&cfg, "--display", "gtk", "k"), OPTIONS_ERROR);
    assert_string_equal(err, "--display gtk: expected vnc, web[=[HOST:]PORT], sdl or none");
    /* web: loopback port 6080 unless told; beside VNC and SDL */
    assert_int_equal(PARSE(&cfg, "--display", "web", "--display", "sdl", "k"), OPTIONS_RUN);
    assert_true(cfg.display && cfg.sdl);
    assert_string_equal(cfg.web_host, "127.0.0.1");
    assert_int_equal(cfg.web_port, 6080);
    assert_int_equal(PARSE(&cfg, "--display", "web=0.0.0.0:7000", "--display", "vnc", "k"), OPTIONS_RUN);
    assert_string_equal(cfg.web_host, "0.0.0.0");
    assert_int_equal(cfg.web_port, 7000);
    assert_string_equal(cfg.vnc_host, "127.0.0.1");
    assert_int_equal(PARSE(&cfg, "--display", "web=7001", "k"), OPTIONS_RUN);
    assert_string_equal(cfg.web_host, "127.0.0.1");
    assert_int_equal(cfg.web_port, 7001);
    assert_int_equal(PARSE(&cfg, "--display", "web=:80", "k"), OPTIONS_ERROR);
    assert_int_equal(PARSE(&cfg, "--display", "web=70000", "k"), OPTIONS_ERROR);
    assert_string_equal(err, "--display web=70000: expected web=[HOST:]PORT");
}

static void nics(void **state)
{
    (void)state;
    struct slate_config cfg;
    assert_int_equal(PARSE(&cfg, "--net", "user", "--net", "user,loopback=on", "k"), OPTIONS_RUN);
    assert_false(cfg.nics[0].host_loopback); /* the host's loopback is closed by default */
    assert_true(cfg.nics[1].host_loopback);
    assert_int_equal(PARSE(&cfg, "--net", "tap:tap0,loopback=on", "k"), OPTIONS_ERROR);
    assert_int_equal(PARSE(&cfg, "--net", "tap:tap0,mac=52:54:00:ab:cd:ef", "--net",
                           "user,hostfwd=tcp::8080-:80,hostfwd=udp:10.1.2.3:53-:5353", "--net",
                           "socket:/tmp/lan", "k"),
                     OPTIONS_RUN);
    assert_int_equal(cfg.nic_count, 3);
    assert_int_equal(cfg.nics[0].kind, NET_TAP);
    assert_string_equal(cfg.nics[0].name, "tap0");
    assert_true(cfg.nics[0].has_mac);
    assert_int_equal(cfg.nics[0].mac[3], 0xab);
    assert_int_equal(cfg.nics[1].kind, NET_USER);
    assert_int_equal(cfg.nics[1].fwd_count, 2);
    assert_false(cfg.nics[1].fwd[0].udp);
    assert_string_equal(cfg.nics[1].fwd[0].host_addr, "127.0.0.1");
    assert_int_equal(cfg.nics[1].fwd[0].host_port, 8080);
    assert_int_equal(cfg.nics[1].fwd[0].guest_port, 80);
    assert_true(cfg.nics[1].fwd[1].udp);
    assert_string_equal(cfg.nics[1].fwd[1].host_addr, "10.1.2.3");
    assert_int_equal(cfg.nics[2].kind, NET_SOCKET);
    assert_string_equal(cfg.nics[2].name, "/tmp/lan");
    static const char *const bad[] = {"tap:", "bogus", "user,hostfwd=tcp:1-:", "user,hostfwd=sctp::1-:2",
                                      "user,hostfwd=tcp::0-:2", "user,hostfwd=tcp::70000-:2",
                                      "tap:x,hostfwd=tcp::1-:2", "user,mac=52:54:00:00:00",
                                      "user,mac=01:00:5e:00:00:01", "user,speed=fast",
                                      "tap:sixteen-chars-xx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (PARSE(&cfg, "--net", (char *)bad[i], "k") != OPTIONS_ERROR)
            fail_msg("--net %s was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),         cmocka_unit_test(defaults),
        cmocka_unit_test(every_option),  cmocka_unit_test(bad_input),
        cmocka_unit_test(kernel_arguments), cmocka_unit_test(too_many_loads),
        cmocka_unit_test(long_append),   cmocka_unit_test(disks),
        cmocka_unit_test(nics), cmocka_unit_test(displays),   cmocka_unit_test(help_names_exit_codes),
        cmocka_unit_test(snapshot_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
