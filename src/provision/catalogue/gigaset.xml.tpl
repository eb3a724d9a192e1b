<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Gigaset N670/N870/N870E IP PRO (firmware 2.x), device %%MACLOWER%%, account on handset 1. Reference: wazo-provd-plugins wazo_gigaset/Nx70_83_v2_65_0/templates/base.tpl -->
<provisioning version="1.1" productID="e2">
 <nvm>
  <param name="Provisioning.global.ProvisioningServer" value="%%PROVURL%%"/>
  <param name="DmGlobal.0.NtpServer" value="%%NTPSERVER%%"/>
{% if GIGASET_TZ %}  <param name="DmGlobal.0.TimeZone" value="%%GIGASET_TZ%%"/>
{% endif %}{% if PHONEPASSWORD %}  <param name="WebUIAccounts.1.Password" value="%%PHONEPASSWORD%%"/>
{% endif %}  <param name="SipProvider.0.Name" value="kpbxd"/>
  <param name="SipProvider.0.Domain" value="%%PBXADDRESS%%"/>
  <param name="SipProvider.0.ProxyServerAddress" value="%%PBXADDRESS%%"/>
  <param name="SipProvider.0.ProxyServerPort" value="%%SIPPORT%%"/>
  <param name="SipProvider.0.RegServerAddress" value="%%PBXADDRESS%%"/>
  <param name="SipProvider.0.RegServerPort" value="%%SIPPORT%%"/>
  <param name="SipProvider.0.TransportProtocol" value="1"/>
  <oper name="add_hs" value="00001">
   <param name="hs.RegStatus" value="ToReg"/>
  </oper>
  <param name="hs.00001.DECT_AC" value="{{ ("0000" ~ EXTENSION)[-4:] }}"/>
  <param name="SipAccount.00001.ProviderId" value="0"/>
  <param name="SipAccount.00001.AuthName" value="%%SIPUSER%%"/>
  <param name="SipAccount.00001.AuthPassword" value="%%SIPPASSWORD%%"/>
  <param name="SipAccount.00001.UserName" value="%%SIPUSER%%"/>
  <param name="SipAccount.00001.DisplayName" value="%%DISPLAYNAME%%"/>
 </nvm>
</provisioning>
