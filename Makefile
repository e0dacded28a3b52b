# finwait: build the BPF object, embed it through a bpftool skeleton, build
# the Swift binary. `sudo make run` and `sudo make test` are all a fresh
# Debian 12 machine with Swift needs.

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
CLANG ?= $(shell command -v clang 2>/dev/null || echo /opt/swift/usr/bin/clang)
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
CC ?= cc
PREFIX ?= /usr/local

APT_PACKAGES := libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config gcc make iproute2 tmux python3-jsonschema \
	curl prometheus nftables
VMLINUX := bpf/vmlinux/$(ARCH)/vmlinux.h
BPF_OBJ := .build/bpf/finwait.bpf.o
SKEL := Sources/CFinwaitBPF/finwait.skel.h
# `finwait doctor`'s iter/tcp program: its own object, so the doctor loads no tracer maps.
SOCK_OBJ := .build/bpf/sockets.bpf.o
SOCK_SKEL := Sources/CFinwaitBPF/finwait_sockets.skel.h
RELEASE_FLAGS := -c release -Xswiftc -static-stdlib
BIN := .build/release/finwait
DRIVER := .build/finwait-test/fwdrive
STACK_DRIVER := .build/finwait-test/fwstack
DOCTOR_DRIVER := .build/finwait-test/fwdoctor
ARGS ?=

KERNEL_TEST_PACKAGES := qemu-system-x86 busybox-static kmod cpio
# The other kernels the live tests run on (`make test-kernel KERNEL=6.12`;
# without KERNEL, each of KERNELS): the newest Debian package of each, 5.10
# from Debian 11 (bullseye, through a private sources list), 6.1 and 6.12
# from Debian 12.
KERNELS := 5.10 6.1 6.12
KERNEL ?= $(KERNELS)
KERNEL_PACKAGE_5.10 := ^linux-image-5\.10\.0-[0-9]+-amd64$$
KERNEL_SUITE_5.10 := bullseye
KERNEL_PACKAGE_6.1 := ^linux-image-6\.1\.0-[0-9]+-amd64$$
KERNEL_PACKAGE_6.12 := ^linux-image-6\.12\.[0-9]+\+deb12-amd64$$

CHURN := .build/bench/churn
HOLD := .build/bench/hold
FLOOR := .build/bench/floor
SOCKITER := .build/bench/sockiter
SOAK_SECONDS ?= 600
SOAK_STUCK ?=

# JUnit XML of every test run, which .ci/count-tests.py counts. XCTest's
# comes from Tests/LiveTests/XUnitObserver.swift (FINWAIT_XUNIT): SwiftPM
# writes --xunit-output's XCTest file only with --parallel, and there marks
# skipped tests passed. Swift Testing's is SwiftPM's, named after the
# --xunit-output path: host.xml -> host-swift-testing.xml.
TEST_RESULTS := .build/test-results
XCTEST_XUNIT := $(TEST_RESULTS)/host-xctest.xml
SWIFTPM_XUNIT := $(TEST_RESULTS)/host.xml
SWIFT_TESTING_XUNIT := $(TEST_RESULTS)/host-swift-testing.xml
# $(call kernel_xunit,6.1): one file per kernel
kernel_xunit = $(TEST_RESULTS)/kernel-$(1).xml

.PHONY: all deps build run test test-kernel bench bench-replay bench-doctor bench-snapshot soak install clean vmlinux \
	bpf-arm64 vmlinux-arm64 test-arm64

all: build

# Installs only what is missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# -mcpu=v2: clang 21 defaults to v3, whose __sync_fetch_and_add is an atomic
# fetch-add (Linux 5.12+); Linux 5.10 refuses it ("BPF_STX uses reserved
# fields"). v2 keeps the plain atomic add every 5.8+ kernel takes.
BPF_CFLAGS := -g -O2 -Wall -target bpf -mcpu=v2 -D__TARGET_ARCH_$(ARCH)

$(BPF_OBJ): bpf/finwait.bpf.c $(wildcard bpf/*.h) $(VMLINUX) | deps
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) \
		-Ibpf -I$(dir $(VMLINUX)) -c bpf/finwait.bpf.c -o $@.full
	# Strip DWARF (keeps BTF for CO-RE): 700 KB object -> 75 KB embedded.
	$(BPFTOOL) gen object $@ $@.full

$(SKEL): $(BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name finwait_bpf > $@.tmp && mv $@.tmp $@

$(SOCK_OBJ): bpf/sockets.bpf.c bpf/finwait.h $(VMLINUX) | deps
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) \
		-Ibpf -I$(dir $(VMLINUX)) -c bpf/sockets.bpf.c -o $@.full
	$(BPFTOOL) gen object $@ $@.full

$(SOCK_SKEL): $(SOCK_OBJ)
	$(BPFTOOL) gen skeleton $< name finwait_sockets_bpf > $@.tmp && mv $@.tmp $@

build: $(SKEL) $(SOCK_SKEL)
	$(SWIFT) build $(RELEASE_FLAGS)

run: build
	$(BIN) $(ARGS)

$(DRIVER): Tests/driver/fwdrive.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -o $@ $<

$(DOCTOR_DRIVER): Tests/driver/fwdoctor.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -o $@ $<

# Symbols and frame pointers: what a program needs for --stack to name it.
$(STACK_DRIVER): Tests/driver/fwstack.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-omit-frame-pointer -Wall -pthread -o $@ $<

# Unit tests need no privileges; live tests load the real program (root).
# FINWAIT_REQUIRE_LIVE=1 turns a skipped live test into a failure (CI).
# XCTest runs first, then Swift Testing (the property-based parser tests).
# Results: $(XCTEST_XUNIT) and $(SWIFT_TESTING_XUNIT).
test: build $(DRIVER) $(STACK_DRIVER) $(DOCTOR_DRIVER) $(CHURN)
	@mkdir -p $(TEST_RESULTS) && rm -f $(XCTEST_XUNIT) $(SWIFTPM_XUNIT) $(SWIFT_TESTING_XUNIT)
	FINWAIT_BIN=$(abspath $(BIN)) FINWAIT_DRIVER=$(abspath $(DRIVER)) FINWAIT_CHURN=$(abspath $(CHURN)) \
		FINWAIT_STACK_DRIVER=$(abspath $(STACK_DRIVER)) FINWAIT_XUNIT=$(abspath $(XCTEST_XUNIT)) \
		FINWAIT_DOCTOR_DRIVER=$(abspath $(DOCTOR_DRIVER)) \
		$(SWIFT) test --enable-xctest --enable-swift-testing \
		--xunit-output $(SWIFTPM_XUNIT)

# The live tests that depend on the kernel. Not here: the JSON schema check
# (FINWAIT_SCHEMA_CHECK=0: the output format does not depend on the kernel,
# and Python under emulation costs about 10 s a run), and the closer that
# exits 1 ms after its FIN (a timing test: under TCG finwait's wakeup alone
# takes longer than that process lives; the closers named after they are
# gone, which needs no timing, run here).
KERNEL_TESTS := LiveTests.ScenarioTests,LiveTests.AttachTests,LiveTests.ReconciliationTests,LiveTests.MapAuditTests,$\
	LiveTests.StackTests/testTheFunctionsThatSentTheFinAreNamed,$\
	LiveTests.StackTests/testTextLinesAndTheSummaryShowTheCallSite,$\
	LiveTests.StackTests/testHistByStackCountsOneCallSiteAcrossProcesses,$\
	LiveTests.StackTests/testExitAndExecHaveNoStackButStillTheirPath,$\
	LiveTests.StackTests/testTheCallerIsRecoveredWithRegistersReadFromTheTopOfTheKernelStack,$\
	LiveTests.StackTests/testClosersGoneBeforeFinwaitRunsAreNamedFromWhatTheKernelSaw,$\
	LiveTests.ServeTests/testStuckSocketLogsOneLogfmtLine,$\
	LiveTests.DoctorTests/testOrphanWithTCPLinger2AboveAMinuteEndsWhenLinger2Says,$\
	LiveTests.DoctorTests/testLocalPeerInCloseWaitInAnotherNamespaceIsTheCulprit,$\
	LiveTests.DoctorTests/testCallSiteAndExactDwellFromARunningTrace

# The same binary and live scenario tests again, on each KERNEL booted under
# QEMU (software emulation): proves the CO-RE object is not tied to the
# kernel it was built on. Downloads each kernel package (about 70 MB) once.
# Results: kernel-VERSION.xml, written by the guest into a read-write share.
define kernel_run
	@test -n '$(KERNEL_PACKAGE_$(1))' || { echo "make test-kernel: KERNEL=$(1) is none of $(KERNELS)" >&2; exit 2; }
	@rm -f $(call kernel_xunit,$(1))
	Tests/kernels/boot-kernel.sh --share $(abspath $(TEST_RESULTS)) $(if $(KERNEL_SUITE_$(1)),--suite $(KERNEL_SUITE_$(1))) \
		.build/kernels '$(KERNEL_PACKAGE_$(1))' \
		env FINWAIT_BIN=$(abspath $(BIN)) FINWAIT_DRIVER=$(abspath $(DRIVER)) FINWAIT_REQUIRE_LIVE=1 \
		FINWAIT_STACK_DRIVER=$(abspath $(STACK_DRIVER)) FINWAIT_XUNIT=$(abspath $(call kernel_xunit,$(1))) \
		FINWAIT_DOCTOR_DRIVER=$(abspath $(DOCTOR_DRIVER)) FINWAIT_SCHEMA_CHECK=0 \
		$(abspath $(shell $(SWIFT) build --show-bin-path)/finwaitPackageTests.xctest) \
		$(KERNEL_TESTS)

endef

test-kernel: build $(DRIVER) $(STACK_DRIVER) $(DOCTOR_DRIVER)
	$(MAKE) deps EXTRA_PACKAGES="$(KERNEL_TEST_PACKAGES)"
	$(SWIFT) build --build-tests
	@mkdir -p $(TEST_RESULTS)
	$(foreach k,$(KERNEL),$(call kernel_run,$(k)))
# `finwait doctor`'s socket settings reader, timed: sudo .build/bench/sockiter [-r RUNS] [NETNS_PATH]
$(SOCKITER): bench/sockiter.c Sources/CFinwaitBPF/sockets.c Sources/CFinwaitDiag/diag_socket.c $(SOCK_SKEL) | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -ISources/CFinwaitBPF/include -ISources/CFinwaitBPF -ISources/CFinwaitDiag/include -o $@ \
		bench/sockiter.c Sources/CFinwaitBPF/sockets.c Sources/CFinwaitDiag/diag_socket.c -lbpf -lpthread

$(CHURN): bench/churn.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -pthread -o $@ $<

$(HOLD): bench/hold.c | deps
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -o $@ $<

# Overhead on a loopback churn, as ratios to no tracer in the same run, then
# memory with 200,000 connections held in FIN_WAIT2 (root).
$(FLOOR): bench/floor.c bench/floor.bpf.c $(VMLINUX) | deps
	@mkdir -p $(dir $@)
	$(CLANG) -g -O2 -Wall -target bpf -I$(dir $(VMLINUX)) -c bench/floor.bpf.c -o $@.bpf.o
	$(CC) -O2 -Wall -o $@ bench/floor.c $$(pkg-config --cflags --libs libbpf)

bench: build $(CHURN) $(HOLD) $(FLOOR)
	FINWAIT=$(BIN) CHURN=$(CHURN) HOLD=$(HOLD) FLOOR=$(FLOOR) bench/bench.sh

# finwait snapshot with 50,000 held FIN_WAIT2 connections against ss and netstat (root).
bench-snapshot: build $(HOLD)
	FINWAIT=$(BIN) HOLD=$(HOLD) bench/snapshot.sh

# finwait doctor with CONNECTIONS held connections against ss (root).
bench-doctor: build $(HOLD)
	FINWAIT=$(BIN) HOLD=$(HOLD) bench/doctor.sh

# finwait --json under churn for SOAK_SECONDS: flat RSS, no drops, every
# connection accounted for exactly once (root). SOAK_STUCK=D passes --stuck D.
soak: build $(CHURN)
	FINWAIT=$(BIN) CHURN=$(CHURN) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_STUCK=$(SOAK_STUCK) bench/soak.sh

# Consumer throughput: a synthetic record stream through decode, track and
# summary on one CPU, with package-benchmark in its own package (no root).
bench-replay: $(SKEL) $(SOCK_SKEL)
	SWIFT=$(SWIFT) bench/replay.sh

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/finwait
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|^ExecStart=/usr/local/bin/finwait |ExecStart=$(PREFIX)/bin/finwait |' deploy/systemd/finwait.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/finwait.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/finwait.service
	grep -q '^ExecStart=$(PREFIX)/bin/finwait serve ' $(DESTDIR)$(SYSTEMD_UNIT_DIR)/finwait.service

clean:
	rm -rf .build $(SKEL) $(SOCK_SKEL)

# Regenerate the vendored CO-RE header from this machine's kernel. Not part
# of the build: the vendored one makes builds independent of the build host.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX)

# arm64 (CONTRIBUTING.md, "arm64"): the same BPF sources built against
# bpf/vmlinux/arm64/vmlinux.h, made from Debian 12's arm64 kernel's BTF.
# Packages come from Debian's arm64 archive through a private lists
# directory (Tests/arm64/fetch.sh): the system's apt state is left alone.
ARM64_DIR := .build/arm64
ARM64_VMLINUX := bpf/vmlinux/arm64/vmlinux.h
ARM64_KERNEL_PACKAGE := ^linux-image-6\.1\.0-[0-9]+-arm64$$
ARM64_BPF_OBJ := .build/bpf/arm64/finwait.bpf.o
ARM64_SOCK_OBJ := .build/bpf/arm64/sockets.bpf.o
ARM64_GEN := $(ARM64_DIR)/gen
ARM64_SYSROOT := $(ARM64_DIR)/sysroot
ARM64_PROVE := $(ARM64_DIR)/fwprove
ARM64_DRIVER := $(ARM64_DIR)/fwdrive
ARM64_XUNIT := $(TEST_RESULTS)/arm64.xml
ARM64_CC := aarch64-linux-gnu-gcc
ARM64_TEST_PACKAGES := qemu-system-arm gcc-aarch64-linux-gnu cpio
ARM64_BPF_CFLAGS := $(filter-out -D__TARGET_ARCH_%,$(BPF_CFLAGS)) -D__TARGET_ARCH_arm64

.build/bpf/arm64/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(ARM64_VMLINUX) | deps
	@mkdir -p $(dir $@)
	$(CLANG) $(ARM64_BPF_CFLAGS) -Ibpf -I$(dir $(ARM64_VMLINUX)) -c $< -o $@.full
	$(BPFTOOL) gen object $@ $@.full

bpf-arm64: $(ARM64_BPF_OBJ) $(ARM64_SOCK_OBJ)

$(ARM64_DIR)/kernel-package: Tests/arm64/fetch.sh
	Tests/arm64/fetch.sh $(ARM64_DIR) '$(ARM64_KERNEL_PACKAGE)'

# Regenerates the vendored arm64 header from the BTF inside the newest
# Debian 12 arm64 kernel image (Tests/arm64/btf-from-image.py; the x86
# bpftool reads arm64 BTF), and notes which package it came from.
vmlinux-arm64:
	Tests/arm64/fetch.sh $(ARM64_DIR) '$(ARM64_KERNEL_PACKAGE)'
	read -r pkg version < $(ARM64_DIR)/kernel-package && \
	Tests/arm64/btf-from-image.py $(ARM64_DIR)/kroot/boot/vmlinuz-$${pkg#linux-image-} $(ARM64_DIR)/image.btf && \
	$(BPFTOOL) btf dump file $(ARM64_DIR)/image.btf format c > $(ARM64_VMLINUX) && \
	printf 'Generated by `make vmlinux-arm64` from the BTF in the kernel image of\n%s %s (Debian 12, arm64).\nBTF sha256: %s\n' \
		"$$pkg" "$$version" "$$(sha256sum $(ARM64_DIR)/image.btf | cut -d' ' -f1)" > $(dir $(ARM64_VMLINUX))README

$(ARM64_GEN)/finwait.skel.h: $(ARM64_BPF_OBJ)
	@mkdir -p $(dir $@)
	$(BPFTOOL) gen skeleton $< name finwait_bpf > $@.tmp && mv $@.tmp $@

$(ARM64_GEN)/finwait_sockets.skel.h: $(ARM64_SOCK_OBJ)
	@mkdir -p $(dir $@)
	$(BPFTOOL) gen skeleton $< name finwait_sockets_bpf > $@.tmp && mv $@.tmp $@

# The syscall numbers as bpf/syscalls.bpf.h defines them for arm64, its
# macros only: fwprove compares records with them.
$(ARM64_GEN)/syscalls_nr.h: bpf/syscalls.bpf.h
	@mkdir -p $(dir $@)
	$(ARM64_CC) -E -dM -D__TARGET_ARCH_arm64 $< | grep -E '^#define NR_[A-Z0-9_]+ ' > $@.tmp && mv $@.tmp $@

# Static: the guest has nothing but busybox. tracer.c and sockets.c are
# finwait's own libbpf lifecycle, built here against the arm64 skeletons:
# copied beside them, since a quoted #include looks in the source's own
# directory first, where `make build` leaves the x86 skeletons.
$(ARM64_GEN)/%.c: Sources/CFinwaitBPF/%.c
	@mkdir -p $(dir $@)
	cp $< $@
ARM64_PROVE_SOURCES := Tests/arm64/fwprove.c $(ARM64_GEN)/tracer.c $(ARM64_GEN)/sockets.c \
	Sources/CFinwaitBPF/libbpf_print.c Sources/CFinwaitDiag/diag_socket.c
$(ARM64_PROVE): $(ARM64_PROVE_SOURCES) $(ARM64_GEN)/finwait.skel.h $(ARM64_GEN)/finwait_sockets.skel.h \
		$(ARM64_GEN)/syscalls_nr.h $(ARM64_DIR)/kernel-package
	$(ARM64_CC) -O2 -Wall -static -I$(ARM64_GEN) -ISources/CFinwaitBPF/include -ISources/CFinwaitDiag/include \
		-I$(ARM64_SYSROOT)/usr/include -o $@ $(ARM64_PROVE_SOURCES) \
		-L$(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu -lbpf -lelf -lz -lpthread

$(ARM64_DRIVER): Tests/driver/fwdrive.c
	@mkdir -p $(dir $@)
	$(ARM64_CC) -O2 -Wall -static -o $@ $<

# Boots Debian 12's arm64 kernel under qemu-system-aarch64 and checks the
# records of a shutdown(SHUT_WR) and a close() connection (Tests/arm64/prove.sh).
test-arm64:
	$(MAKE) deps EXTRA_PACKAGES="$(ARM64_TEST_PACKAGES)"
	$(MAKE) bpf-arm64 $(ARM64_PROVE) $(ARM64_DRIVER)
	@mkdir -p $(TEST_RESULTS) && rm -f $(ARM64_XUNIT)
	Tests/arm64/prove.sh $(ARM64_DIR) $(ARM64_PROVE) $(ARM64_DRIVER) $(ARM64_XUNIT)

# Deployment files (deploy/, docs/deploy.md).
# The unit goes where systemd looks for locally installed units
# (/usr/local/lib/systemd/system with the default PREFIX), beside the
# binary; /etc/systemd/system stays the administrator's (systemctl edit).
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
# systemd-analyze, promtool, python3-yaml (deploy/check-manifests.py) and a
# venv for kubernetes-validate (PyPI), in Debian's python3 whatever python3
# comes first in PATH.
DEPLOY_PACKAGES := systemd prometheus python3 python3-venv python3-yaml
DEPLOY_PYTHON ?= /usr/bin/python3
DEPLOY_VENV := .build/venv
KUBERNETES_VALIDATE_VERSION := 1.37.0
KUBERNETES_VALIDATE := $(DEPLOY_VENV)/kubernetes-validate-$(KUBERNETES_VALIDATE_VERSION).stamp
IMAGE_PACKAGES := podman runc
# The image's tag: the binary's version, read when the recipe runs.
IMAGE ?= localhost/finwait:$$($(BIN) --version)

.PHONY: deploy-check image image-check

$(KUBERNETES_VALIDATE):
	rm -rf $(DEPLOY_VENV)
	$(DEPLOY_PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)
	touch $@

# No root needed once the packages are there: systemd-analyze verify and
# security (exposure at most 2.5) on the unit with ExecStart at the built
# binary, promtool check/test rules, PrometheusRule == rules file,
# kubernetes-validate --strict.
deploy-check: build
	$(MAKE) deps EXTRA_PACKAGES="$(DEPLOY_PACKAGES)"
	$(MAKE) $(KUBERNETES_VALIDATE)
	DEPLOY_PYTHON=$(DEPLOY_PYTHON) deploy/check.sh $(BIN) $(DEPLOY_VENV)

# The image FROM scratch: the binary, its libraries (ldd) and the loader (root).
image: build
	$(MAKE) deps EXTRA_PACKAGES="$(IMAGE_PACKAGES)"
	deploy/build-image.sh $(BIN) "$(IMAGE)"

# finwait serve in the image, under deploy/seccomp.json with only the
# documented capabilities, counts a held loopback connection on /metrics;
# without bpf in the profile it exits 77 (root).
image-check: image
	deploy/check-image.sh "$(IMAGE)"
