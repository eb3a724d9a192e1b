################################################################################
#
# kpbxd
#
################################################################################

# Built from this repository, the parent of the external tree. A release image should use a tag
# of the published repository instead (SITE_METHOD = git): Buildroot then vendors the crates at
# download time, and kpbxd.hash ("Locally calculated", over the vendored tarball, as in
# package/ripgrep/ripgrep.hash) pins sources and crates. A local site has no download step,
# hence no .hash file here.
KPBXD_VERSION = $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' $(BR2_EXTERNAL_PBX_PATH)/../Cargo.toml | head -n 1)
KPBXD_SITE = $(BR2_EXTERNAL_PBX_PATH)/..
KPBXD_SITE_METHOD = local
KPBXD_LICENSE = MIT or Apache-2.0
KPBXD_LICENSE_FILES = $(notdir $(wildcard $(KPBXD_SITE)/LICENSE*))

# Only the crate: not the cargo target dir (GBs, host-built), nor the image/board trees, nor
# Buildroot output placed under target/.
KPBXD_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /buildroot --exclude /board --exclude /rootfs-overlay \
	--exclude /var --exclude /fuzz

# pkg-cargo builds --offline --locked, but a local site skips the download post-process that
# vendors the crates. Vendor them before the build (needs crates.io the first time; the crates
# are then cached in $(BR_CARGO_HOME)). Cargo.lock must be committed.
define KPBXD_CARGO_VENDOR
	cd $(@D) && mkdir -p .cargo && \
		$(TARGET_MAKE_ENV) $(PKG_CARGO_ENV) cargo vendor --locked VENDOR >.cargo/config.toml
endef
KPBXD_PRE_BUILD_HOOKS += KPBXD_CARGO_VENDOR

# Keep our size profile: pkg-cargo exports CARGO_PROFILE_RELEASE_* (opt-level from
# BR2_OPTIMIZE_*, LTO only with BR2_ENABLE_LTO, 16 codegen units), which beat Cargo.toml.
# KPBXD_CARGO_ENV comes after those, so these win. panic and strip are not touched by Buildroot.
KPBXD_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# `kpbx` is the operator's command on the serial console. kpbxd is multi-call (called as
# kpbx it is the CLI), so the separate development binary cargo install puts in /usr/bin is
# replaced by a link: one copy of the code on the target. cargo's install-tracking files
# have no business on the target.
define KPBXD_INSTALL_KPBX_COMMAND
	ln -sf kpbxd $(TARGET_DIR)/usr/bin/kpbx
	rm -f $(TARGET_DIR)/usr/.crates.toml $(TARGET_DIR)/usr/.crates2.json
endef
KPBXD_POST_INSTALL_TARGET_HOOKS += KPBXD_INSTALL_KPBX_COMMAND

# What the daemon cannot work without, whatever the board's kernel config says:
#  PACKET: AF_PACKET for gratuitous ARP after a VIP takeover;
#  NET/INET/UNIX: rtnetlink (VIP add/remove; NETLINK_ROUTE has no option of its own beyond
#  CONFIG_NET) and the control socket;  IP_MULTICAST: HA heartbeats.
define KPBXD_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_NET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_INET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_UNIX)
	$(call KCONFIG_ENABLE_OPT,CONFIG_PACKET)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IP_MULTICAST)
endef

$(eval $(cargo-package))
