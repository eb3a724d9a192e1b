# Package override file of pbx_qemu_x86_64_debian_defconfig (BR2_PACKAGE_OVERRIDE_FILE).
# The source trees are Debian source packages unpacked by board/qemu-x86_64-debian/prepare.sh in
# $(BASE_DIR)/debian/src: these machines reach the Debian archive, not the upstream sites.
# Buildroot applies no patches of its own to an override tree (the prepare script applies
# patchelf's, which adds an option Buildroot's RPATH fixing needs).

BUSYBOX_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/busybox
HOST_TAR_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/tar
HOST_ACL_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/acl
HOST_ATTR_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/attr
HOST_PATCHELF_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/patchelf

# host-fakeroot: Debian's binary package (the archive serves no fakeroot source here), unpacked
# by the prepare script. Set before package/fakeroot/fakeroot.mk is read, these win over the
# autotools defaults: no autoreconf (so no host-autoconf/automake/libtool/m4), no configure or
# build, and an install that points the fakeroot script at the copies in $(HOST_DIR).
HOST_FAKEROOT_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/fakeroot-bin
HOST_FAKEROOT_AUTORECONF = NO
define HOST_FAKEROOT_CONFIGURE_CMDS
	test -x $(@D)/usr/bin/faked-sysv
endef
define HOST_FAKEROOT_BUILD_CMDS
	test -r $(@D)/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so
endef
define HOST_FAKEROOT_INSTALL_CMDS
	$(INSTALL) -D -m 0755 $(@D)/usr/bin/faked-sysv $(HOST_DIR)/bin/faked
	$(INSTALL) -D -m 0644 $(@D)/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so \
		$(HOST_DIR)/lib/libfakeroot/libfakeroot-sysv.so
	sed -e 's,^FAKEROOT_PREFIX=.*,FAKEROOT_PREFIX=$(HOST_DIR),' \
		-e 's,^FAKEROOT_BINDIR=.*,FAKEROOT_BINDIR=$(HOST_DIR)/bin,' \
		-e 's,^PATHS=.*,PATHS=$(HOST_DIR)/lib/libfakeroot,' \
		-e 's,^FAKED=.*,FAKED=$(HOST_DIR)/bin/faked,' \
		$(@D)/usr/bin/fakeroot-sysv >$(HOST_DIR)/bin/fakeroot
	chmod 0755 $(HOST_DIR)/bin/fakeroot
endef
