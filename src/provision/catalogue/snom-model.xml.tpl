<?xml version="1.0" encoding="utf-8"?>
<!-- kpbxd: Snom model-wide settings %%FILENAME%%, the first file a phone told of this server by DHCP option 66 asks for; it sends the phone on to its own file ({mac} is expanded by the phone). Reference: Snom settings reference, setting_server; snom "Configuring snom phones for Mass Deployment" -->
<settings>
 <phone-settings>
  <setting_server perm="RW">%%PROVURL%%{mac}.xml</setting_server>
 </phone-settings>
</settings>
