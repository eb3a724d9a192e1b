<?xml version="1.0" encoding="utf-8"?>
<!-- kpbxd: Snom D7xx/D8xx (firmware 10.1 and later), device %%MAC%%. Reference: Snom settings reference (service.snom.com, Configuration Settings); wazo-provd-plugins wazo_snom/common/templates/base.tpl -->
<settings>
 <phone-settings e="2">
  <user_active idx="1" perm="R">on</user_active>
  <user_realname idx="1" perm="R">%%DISPLAYNAME%%</user_realname>
  <user_name idx="1" perm="R">%%SIPUSER%%</user_name>
  <user_pname idx="1" perm="R">%%SIPUSER%%</user_pname>
  <user_pass idx="1" perm="R">%%SIPPASSWORD%%</user_pass>
  <user_host idx="1" perm="R">%%PBXADDRESS%%:%%SIPPORT%%</user_host>
  <user_outbound idx="1" perm="R">%%PBXADDRESS%%:%%SIPPORT%%;transport=udp</user_outbound>
  <ntp_server perm="R">%%NTPSERVER%%</ntp_server>
{% if SNOM_TZ %}  <timezone perm="R">%%SNOM_TZ%%</timezone>
{% endif %}  <dhcp perm="R">%%IPADDRMODE%%</dhcp>
{% if IPADDRMODE == "off" %}  <ip_adr perm="R">%%IPADDR%%</ip_adr>
  <netmask perm="R">%%IPNETMASK%%</netmask>
  <gateway perm="R">%%IPGATEWAY%%</gateway>
  <dns_server1 perm="R">%%IPDNS1%%</dns_server1>
{% if IPDNS2 %}  <dns_server2 perm="R">%%IPDNS2%%</dns_server2>
{% endif %}{% endif %}{% if PHONEPASSWORD %}  <admin_mode_password perm="R">%%PHONEPASSWORD%%</admin_mode_password>
  <http_user perm="R">{{ PHONEUSERNAME or "admin" }}</http_user>
  <http_pass perm="R">%%PHONEPASSWORD%%</http_pass>
{% endif %}  <setting_server perm="R">%%PROVURL%%{mac}.xml</setting_server>
 </phone-settings>
</settings>
