<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Grandstream GXP16xx/GXP21xx/GRP26xx (firmware 1.0.x, P-value XML), device %%MACLOWER%%. Reference: Grandstream configuration templates (P-values); FusionPBX resources/templates/provision/grandstream/gxp21xx -->
<gs_provision version="1">
 <mac>%%MACLOWER%%</mac>
 <config version="1">
  <P271>1</P271>
  <P270>%%EXTENSION%%</P270>
  <P47>%%PBXADDRESS%%:%%SIPPORT%%</P47>
  <P130>0</P130>
  <P35>%%SIPUSER%%</P35>
  <P36>%%SIPUSER%%</P36>
  <P34>%%SIPPASSWORD%%</P34>
  <P3>%%DISPLAYNAME%%</P3>
  <P30>%%NTPSERVER%%</P30>
{% if TZPOSIX %}  <P64>customize</P64>
  <P246>%%TZPOSIX%%</P246>
{% endif %}  <P237>{{ PROVURL|replace("https://", "")|replace("http://", "")|trim("/") }}</P237>
  <P212>{% if PROVURL is startingwith("https://") %}2{% else %}1{% endif %}</P212>
{% if IPADDRMODE == "on" %}  <P8>0</P8>
{% else %}  <P8>1</P8>
{% for first, address in [(9, IPADDR), (13, IPNETMASK), (17, IPGATEWAY), (21, IPDNS1), (25, IPDNS2)] if address %}{% for octet in address|split(".") %}  <P{{ first + loop.index0 }}>{{ octet }}</P{{ first + loop.index0 }}>
{% endfor %}{% endfor %}{% endif %}{% if PHONEPASSWORD %}  <P2>%%PHONEPASSWORD%%</P2>
{% endif %} </config>
</gs_provision>
