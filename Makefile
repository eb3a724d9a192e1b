# kpbxd — build, run, test, lint, bench.
#
#   make          release build (target/release/kpbxd and kpbx)
#   make run      the daemon on the embedded dev profile (./var, loopback, no root)
#   make test     the whole test suite: cargo tests, the QEMU boot test, then
#                 the aarch64 build (static, size budget); installs missing
#                 Debian tools and the musl targets when root
#   make lint     rustfmt check + clippy -D warnings
#   make bench    benchmarks, printed side by side with their anchors
#   make fuzz     run each fuzz target for a while (cargo-fuzz)
#
# The appliance image targets (cross, image, qemu-test, br-image, sizes) are
# in board/image.mk.

CARGO ?= cargo
# Debian packages the test suite needs; `make test-deps` installs the
# missing ones when run as root and fails loudly otherwise.
# chromium + chromium-driver, firefox-esr: the web console's browser tests (tests/web_console.rs).
TEST_DEBS ?= procps python3 python3-openpyxl python3-aiosmtpd iproute2 curl atftp tftp-hpa chromium chromium-driver firefox-esr
# geckodriver (Firefox's WebDriver; not in Debian): from crates.io at this
# version, built once into target/tools/ (kept between runs; the tests look
# there, or at $GECKODRIVER). Keep in step with tests/webkit GECKODRIVER_VERSION.
GECKODRIVER_VERSION ?= 0.37.1
GECKODRIVER ?= $(CURDIR)/target/tools/geckodriver-$(GECKODRIVER_VERSION)/bin/geckodriver
# What the x86_64 boot test and the aarch64 build (static, size budget) need
# (board/image.mk has the full list for both architectures and Buildroot:
# make image-deps); musl-dev:arm64 needs the arm64 architecture in dpkg.
IMG_TEST_DEBS ?= qemu-system-x86 busybox-static musl-tools cpio kmod e2fsprogs file xz-utils tzdata \
	gcc-aarch64-linux-gnu musl-dev:arm64
IMG_TEST_TARGETS ?= x86_64-unknown-linux-musl aarch64-unknown-linux-musl
FUZZ_SECONDS ?= 30

.PHONY: all build run test test-deps lint bench fuzz clean screenshots

all: build

build:
	$(CARGO) build --release --locked

run: build
	@echo "kpbxd: dev profile, data dir ./var; in another shell:"
	@echo "  ./target/release/kpbx --socket var/kpbxd.sock status --json"
	./target/release/kpbxd --dev

test-deps:
	@for t in $(IMG_TEST_TARGETS); do rustup target list --installed 2>/dev/null | grep -qx $$t || rustup target add $$t || exit 1; done
	@missing=""; for p in $(TEST_DEBS) $(IMG_TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    case "$$missing" in *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64;; esac; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "make test needs these Debian packages:$$missing (run as root to install them)" >&2; exit 1; \
	  fi; \
	fi
	@$(GECKODRIVER) --version 2>/dev/null | grep -q " $(GECKODRIVER_VERSION)" || \
	  $(CARGO) install geckodriver --locked --version $(GECKODRIVER_VERSION) --root $(dir $(patsubst %/,%,$(dir $(GECKODRIVER))))

test: test-deps
	GECKODRIVER=$(GECKODRIVER) $(CARGO) test --locked --lib --bins --tests
	$(CARGO) test --locked --doc
	$(MAKE) --no-print-directory qemu-test
	$(MAKE) --no-print-directory cross-aarch64

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

bench: build
	bench/run.sh
	bench/ha-failover.sh

fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

# Screenshots of every console panel in English and Italian (headless
# Chromium at 1280x800; the Firefox runs take none) into docs/screenshots/;
# the HA status of a real pair (ha-pair-*.png) needs root for its network
# namespaces.
screenshots: test-deps
	WEB_SCREENSHOTS=$(CURDIR)/docs/screenshots $(CARGO) test --locked --test web_console -- languages::chromium ha_status_of_a_pair

clean:
	$(CARGO) clean
	rm -rf var

-include board/image.mk
