<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Grandstream GXP21xx/GRP26xx (firmware 1.0.x P-value format) -->
<gs_provision version="1">
 <mac>%%MACLOWER%%</mac>
 <config version="1">
  <P271>1</P271>
  <P270>%%EXTENSION%%</P270>
  <P47>%%PBXADDRESS%%:%%SIPPORT%%</P47>
  <P35>%%SIPUSER%%</P35>
  <P36>%%SIPUSER%%</P36>
  <P34>%%SIPPASSWORD%%</P34>
  <P3>%%DISPLAYNAME%%</P3>
  <P30>%%NTPSERVER%%</P30>
  <P64>%%TZPOSIX%%</P64>
  <P237>%%PROVURL%%</P237>
  <P212>1</P212>
{% if IPADDRMODE == "on" %}  <P8>0</P8>
{% else %}  <P8>1</P8>
  <P9>%%IPADDR%%</P9>
  <P10>%%IPNETMASK%%</P10>
  <P11>%%IPGATEWAY%%</P11>
  <P13>%%IPDNS1%%</P13>
  <P14>%%IPDNS2%%</P14>
{% endif %}{% if PHONEPASSWORD %}  <P2>%%PHONEPASSWORD%%</P2>
{% endif %} </config>
</gs_provision>
