# board/image.mk: appliance image targets, included by the top-level Makefile.
# See board/README.md. Every variable is prefixed IMG_; all can be overridden on the command line.
#
#   make cross        static musl builds of kpbxd + kpbx for x86_64 and aarch64
#   make image        bootable test image (Debian kernel + initramfs) for IMG_ARCH
#   make qemu-test    boot it under qemu-system and drive the serial console (acceptance)
#   make qemu-run     boot it interactively (serial console on this terminal; Ctrl-a x quits)
#   make sizes        stripped sizes and `file` output of the musl binaries (used by make bench);
#                     fails when one is over its size budget (IMG_SIZE_BUDGET_<arch>)
#   make br-image [BUILDROOT=/path/to/buildroot] [BOARD=qemu_x86_64]   Buildroot image
#   make br-test      offline Buildroot image (BOARD qemu_x86_64_debian) + the qemu scenario
#   make image-deps   apt-get install the Debian packages these targets need (root)

# Including this file must not change the including Makefile's default goal.
IMG_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)
IMG_BOARD_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
IMG_TOP := $(abspath $(IMG_BOARD_DIR)/..)

IMG_ARCH ?= x86_64
IMG_ARCHES ?= x86_64 aarch64
IMG_OUT ?= $(IMG_TOP)/target/image
IMG_DL ?= $(IMG_OUT)/dl
IMG_PYTHON ?= python3
IMG_CARGO ?= cargo
# 2 shared cores: build at low priority
IMG_NICE ?= nice -n 10
IMG_CARGO_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),$(IMG_TOP)/target)
# kpbx is the multi-call kpbxd called by that name: the image carries a symlink.
IMG_BINS := kpbxd

IMG_TRIPLE_x86_64 := x86_64-unknown-linux-musl
IMG_TRIPLE_aarch64 := aarch64-unknown-linux-musl
# Cross settings live here, not in .cargo/config.toml (Buildroot overwrites that file).
# x86_64 musl needs none: the host cc links, cc-rs finds musl-gcc for C dependencies.
# aarch64: link with the plain gcc driver (rustc supplies its self-contained musl crt and libc)
# through scripts/aarch64-static-pie-cc, which makes the static non-PIE link that rustc asks for
# on this target a static-pie like x86_64's (ASLR; 1,200 bytes more, docs/size.md);
# C dependencies (LMDB, ring) are compiled by the musl-dev:arm64 wrapper.
# Both link with the rust-lld of the Rust toolchain (gcc driver, -fuse-ld=lld; Debian 12's
# lld 14 has no -z pack-relative-relocs and made a 21 kB larger .eh_frame), for size (docs/size.md):
#  --icf=all: identical functions folded into one (Rust does not promise distinct function
#    addresses; the C folded is musl's and ring's identical helpers, none compared by address);
#  --no-eh-frame-hdr: no binary-search table for the unwinder. panic = "abort" never unwinds;
#    only a RUST_BACKTRACE dump of a panic used it (on the stripped binary it printed bare
#    addresses; now it prints none). The .eh_frame itself stays (crtbegin registers it).
#  -z pack-relative-relocs: static-pie relative relocations as RELR (musl's start-up code
#    applies them; the binary stays position independent, ASLR as before).
# The Buildroot package builds with its own toolchain and flags (buildroot/package/kpbxd).
IMG_RUST_LLD_DIR = $(shell rustc --print sysroot)/lib/rustlib/$(shell rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld
IMG_LINK_LLD = -C link-arg=-B$(IMG_RUST_LLD_DIR) -C link-arg=-fuse-ld=lld
IMG_LINK_CUTS = -C link-arg=-Wl,--icf=all -C link-arg=-Wl,--no-eh-frame-hdr
IMG_LINK_FLAGS_x86_64 = $(IMG_LINK_LLD) -C link-arg=-Wl,-z,pack-relative-relocs $(IMG_LINK_CUTS)
IMG_LINK_FLAGS_aarch64 = $(IMG_LINK_FLAGS_x86_64)
IMG_CARGO_ENV_x86_64 = CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS='$(IMG_LINK_FLAGS_x86_64)'
IMG_CARGO_ENV_aarch64 = \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=$(IMG_BOARD_DIR)/scripts/aarch64-static-pie-cc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUSTFLAGS='$(IMG_LINK_FLAGS_aarch64)' \
	CC_aarch64_unknown_linux_musl=aarch64-linux-musl-gcc \
	AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
# What cross-<arch> runs besides cargo and rustc (command:Debian package); checked before the
# build, so that a missing one fails at once naming its package (make image-deps installs all).
IMG_TOOLS_x86_64 := musl-gcc:musl-tools strip:binutils file:file
IMG_TOOLS_aarch64 := aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu aarch64-linux-musl-gcc:musl-dev:arm64 \
	aarch64-linux-gnu-ar:binutils-aarch64-linux-gnu aarch64-linux-gnu-strip:binutils-aarch64-linux-gnu file:file
IMG_STRIP_x86_64 := strip
IMG_STRIP_aarch64 := aarch64-linux-gnu-strip

img_bin = $(abspath $(IMG_CARGO_TARGET_DIR))/$(IMG_TRIPLE_$(1))/release/$(2)

# Size budget of each stripped binary, in bytes (MB = 10^6), per arch. Every `make cross-<arch>`
# (so `make test`, i.e. CI: x86_64 through its QEMU boot test, then cross-aarch64) and `make sizes` fail
# when a binary is over it. IMG_SIZE_BUDGET_<arch>= (empty) turns the check off for an experiment.
IMG_SIZE_BUDGET_x86_64 ?= 5000000
IMG_SIZE_BUDGET_aarch64 ?= 5000000
# `make sizes` prints its whole table first, then fails; cross-<arch> checks when this is yes.
IMG_CROSS_SIZE_CHECK ?= yes
# While an arch is over its budget, every `make cross-<arch>` (so CI) holds it under a ceiling
# that only goes down: growth fails CI at once, while `make sizes` keeps failing on the budget.
# Lower it with every cut; empty (= the budget) once under. Both are under since 2026-12-06
# (x86_64 4,946,224 bytes, aarch64 4,064,144; docs/size.md).
IMG_SIZE_CEILING_x86_64 ?=
IMG_SIZE_CEILING_aarch64 ?=

# $(call img_size_check,arch): non-zero exit, naming budget and size, when a stripped binary of
# arch is over IMG_SIZE_BUDGET_arch.
img_size_check = rc=0; budget='$(or $(2),$(IMG_SIZE_BUDGET_$(1)))'; \
	for b in $(IMG_BINS); do \
		s=$$(mktemp); cp "$(call img_bin,$(1),$$b)" "$$s"; $(IMG_STRIP_$(1)) "$$s"; \
		n=$$(wc -c <"$$s"); rm -f "$$s"; \
		if [ -n "$$budget" ] && [ "$$n" -gt "$$budget" ]; then \
			echo "size budget exceeded: $(1)/$$b is $$n bytes stripped, over the limit of $$budget bytes by $$((n - budget)) ($(if $(2),ceiling IMG_SIZE_CEILING_$(1); budget $(IMG_SIZE_BUDGET_$(1)),IMG_SIZE_BUDGET_$(1)))" >&2; \
			rc=1; \
		fi; \
	done; exit $$rc

# Use prebuilt binaries instead of `make cross` (e.g. a stand-in while the daemon is in flux):
# make image IMG_KPBXD_BIN=/path/kpbxd IMG_KPBX_BIN=/path/kpbx
IMG_KPBXD_BIN ?=
IMG_KPBX_BIN ?=

IMG_DEBS := qemu-system-x86 qemu-system-arm busybox-static musl-tools gcc-aarch64-linux-gnu tzdata \
	musl-dev:arm64 cpio kmod e2fsprogs file xz-utils

.PHONY: cross cross-x86_64 cross-aarch64 image image-all image-x86_64 image-aarch64 \
	qemu-test qemu-test-all qemu-test-x86_64 qemu-test-aarch64 qemu-run sizes br-image br-test \
	image-deps image-clean

cross: $(addprefix cross-,$(IMG_ARCHES))

# cargo decides what is up to date (in IMG_CARGO_TARGET_DIR); the binaries must come out static-pie.
cross-x86_64 cross-aarch64: cross-%:
	@missing=""; for t in $(IMG_TOOLS_$*); do \
		command -v "$${t%%:*}" >/dev/null || missing="$$missing $${t#*:}"; done; \
	test -d "$$(rustc --print sysroot)/lib/rustlib/$(IMG_TRIPLE_$*)" || \
		missing="$$missing (rustup target add $(IMG_TRIPLE_$*))"; \
	if [ -n "$$missing" ]; then \
		echo "cross-$*: missing tools for the $* build:$$missing (as root: make image-deps)" >&2; exit 1; fi
	cd $(IMG_TOP) && $(IMG_CARGO_ENV_$*) CARGO_TARGET_DIR='$(abspath $(IMG_CARGO_TARGET_DIR))' \
		$(IMG_NICE) $(IMG_CARGO) build --release --locked \
		--target $(IMG_TRIPLE_$*) $(addprefix --bin ,$(IMG_BINS))
	@for b in $(IMG_BINS); do \
		f=$(call img_bin,$*,$$b); \
		file -b "$$f" | grep -q 'static-pie linked' || \
			{ echo "cross: $$f is not a static-pie: $$(file -b "$$f")" >&2; exit 1; }; \
	done
	@$(if $(filter yes,$(IMG_CROSS_SIZE_CHECK)),$(call img_size_check,$*,$(IMG_SIZE_CEILING_$*)))

image: image-$(IMG_ARCH)
image-all: $(addprefix image-,$(IMG_ARCHES))

image-x86_64 image-aarch64: image-%: $(if $(IMG_KPBXD_BIN),,cross-%)
	$(IMG_BOARD_DIR)/scripts/fetch-debs.sh $* $(IMG_DL)
	$(IMG_BOARD_DIR)/scripts/mkinitramfs.sh $* $(IMG_DL) $(IMG_OUT)/$* \
		$(or $(IMG_KPBXD_BIN),$(call img_bin,$*,kpbxd)) \
		$(IMG_KPBX_BIN)

qemu-test: qemu-test-$(IMG_ARCH)
qemu-test-all: $(addprefix qemu-test-,$(IMG_ARCHES))

qemu-test-x86_64 qemu-test-aarch64: qemu-test-%: image-%
	$(IMG_PYTHON) $(IMG_BOARD_DIR)/scripts/qemu-test.py --arch $* --image-dir $(IMG_OUT)/$*

qemu-run: image-$(IMG_ARCH)
	$(IMG_BOARD_DIR)/scripts/qemu-run.sh $(IMG_ARCH) $(IMG_OUT)/$(IMG_ARCH)

# Stripped size (bytes and MB = 10^6), gzip -9 / xz -9 sizes, and `file`, per arch and binary;
# then the budget check of each arch (the table is printed even when one is over).
sizes: IMG_CROSS_SIZE_CHECK = no
sizes: cross
	@printf '%-34s %10s %8s %8s %8s %10s\n' "binary (stripped)" bytes MB gzip-MB xz-MB budget-MB
	@for a in $(IMG_ARCHES); do for b in $(IMG_BINS); do \
		f=$(abspath $(IMG_CARGO_TARGET_DIR))/$$(case $$a in x86_64) echo $(IMG_TRIPLE_x86_64);; \
			aarch64) echo $(IMG_TRIPLE_aarch64);; esac)/release/$$b; \
		s=$$(mktemp); cp "$$f" "$$s"; \
		case $$a in x86_64) $(IMG_STRIP_x86_64) "$$s";; aarch64) $(IMG_STRIP_aarch64) "$$s";; esac; \
		n=$$(wc -c <"$$s"); gz=$$(gzip -9c "$$s" | wc -c); xz=$$(xz -9c "$$s" | wc -c); \
		budget=$$(case $$a in x86_64) echo '$(IMG_SIZE_BUDGET_x86_64)';; \
			aarch64) echo '$(IMG_SIZE_BUDGET_aarch64)';; esac); \
		printf '%-34s %10d %8.2f %8.2f %8.2f %10s\n' "$$a/$$b" $$n \
			$$(echo "$$n $$gz $$xz" | awk '{ printf "%f %f %f", $$1/1e6, $$2/1e6, $$3/1e6 }') \
			$$(if [ -n "$$budget" ]; then echo "$$budget" | awk '{ printf "%.2f", $$1/1e6 }'; else echo none; fi); \
		printf '    %s\n' "$$(file -b "$$f")"; \
		rm -f "$$s"; \
	done; done
	@rc=0; $(foreach a,$(IMG_ARCHES),( $(call img_size_check,$(a)) ) || rc=1;) exit $$rc

# Buildroot image from a Buildroot tree: `make -C $(BUILDROOT) O=$(BR_OUT) BR2_EXTERNAL=buildroot
# pbx_$(BOARD)_defconfig`, then `make`. MAKEFLAGS and our command-line variables (BUILDROOT,
# BOARD, which make also exports) are cleared so they do not leak into Buildroot.
#  - BOARD qemu_x86_64, qemu_aarch64_virt, x86_64_appliance: the release path (Buildroot's
#    toolchain and kernel), needs Buildroot's download sites;
#  - BOARD qemu_x86_64_debian: the offline build from the Debian archive; its
#    board/qemu-x86_64-debian/prepare.sh runs first (toolchain, source trees, kernel).
# BUILDROOT unset: the Buildroot snapshot tarball in ../shared/buildroot (BR_TARBALL) is unpacked
# in target/br/buildroot. Downloads go to BR_DL (kept across builds); Buildroot runs BR_JOBS jobs
# per package under BR_NICE (2 shared cores here). FORCE_UNSAFE_CONFIGURE=1: GNU tar's configure
# (host-tar) refuses to run as root without it, and builds here and in CI run as root.
BOARD ?= qemu_x86_64
BR_OUT ?= $(IMG_TOP)/target/br/$(BOARD)
BR_TARBALL ?= $(lastword $(sort $(wildcard $(IMG_TOP)/../shared/buildroot/buildroot-*.tar.xz)))
BR_UNPACKED := $(IMG_TOP)/target/br/buildroot
BR_TREE = $(or $(BUILDROOT),$(BR_UNPACKED))
BR_DL ?= $(IMG_TOP)/target/br/dl
BR_JOBS ?= 2
BR_NICE ?= nice -n 19
BR_PREPARE_qemu_x86_64_debian := $(IMG_BOARD_DIR)/qemu-x86_64-debian/prepare.sh
# br-test boots the image of this board (an initramfs and Debian's kernel) with qemu-test.py
BR_TEST_BOARD ?= qemu_x86_64_debian

br-image:
	@if [ -z "$(BUILDROOT)" ]; then \
		test -f "$(BR_UNPACKED)/package/pkg-cargo.mk" || { \
			test -n "$(BR_TARBALL)" || { echo "br-image: set BUILDROOT=/path/to/buildroot (no snapshot in ../shared/buildroot)" >&2; exit 1; }; \
			echo "br-image: unpacking $(BR_TARBALL) in $(BR_UNPACKED)"; \
			rm -rf "$(BR_UNPACKED)" "$(BR_UNPACKED).tmp" && mkdir -p "$(BR_UNPACKED).tmp" && \
			tar -xf "$(BR_TARBALL)" -C "$(BR_UNPACKED).tmp" && \
			mv "$(BR_UNPACKED).tmp/buildroot" "$(BR_UNPACKED)" && rmdir "$(BR_UNPACKED).tmp"; }; \
	fi
	@test -f "$(BR_TREE)/package/pkg-cargo.mk" || { echo "br-image: $(BR_TREE) is not a Buildroot tree" >&2; exit 1; }
	@test -f "$(IMG_TOP)/buildroot/configs/pbx_$(BOARD)_defconfig" || { echo "br-image: no buildroot/configs/pbx_$(BOARD)_defconfig; BOARD is one of:" \
		$$(ls $(IMG_TOP)/buildroot/configs | sed 's/^pbx_//; s/_defconfig$$//') >&2; exit 1; }
	$(if $(BR_PREPARE_$(BOARD)),$(BR_NICE) $(BR_PREPARE_$(BOARD)) $(BR_OUT) $(BR_DL))
	unset MAKEFLAGS MFLAGS MAKEOVERRIDES BOARD BUILDROOT; \
	$(MAKE) -C "$(BR_TREE)" O=$(BR_OUT) BR2_EXTERNAL=$(IMG_TOP)/buildroot BR2_DL_DIR=$(BR_DL) pbx_$(BOARD)_defconfig && \
	t0=$$(date +%s) && \
	FORCE_UNSAFE_CONFIGURE=1 $(BR_NICE) $(MAKE) -C "$(BR_TREE)" O=$(BR_OUT) BR2_DL_DIR=$(BR_DL) BR2_JLEVEL=$(BR_JOBS) && \
	echo "br-image: $(BOARD) built in $$(( $$(date +%s) - t0 )) s; images in $(BR_OUT)/images:" && \
	ls -l $(BR_OUT)/images

# Build the offline Buildroot image and run the qemu acceptance scenario on it.
br-test: BOARD = $(BR_TEST_BOARD)
br-test:
	$(MAKE) --no-print-directory br-image BOARD=$(BOARD) BR_OUT=$(BR_OUT)
	$(IMG_PYTHON) $(IMG_BOARD_DIR)/scripts/qemu-test.py --arch x86_64 --image-dir $(BR_OUT)/images

image-deps:
	@test "$$(id -u)" = 0 || { echo "image-deps: run as root (apt-get install)" >&2; exit 1; }
	dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(IMG_DEBS)
	rustup target add $(IMG_TRIPLE_x86_64) $(IMG_TRIPLE_aarch64)

image-clean:
	rm -rf $(filter-out $(IMG_DL),$(wildcard $(IMG_OUT)/*))

.DEFAULT_GOAL := $(IMG_SAVED_DEFAULT_GOAL)
