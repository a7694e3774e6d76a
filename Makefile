# slate - a KVM hypervisor for hobby operating systems.
# `make` builds build/slate; `make run` boots the demo kernel; `make check` runs every test.

CC ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif
BUILD ?= build
PKG_CONFIG ?= pkg-config
VERSION := 0.1.0

# Debian packages slate needs to build and test; `make deps` installs the missing ones.
DEB_PACKAGES := gcc clang make binutils pkg-config perl time gdb libelf-dev libdw-dev libcmocka-dev \
	libcapstone-dev libpng-dev zlib1g-dev libslirp-dev libvncserver-dev kbd iproute2 iputils-ping vncsnapshot \
	libjpeg-turbo-progs libsdl2-dev xvfb xdotool x11-apps librsvg2-bin help2man man-db debhelper lintian \
	novnc chromium
PKG_MODULES := libelf libdw capstone slirp libvncserver libpng zlib sdl2
# slate itself links only these; the rest belong to modules (src/common/module.h) loaded when used.
CORE_PKG_MODULES := libelf libpng zlib

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CFLAGS ?= -O2 -g
# src/ is the rooms as folders (docs/internals.md): core, boot, devices, ui, debug, and common for
# what every room uses; main.c and the option parser at the top.
SRC_DIRS := src src/core src/boot src/devices src/ui src/debug src/common
# The commit slate is built from, for --version ("unknown" outside a git checkout).
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -modified)
HOST_CFLAGS := -std=c17 $(WARN) -D_GNU_SOURCE -DSLATE_VERSION='"$(VERSION)"' -Iinclude $(SRC_DIRS:%=-I%) \
	-fno-strict-aliasing $(EXTRA_CFLAGS)
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKG_MODULES) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKG_MODULES) 2>/dev/null)
CORE_PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(CORE_PKG_MODULES) 2>/dev/null)
LDLIBS := -pthread

SRCS := $(wildcard $(SRC_DIRS:%=%/*.c))
HDRS := $(wildcard $(SRC_DIRS:%=%/*.h) include/slate/*.h)
# The display's 8x16 font, generated from a console font in Debian's kbd package.
FONT_PSF ?= /usr/share/consolefonts/Lat15-VGA16.psf.gz
FONT_OBJ := $(BUILD)/obj/font8x16.o
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o) $(FONT_OBJ)
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
# Optional parts as shared objects beside slate (slate-NAME.so), each with its library: a boot
# without a window, VNC, a disassembly or user networking loads none of SDL2, libvncserver,
# capstone or libslirp (and GLib). Tests and
# fuzzers link the same code in directly (LIB_OBJS).
MODULE_SRC_vnc := src/ui/ui_vnc.c src/ui/ui_web.c
MODULE_LIB_vnc := libvncserver
MODULE_SRC_sdl := src/ui/ui_sdl.c
MODULE_LIB_sdl := sdl2
MODULE_SRC_disasm := src/debug/disasm.c
MODULE_LIB_disasm := capstone
MODULE_SRC_netuser := src/devices/net_user.c
MODULE_LIB_netuser := slirp
MODULE_SRC_symbols := src/debug/symbols_dw.c
MODULE_LIB_symbols := libdw
MODULE_NAMES := vnc sdl disasm netuser symbols
MODULES := $(MODULE_NAMES:%=$(BUILD)/slate-%.so)
MODULE_OBJS := $(foreach m,$(MODULE_NAMES),$(MODULE_SRC_$(m):src/%.c=$(BUILD)/obj/%.o))
SLATE_OBJS := $(filter-out $(MODULE_OBJS),$(OBJS))
REPLAY_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: print-ci-vm-tests all deps deps-vm libs run check check-asan check-tsan check-nokvm check-vm fuzz fuzz-build soak unit \
	guests bench clean format need-kvm install uninstall man
all: $(BUILD)/slate $(MODULES)

# Before the first compile: the Debian packages (installed when missing, as `make deps` does, or
# one line saying what to run), then every library slate builds against and the console font.
# Every rule that builds waits for it (order-only: `| libs`, or through the build directories).
libs: deps
	@test -r $(FONT_PSF) || { echo "slate: the console font $(FONT_PSF) is missing (Debian's kbd package): run \`make deps\`" >&2; exit 1; }
	@missing=""; for m in $(PKG_MODULES); do $(PKG_CONFIG) --exists $$m 2>/dev/null || missing="$$missing $$m"; done; \
	if [ -n "$$missing" ]; then \
	  echo "slate: missing libraries:$$missing. Run \`make deps\` to install the Debian packages (needs root or sudo)." >&2; \
	  exit 1; fi; \
	$(PKG_CONFIG) --atleast-version=0.9.14 libvncserver || { \
	  echo "slate: libvncserver $$($(PKG_CONFIG) --modversion libvncserver) is too old: 0.9.14 or later is needed (older ones can send heap bytes to a viewer on a mode switch)" >&2; exit 1; }

# soak and bench boot real guests: they stop at once, saying why, when KVM cannot be used.
need-kvm: $(BUILD)/slate $(BUILD)/guest/power.elf
	@$(BUILD)/slate --check $(BUILD)/guest/power.elf 2>&1 | sed -n 's/^kvm not usable here: /slate: /p' | \
	  { read -r why && { echo "$$why" >&2; echo "slate: this target boots guests and needs KVM" >&2; exit 1; } || true; }

# The commit in --version: the header changes (and options.o is rebuilt) only when the commit does.
$(BUILD)/gen/commit.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define SLATE_COMMIT "$(COMMIT)"' >$@.new; cmp -s $@.new $@ && rm -f $@.new || mv -f $@.new $@
$(BUILD)/obj/options.o: $(BUILD)/gen/commit.h
$(BUILD)/obj/options.o: HOST_CFLAGS += -include $(BUILD)/gen/commit.h
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: src/%.c $(HDRS) | $(BUILD)/obj libs
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/gen/font8x16.c: tools/psf2c.pl | libs
	@mkdir -p $(BUILD)/gen
	perl tools/psf2c.pl $(FONT_PSF) > $@.tmp && mv $@.tmp $@
$(FONT_OBJ): $(BUILD)/gen/font8x16.c | $(BUILD)/obj
	$(CC) $(HOST_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

# -rdynamic: the modules call back into slate (device.h, display.h, log.h).
$(BUILD)/slate: $(SLATE_OBJS) | $(MODULES)
	$(CC) $(CFLAGS) $(LDFLAGS) -rdynamic -o $@ $^ $(CORE_PKG_LIBS) $(LDLIBS) -ldl

$(BUILD)/pic/%.o: src/%.c $(HDRS) | libs
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -fPIC -c -o $@ $<
.SECONDARY: # objects built on the way to a module or test are kept, not rebuilt next time
define module_rule
$(BUILD)/slate-$(1).so: $(MODULE_SRC_$(1):src/%.c=$(BUILD)/pic/%.o)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -shared -o $$@ $$^ $$$$($(PKG_CONFIG) --libs $(MODULE_LIB_$(1))) $$(LDLIBS)
endef
$(foreach m,$(MODULE_NAMES),$(eval $(call module_rule,$(m))))

$(BUILD)/obj $(BUILD)/unit $(BUILD)/guest $(BUILD)/bench: | libs
	mkdir -p $@

# ---- dependencies ------------------------------------------------------------------------------
deps:
	@tools/deps.sh $(DEB_PACKAGES)

# ---- guest kernels (freestanding, built with the host gcc and ld whatever CC is) ------------
GUEST_CC ?= gcc
GUEST_CFLAGS := -std=gnu17 -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables -Wall -Wextra -Werror \
	-Iinclude -Itests/guest
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

GUEST_C := $(wildcard tests/guest/*.c)
GUEST_ELF64 := $(GUEST_C:tests/guest/%.c=$(BUILD)/guest/%.elf)
GUEST_REAL := $(patsubst tests/guest/%.S,$(BUILD)/guest/%.bin,$(wildcard tests/guest/real*.S))
GUEST_PROT := $(patsubst tests/guest/%.S,$(BUILD)/guest/%.elf,$(wildcard tests/guest/prot*.S))

$(BUILD)/guest/%.elf: tests/guest/%.c tests/guest/guest.h tests/guest/netlib.h tests/guest/guest64.ld include/slate/slate.h include/slate/guest.h | $(BUILD)/guest
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_EXTRA) $(GUEST_LDFLAGS) -m64 -T tests/guest/guest64.ld -o $@ $<
# profile.c with a leaf hot() that keeps no frame (no -mno-omit-leaf-frame-pointer): its callers
# come from the call frame information.
$(BUILD)/guest/profile-leaf.elf: tests/guest/profile.c tests/guest/guest.h tests/guest/guest64.ld include/slate/slate.h include/slate/guest.h | $(BUILD)/guest
	$(GUEST_CC) $(GUEST_CFLAGS) -fno-omit-frame-pointer -DLEAF_HOT $(GUEST_LDFLAGS) -m64 -T tests/guest/guest64.ld -o $@ $<
GUEST_ELF64 += $(BUILD)/guest/profile-leaf.elf
# bt.c again with frame pointers (bt.elf has none, as gcc -O2 leaves it): backtraces of both.
$(BUILD)/guest/bt-fp.elf: tests/guest/bt.c tests/guest/guest.h tests/guest/guest64.ld include/slate/slate.h include/slate/guest.h | $(BUILD)/guest
	$(GUEST_CC) $(GUEST_CFLAGS) -fno-omit-frame-pointer $(GUEST_LDFLAGS) -m64 -T tests/guest/guest64.ld -o $@ $<
GUEST_ELF64 += $(BUILD)/guest/bt-fp.elf
# The profiler's test kernel keeps every frame pointer, leaf functions' too: its stacks are tested.
$(BUILD)/guest/profile.elf: GUEST_EXTRA := -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer

$(BUILD)/guest/real%.bin: tests/guest/real%.S include/slate/slate.h | $(BUILD)/guest
	$(GUEST_CC) -m32 -Iinclude -c -o $(BUILD)/guest/real$*.o $<
	ld -m elf_i386 -Ttext=0 --oformat binary -o $@ $(BUILD)/guest/real$*.o

$(BUILD)/guest/prot%.elf: tests/guest/prot%.S include/slate/slate.h | $(BUILD)/guest
	$(GUEST_CC) -m32 -Iinclude -c -o $(BUILD)/guest/prot$*.o $<
	ld -m elf_i386 -Ttext=0x100000 -e _start -z noexecstack -o $@ $(BUILD)/guest/prot$*.o

# Kernels for the other boot protocols (tests/guest/boot): written as their specifications and
# tutorials show, knowing nothing of slate. The ELF64 Multiboot2 kernel is the 32-bit one with a
# framebuffer request, converted as GRUB users do (objcopy -O elf64-x86-64).
BOOT_CFLAGS := -std=gnu17 -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -mno-red-zone \
	-mgeneral-regs-only -fno-asynchronous-unwind-tables -Wall -Wextra -Werror
BOOT_DEPS := tests/guest/boot/common.h tests/guest/boot/mb_start.S tests/guest/boot/mb.ld | $(BUILD)/guest
$(BUILD)/guest/boot-mb2.elf: tests/guest/boot/mb2.c $(BOOT_DEPS)
	$(GUEST_CC) $(BOOT_CFLAGS) -m32 -DMB2 $(GUEST_LDFLAGS) -T tests/guest/boot/mb.ld -o $@ tests/guest/boot/mb_start.S $<
$(BUILD)/guest/boot-mb2-64.elf: tests/guest/boot/mb2.c $(BOOT_DEPS)
	$(GUEST_CC) $(BOOT_CFLAGS) -m32 -DMB2 -DWANT_FB $(GUEST_LDFLAGS) -T tests/guest/boot/mb.ld -o $@.32 tests/guest/boot/mb_start.S $<
	objcopy -O elf64-x86-64 $@.32 $@ && rm -f $@.32
$(BUILD)/guest/boot-mb1.elf: tests/guest/boot/mb1.c $(BOOT_DEPS)
	$(GUEST_CC) $(BOOT_CFLAGS) -m32 $(GUEST_LDFLAGS) -T tests/guest/boot/mb.ld -o $@ tests/guest/boot/mb_start.S $<
$(BUILD)/guest/boot-limine.elf: tests/guest/boot/limine.c tests/guest/boot/common.h tests/guest/boot/limine.ld | $(BUILD)/guest
	$(GUEST_CC) $(BOOT_CFLAGS) -m64 -mcmodel=kernel $(GUEST_LDFLAGS) -Wl,-z,max-page-size=0x1000 \
	  -T tests/guest/boot/limine.ld -o $@ $<
# The same kernel position-independent: -fpie code, -static-pie, RELATIVE relocations to apply.
$(BUILD)/guest/boot-limine-pie.elf: tests/guest/boot/limine.c tests/guest/boot/common.h tests/guest/boot/limine-pie.ld | $(BUILD)/guest
	$(GUEST_CC) $(BOOT_CFLAGS) -m64 -fpie -DLIMINE_PIE $(filter-out -static -no-pie,$(GUEST_LDFLAGS)) \
	  -static-pie -Wl,-z,max-page-size=0x1000 -Wl,-z,nopack-relative-relocs -T tests/guest/boot/limine-pie.ld -o $@ $<
GUEST_BOOT := $(addprefix $(BUILD)/guest/boot-,mb2.elf mb2-64.elf mb1.elf limine.elf limine-pie.elf)

guests: $(GUEST_ELF64) $(GUEST_REAL) $(GUEST_PROT) $(GUEST_BOOT)

# ---- the demo OS (guest/): a flat image that boots from real mode -------------------------
DEMO_SRCS := guest/boot.S $(wildcard guest/*.c)
DEMO_OBJS := $(patsubst guest/%,$(BUILD)/demo/%.o,$(DEMO_SRCS))
DEMO_ELF := $(BUILD)/guest/demo.elf
DEMO := $(BUILD)/guest/demo.bin
# gcc may turn a byte loop into a call to memcpy/memset: not inside memcpy and memset themselves.
DEMO_CFLAGS := $(GUEST_CFLAGS) -m64 -fno-tree-loop-distribute-patterns

$(BUILD)/demo/%.c.o: guest/%.c guest/kernel.h include/slate/slate.h include/slate/guest.h | libs
	@mkdir -p $(BUILD)/demo
	$(GUEST_CC) $(DEMO_CFLAGS) -c -o $@ $<
$(BUILD)/demo/boot.S.o: guest/boot.S include/slate/slate.h | libs
	@mkdir -p $(BUILD)/demo
	$(GUEST_CC) -m64 -Iinclude -c -o $@ $<
$(DEMO_ELF): $(DEMO_OBJS) guest/kernel.ld | $(BUILD)/guest
	$(GUEST_CC) $(GUEST_LDFLAGS) -m64 -T guest/kernel.ld -o $@ $(DEMO_OBJS)
$(DEMO): $(DEMO_ELF)
	objcopy -O binary $< $@

# ---- installing ---------------------------------------------------------------------------------
# GNU conventions: `make install PREFIX=/usr DESTDIR=/tmp/root`. The modules go to lib/slate, where
# the binary finds them from its own location (src/common/module.c), so a moved tree still works.
PREFIX ?= /usr/local
MAN := $(BUILD)/slate.1
INSTALLED_DIRS := bin lib/slate include/slate share/man/man1 share/doc/slate \
	share/bash-completion/completions
$(MAN): $(BUILD)/slate docs/slate.h2m
	help2man --no-info --section=1 --include=docs/slate.h2m --output=$@ $(BUILD)/slate
man: $(MAN)
install: all $(MAN) $(DEMO)
	for d in $(INSTALLED_DIRS); do install -d "$(DESTDIR)$(PREFIX)/$$d"; done
	install -m 755 $(BUILD)/slate "$(DESTDIR)$(PREFIX)/bin/slate"
	install -m 644 $(MODULES) "$(DESTDIR)$(PREFIX)/lib/slate/"
	install -m 644 include/slate/*.h "$(DESTDIR)$(PREFIX)/include/slate/"
	install -m 644 $(MAN) "$(DESTDIR)$(PREFIX)/share/man/man1/slate.1"
	install -m 644 README.md docs/*.md "$(DESTDIR)$(PREFIX)/share/doc/slate/"
	install -m 644 $(DEMO) $(DEMO_ELF) "$(DESTDIR)$(PREFIX)/lib/slate/"
	install -m 644 tools/slate.bash-completion "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/slate"
uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/slate" "$(DESTDIR)$(PREFIX)/share/man/man1/slate.1" \
	  "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/slate"
	rm -rf "$(DESTDIR)$(PREFIX)/lib/slate" "$(DESTDIR)$(PREFIX)/include/slate" \
	  "$(DESTDIR)$(PREFIX)/share/doc/slate"
	@# Inside a DESTDIR, the directories install made are removed too once empty (never the
	@# system's own /usr/local/bin and the like).
	@if [ -n "$(DESTDIR)" ]; then for d in $(INSTALLED_DIRS); do p="$(DESTDIR)$(PREFIX)/$$d"; \
	  while [ "$$p" != "$(DESTDIR)" ] && [ "$$p" != / ]; do rmdir "$$p" 2>/dev/null || [ ! -e "$$p" ] || break; \
	  p=$$(dirname "$$p"); done; done; fi

# `make run`: the demo with two CPUs, a screen on VNC, user-mode networking and a scratch disk.
RUN_DISK := $(BUILD)/scratch.img
RUN_VNC ?= 127.0.0.1:5900
RUN_WEB ?= 127.0.0.1:6080
RUN_ARGS = --smp 2 -m 128M --display web=$(RUN_WEB) --display vnc --vnc $(RUN_VNC) --net user --disk $(RUN_DISK) $(DEMO)
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/slate $(DEMO)
	@test -e $(RUN_DISK) || { truncate -s 16M $(RUN_DISK) && \
	  echo "slate: created $(RUN_DISK), a 16 MiB scratch disk for the demo"; }
	@why=$$($(BUILD)/slate --check $(RUN_ARGS) | sed -n 's/^kvm not usable here: //p'); \
	if [ -n "$$why" ]; then echo "slate: $$why" >&2; \
	  echo "slate: the demo cannot boot on this machine (exit status 125)" >&2; exit 125; fi
	@echo "slate: the screen is at http://$(RUN_WEB)/ in a browser, or vnc://$(RUN_VNC) (vncviewer $(RUN_VNC)); Ctrl-A x quits"
	$(BUILD)/slate $(RUN_ARGS)

# ---- unit tests (cmocka) -------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
$(BUILD)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB_OBJS) | $(BUILD)/unit
	$(CC) $(HOST_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIB_OBJS) \
	  $(PKG_LIBS) $$($(PKG_CONFIG) --libs cmocka) $(LDLIBS)
# Device tests run against the fake machine (tests/fake/fake_host.c) in place of the core's side
# of device.h (device_host.c): no KVM, so they run everywhere.
$(BUILD)/unit/test_dev_%: tests/unit/test_dev_%.c $(wildcard tests/unit/*.h) tests/fake/fake_host.c \
	  tests/fake/fake_host.h $(LIB_OBJS) | $(BUILD)/unit
	$(CC) $(HOST_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Itests/fake -Wno-missing-prototypes -o $@ $< \
	  tests/fake/fake_host.c $(filter-out $(BUILD)/obj/core/device_host.o,$(LIB_OBJS)) \
	  $(PKG_LIBS) $$($(PKG_CONFIG) --libs cmocka) $(LDLIBS)
unit: $(UNIT_BINS)

# ---- test tools (never sanitized: they are the clients, not what is tested) ------------------
$(BUILD)/tools/vnctool: tests/tools/vnctool.c | libs
	@mkdir -p $(BUILD)/tools
	$(CC) $(HOST_CFLAGS) -O2 -g -Wno-missing-prototypes -o $@ $< $$($(PKG_CONFIG) --libs libvncclient libpng)
$(BUILD)/tools/slow_vnc_start.so: tests/tools/slow_vnc_start.c | libs
	@mkdir -p $(BUILD)/tools
	$(CC) $(HOST_CFLAGS) -O2 -g -shared -fPIC -o $@ $< -ldl
TEST_TOOLS := $(BUILD)/tools/vnctool $(BUILD)/tools/slow_vnc_start.so

# ---- benchmarks ----------------------------------------------------------------------------
$(BUILD)/bench/floor: bench/floor.c | $(BUILD)/bench
	$(CC) $(HOST_CFLAGS) $(CFLAGS) -o $@ $<
$(BUILD)/bench/taprate: bench/taprate.c | $(BUILD)/bench
	$(CC) $(HOST_CFLAGS) $(CFLAGS) -o $@ $<
$(BUILD)/bench/preadrate: bench/preadrate.c | $(BUILD)/bench
	$(CC) $(HOST_CFLAGS) $(CFLAGS) -o $@ $<
$(BUILD)/bench/flightcost: bench/flightcost.c $(BUILD)/obj/core/flight.o $(BUILD)/obj/common/log.o | $(BUILD)/bench
	$(CC) $(HOST_CFLAGS) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/%.bin: bench/%.S | $(BUILD)/bench
	$(GUEST_CC) -m32 -Iinclude -c -o $(BUILD)/bench/$*.o $<
	ld -m elf_i386 -Ttext=0 --oformat binary -o $@ $(BUILD)/bench/$*.o
BENCH_GUESTS := $(patsubst bench/%.S,$(BUILD)/bench/%.bin,$(wildcard bench/*.S))

bench: $(BUILD)/slate $(BUILD)/bench/floor $(BUILD)/bench/taprate $(BUILD)/bench/preadrate $(BUILD)/bench/flightcost $(BENCH_GUESTS) guests $(TEST_TOOLS) need-kvm
	bench/run.sh $(BUILD)

# ---- everything ----------------------------------------------------------------------------
# Unit tests speak TAP through cmocka; guest tests are shell scripts that boot real kernels.
check: $(BUILD)/slate unit guests $(DEMO) $(TEST_TOOLS) $(REPLAY_BINS)
	BUILD=$(BUILD) perl tests/run-suite.pl $(UNIT_BINS) $(sort $(wildcard tests/t/*.t))

# The guest suite inside a Linux VM under QEMU's emulation (TCG, an emulated AMD SVM CPU), for
# machines without /dev/kvm: Debian's qemu-system-x86, busybox-static and kernel package only
# (tests/vm/check-vm.sh; CHECK_VM_TESTS picks test files). Slow: see docs/testing.md.
VM_PACKAGES := qemu-system-x86 busybox-static
deps-vm:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(VM_PACKAGES)"
check-vm: deps-vm $(BUILD)/slate unit guests $(DEMO) $(TEST_TOOLS) $(REPLAY_BINS)
	tests/vm/check-vm.sh $(BUILD) $(CHECK_VM_TESTS)

# What CI runs under emulation where there is no KVM: every device booted at least once (irqrule.t
# drives serial, timer, disk, network card, keyboard and pointer; boot.t power and the info
# block), every exit and crash path (boot, hypercalls, crash, lifecycle, unclaimed).
CI_VM_TESTS := tests/t/boot.t tests/t/hypercalls.t tests/t/serial.t tests/t/irqrule.t \
	tests/t/crash.t tests/t/lifecycle.t tests/t/unclaimed.t tests/t/docs.t
print-ci-vm-tests:
	@echo $(CI_VM_TESTS)

# make check as a machine without /dev/kvm sees it (a private mount namespace hides it; root).
check-nokvm: $(BUILD)/slate unit guests $(DEMO) $(TEST_TOOLS) $(REPLAY_BINS)
	tools/without-kvm env BUILD=$(BUILD) perl tests/run-suite.pl $(UNIT_BINS) $(sort $(wildcard tests/t/*.t))

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer, in a build of its own.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
check-asan:
	$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" check

# The whole suite under ThreadSanitizer (libvncserver's own threads suppressed: tests/tsan.supp).
# A report makes slate exit with 66, which every test notices.
TSAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread
check-tsan:
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp report_thread_leaks=0 $(TSAN_OPTIONS)" \
	  $(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="$(TSAN_FLAGS)" LDFLAGS="-fsanitize=thread" check

# Many VMs with disk, network and timer traffic for a long time (SOAK_VMS, SOAK_SECONDS).
SOAK_VMS ?= 20
SOAK_SECONDS ?= 600
soak: $(BUILD)/slate guests need-kvm
	tests/soak.sh $(BUILD) $(SOAK_VMS) $(SOAK_SECONDS)

# libFuzzer harnesses (clang), each run for FUZZ_SECONDS from the committed corpus
# (tests/fuzz/corpus/, refreshed with -set_cover_merge=1); crashes land in build-fuzz/ and become
# regression tests (tests/fuzz/regressions/, replayed by tests/t/fuzz.t). A harness that drives a
# device's static functions includes that device's .c, which is then left out of the link.
FUZZ_SECONDS ?= 30
FUZZ_SRCS := $(filter-out src/main.c,$(SRCS)) $(BUILD)/gen/font8x16.c
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
fuzz_included = $(shell sed -n 's|^\#include "\.\./\.\./\(src/[a-z_/]*\.c\)"|\1|p' $(1))
FUZZ_HARNESSES := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
# Device harnesses (those including fuzz_devices.h) run on the unit tests' fake machine in place of
# device_host.c; the others (gdb, monitor, loader, ...) on a struct vm without KVM (fake_machine.c).
fuzz_on_fake = $(shell grep -l 'fuzz_devices.h' $(1))
fuzz_fake = $(if $(call fuzz_on_fake,$(1)),tests/fake/fake_host.c,tests/fuzz/fake_machine.c)
fuzz_not_linked = $(call fuzz_included,$(1)) $(if $(call fuzz_on_fake,$(1)),src/core/device_host.c)
FUZZ_DEPS := tests/fuzz/fake_machine.c tests/fuzz/fake_machine.h tests/fuzz/fuzz_input.h \
	tests/fuzz/fuzz_devices.h tests/fake/fake_host.c tests/fake/fake_host.h
build-fuzz/%: tests/fuzz/%.c $(FUZZ_DEPS) $(FUZZ_SRCS) $(HDRS) | libs
	@mkdir -p build-fuzz
	clang $(HOST_CFLAGS) $(FUZZ_FLAGS) $(PKG_CFLAGS) -Itests/fuzz -Itests/fake -Wno-missing-prototypes -o $@ $< \
	  $(call fuzz_fake,$<) $(filter-out $(call fuzz_not_linked,$<),$(FUZZ_SRCS)) $(PKG_LIBS) $(LDLIBS)
fuzz-build: $(FUZZ_HARNESSES)
# The same harnesses without libFuzzer, built by the project's compiler with its flags (and so with
# the sanitizers under check-asan), to replay the committed corpus in `make check`.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(FUZZ_DEPS) $(LIB_OBJS) | libs
	@mkdir -p $(BUILD)/fuzz
	$(CC) $(HOST_CFLAGS) $(CFLAGS) $(LDFLAGS) $(PKG_CFLAGS) -Itests/fuzz -Itests/fake -o $@ $< $(call fuzz_fake,$<) \
	  tests/fuzz/replay.c $(filter-out $(patsubst src/%.c,$(BUILD)/obj/%.o,$(call fuzz_not_linked,$<)),$(LIB_OBJS)) \
	  $(PKG_LIBS) $(LDLIBS)
# Exits non-zero when any harness crashes, leaks, times out or cannot start (its log is kept in
# build-fuzz/NAME.log).
fuzz: $(FUZZ_HARNESSES) guests
	@mkdir -p build-fuzz/corpus-fuzz_loader && cp $(BUILD)/guest/*.elf $(BUILD)/guest/*.bin build-fuzz/corpus-fuzz_loader/
	@failed=""; for f in $(FUZZ_HARNESSES); do name=$$(basename $$f); echo "== $$name for $(FUZZ_SECONDS) s"; \
	  mkdir -p build-fuzz/corpus-$$name; seeds=tests/fuzz/corpus/$$name; [ -d $$seeds ] || seeds=; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 -artifact_prefix=build-fuzz/ \
	    build-fuzz/corpus-$$name $$seeds >build-fuzz/$$name.log 2>&1; rc=$$?; \
	  grep -E 'DONE|ERROR|SUMMARY|Test unit written' build-fuzz/$$name.log; \
	  if [ $$rc -ne 0 ]; then echo "FAILED: $$name exited with $$rc (build-fuzz/$$name.log)"; failed="$$failed $$name"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi; echo "fuzz: every harness ran clean"

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz

format:
	clang-format -i $(SRCS) $(filter-out include/%,$(HDRS)) include/slate/*.h tests/unit/*.c bench/*.c
