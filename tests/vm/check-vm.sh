#!/usr/bin/env bash
# check-vm.sh BUILD [TEST...]: slate's guest suite inside a Linux VM under QEMU's software
# emulation (TCG), for machines without /dev/kvm. The emulated CPU implements AMD SVM
# (-cpu max), so the VM's own kernel offers /dev/kvm through kvm_amd and the real tests run there.
#
# Everything comes from Debian packages: qemu-system-x86, busybox-static, and Debian's kernel
# package, fetched with `apt-get download` and unpacked under BUILD/vm (never installed here).
# The VM sees this machine's root read-only over virtio-9p under a tmpfs overlay (so it can
# write), and this checkout read-write, so the results come back here. The suite's exit status
# comes back out; a VM that hangs is killed after CHECK_VM_TIMEOUT seconds and reported.
#
# Environment: CHECK_VM_TESTS (the test files, default every tests/t/*.t), CHECK_VM_TIMEOUT
# (default 5400), CHECK_VM_MEMORY (default 6G), SLATE_TIME_SCALE (passed to the tests; default 10),
# SLATE_TEST_SLOW=1 (run the tests that skip under emulation for being slow: reverse.t).
set -euo pipefail
BUILD=${1:-build}
shift || true
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VM=$ROOT/$BUILD/vm
TIMEOUT=${CHECK_VM_TIMEOUT:-5400}
MEMORY=${CHECK_VM_MEMORY:-6G}
SCALE=${SLATE_TIME_SCALE:-10}
say() { echo "check-vm: $*" >&2; }
mkdir -p "$VM"

# ---- the kernel: Debian's, unpacked here ------------------------------------------------------
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1
}
if [ ! -f "$VM/kernel/vmlinuz" ]; then
    pkg=$(kernel_package)
    if [ -z "$pkg" ]; then
        apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null 2>&1 || true
        pkg=$(kernel_package)
    fi
    [ -n "$pkg" ] || { say "cannot find Debian's linux-image-amd64 package (apt-get update?)"; exit 2; }
    say "fetching $pkg (not installed: unpacked under $VM)"
    rm -rf "$VM/deb" "$VM/kernel.tmp" && mkdir -p "$VM/deb" "$VM/kernel.tmp"
    (cd "$VM/deb" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null)
    dpkg-deb -x "$VM"/deb/*.deb "$VM/kernel.tmp/root"
    cp "$VM"/kernel.tmp/root/boot/vmlinuz-* "$VM/kernel.tmp/vmlinuz"
    mv "$VM"/kernel.tmp/root/lib/modules "$VM/kernel.tmp/modules"
    rm -rf "$VM/kernel.tmp/root" "$VM/deb"
    rm -rf "$VM/kernel" && mv "$VM/kernel.tmp" "$VM/kernel"
fi
KVER=$(ls "$VM/kernel/modules")

# ---- the initramfs: busybox, the modules the VM needs, and init -------------------------------
MODULES="virtio_pci 9pnet_virtio 9p overlay kvm_amd tun veth"
build_initramfs() {
    local dir=$VM/initramfs
    rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/lib/modules/$KVER"
    cp /bin/busybox "$dir/bin/busybox"
    # Every module under the directories the VM's drivers live in; depmod resolves the rest.
    local src=$VM/kernel/modules/$KVER
    (cd "$src" && find kernel/drivers/virtio kernel/net/9p kernel/fs/9p kernel/fs/netfs \
        kernel/fs/fscache kernel/fs/overlayfs kernel/arch/x86/kvm kernel/virt kernel/drivers/net/tun.ko \
        kernel/drivers/net/veth.ko kernel/drivers/crypto/ccp -name '*.ko' 2>/dev/null |
        xargs cp --parents -t "$dir/lib/modules/$KVER")
    cp "$src"/modules.builtin* "$src"/modules.order "$dir/lib/modules/$KVER/" 2>/dev/null || true
    busybox depmod -b "$dir" "$KVER"
    sed "s|@MODULES@|$MODULES|" "$ROOT/tests/vm/init" >"$dir/init"
    chmod +x "$dir/init"
    (cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$VM/initramfs.cpio.gz"
}
if [ ! -f "$VM/initramfs.cpio.gz" ] || [ "$ROOT/tests/vm/init" -nt "$VM/initramfs.cpio.gz" ] ||
   [ "$0" -nt "$VM/initramfs.cpio.gz" ]; then
    build_initramfs
fi

# ---- the job the VM runs, written into the checkout it shares ----------------------------------
TESTS=${CHECK_VM_TESTS:-$(cd "$ROOT" && ls tests/t/*.t | tr '\n' ' ')}
[ $# -gt 0 ] && TESTS="$*"
rm -f "$VM/status" "$VM/suite.log"
cat >"$VM/job.sh" <<EOF
#!/bin/bash
# Written by tests/vm/check-vm.sh; run by the VM's init as root, in this checkout.
cd "$ROOT"
export BUILD="$BUILD" SLATE_TIME_SCALE="$SCALE" SLATE_UNDER_EMULATION=1 TMPDIR=/tmp HOME=/root
export SLATE_TEST_SLOW="${SLATE_TEST_SLOW:-}"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# One small VM kept open for the whole run: KVM's static keys stay on, so creating and destroying
# the tests' VMs does not patch kernel text each time (int3 patching races under TCG).
"$BUILD/slate" --serial none "$BUILD/guest/halt_forever.elf" >/dev/null 2>&1 &
keeper=\$!
# The suite's output goes to the console too (the host sees console.log grow as tests finish).
set -o pipefail
perl tests/run-suite.pl $TESTS 2>&1 | tee "$VM/suite.log" >/dev/console
echo \$? >"$VM/status"
kill \$keeper 2>/dev/null
EOF
chmod +x "$VM/job.sh"

# ---- run it ------------------------------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || { say "qemu-system-x86_64 is missing: make deps-vm"; exit 2; }
say "booting Debian's $KVER under TCG (single-threaded, -cpu max with SVM) with ${MEMORY} of RAM;"
say "running $(wc -w <<<"$TESTS") test files with time limits scaled by $SCALE; log: $VM/console.log"
start=$(date +%s)
set +e
timeout -s KILL "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu max,-avx2 -smp 2 -m "$MEMORY" -machine q35 \
    -nographic -no-reboot -nodefaults -serial "file:$VM/console.log" -monitor none \
    -kernel "$VM/kernel/vmlinuz" -initrd "$VM/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet slate.root=$ROOT slate.job=$VM/job.sh" \
    -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev local,id=checkout,path="$ROOT",security_model=passthrough \
    -device virtio-9p-pci,fsdev=checkout,mount_tag=checkout
qemu_rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
[ -f "$VM/suite.log" ] && cat "$VM/suite.log"
if [ "$qemu_rc" = 137 ]; then
    say "the VM did not finish within $TIMEOUT s and was killed (console: $VM/console.log)"
    exit 1
fi
if [ ! -f "$VM/status" ]; then
    say "the suite did not run to its end (qemu status $qemu_rc); the VM's console says:"
    tail -20 "$VM/console.log" >&2
    exit 1
fi
status=$(cat "$VM/status")
say "the suite ran under emulation in ${elapsed} s and exited with $status"
exit "$status"
