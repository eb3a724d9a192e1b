################################################################################
#
# local: package override file of pbx_qemu_x86_64_debian_defconfig
#
################################################################################

# BR2_PACKAGE_OVERRIDE_FILE of the offline build. The source trees are Debian source packages
# unpacked by board/qemu-x86_64-debian/prepare.sh in $(BASE_DIR)/debian/src: these machines
# reach the Debian archive, not the upstream sites. Buildroot applies no patches of its own to
# an override tree (prepare.sh applies patches/, see there).
# This file sets other packages' variables by design: each such line carries the marker that
# tells utils/check-package so.

# check-package TypoInPackageVariable
BUSYBOX_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/busybox
# check-package TypoInPackageVariable
HOST_TAR_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/tar
# check-package TypoInPackageVariable
HOST_ACL_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/acl
# check-package TypoInPackageVariable
HOST_ATTR_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/attr
# check-package TypoInPackageVariable
HOST_PATCHELF_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/src/patchelf

# host-patchelf: Debian's orig tarball of patchelf is the git tree, without the generated
# configure (Debian runs autoreconf). Rather than building host-autoconf, -automake, -libtool and
# -m4 for it, compile its one source file the way its src/Makefile.am does.
# check-package TypoInPackageVariable
define HOST_PATCHELF_CONFIGURE_CMDS
	test -f $(@D)/src/patchelf.cc
endef
# check-package TypoInPackageVariable
define HOST_PATCHELF_BUILD_CMDS
	$(HOST_MAKE_ENV) $(HOSTCXX) $(HOST_CXXFLAGS) -Wall -std=c++17 -D_FILE_OFFSET_BITS=64 \
		-DPACKAGE_STRING='"patchelf $(shell cat $(@D)/version)"' \
		$(HOST_LDFLAGS) -o $(@D)/src/patchelf $(@D)/src/patchelf.cc
endef
# check-package TypoInPackageVariable
define HOST_PATCHELF_INSTALL_CMDS
	$(INSTALL) -D -m 0755 $(@D)/src/patchelf $(HOST_DIR)/bin/patchelf
endef

# host-fakeroot: Debian's binary package (the archive serves no fakeroot source here), unpacked
# by prepare.sh. Set before package/fakeroot/fakeroot.mk is read, these win over the autotools
# defaults: no autoreconf (so no host-autoconf/automake/libtool/m4), no configure or build,
# and an install that points the fakeroot script at the copies in $(HOST_DIR).
# check-package TypoInPackageVariable
HOST_FAKEROOT_OVERRIDE_SRCDIR = $(BASE_DIR)/debian/fakeroot-bin
# check-package TypoInPackageVariable, UselessFlag
HOST_FAKEROOT_AUTORECONF = NO
# check-package TypoInPackageVariable
define HOST_FAKEROOT_CONFIGURE_CMDS
	test -x $(@D)/usr/bin/faked-sysv
endef
# check-package TypoInPackageVariable
define HOST_FAKEROOT_BUILD_CMDS
	test -r $(@D)/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-sysv.so
endef
# check-package TypoInPackageVariable
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
