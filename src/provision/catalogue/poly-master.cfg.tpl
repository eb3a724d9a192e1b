<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!-- kpbxd: Poly master configuration file %%FILENAME%%: the phone loads its parameters from <MAC>-kpbx.cfg. Reference: Poly/Polycom UC Software administrator guide, "Master Configuration Files"; wazo-provd-plugins wazo_polycom/v6_4_6/var/tftpboot/000000000000.cfg -->
<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-kpbx.cfg" MISC_FILES="" LOG_FILE_DIRECTORY="" OVERRIDES_DIRECTORY="" CONTACTS_DIRECTORY="" LICENSE_DIRECTORY=""/>
