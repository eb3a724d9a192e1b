<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Cisco multiplatform model file %%FILENAME%%, what a factory phone asks for (default Profile_Rule /$PSN.xml); it adds this server's per-phone file ($MA = the MAC in lower case) to the phone's resync. Reference: Cisco IP Phone Multiplatform Phones Provisioning Guide, "Profile Rules"; wazo-provd-plugins wazo_cisco_sip/v11_3_1/templates/common/model.cfg.tpl -->
<flat-profile>
 <Resync_On_Reset ua="na">Yes</Resync_On_Reset>
 <Profile_Rule_B ua="na">%%PROVURL%%$MA.xml</Profile_Rule_B>
</flat-profile>
