<<VOIP CONFIG FILE>>Version:2.0000000000

<NET CONFIG MODULE>
{% if IPADDRMODE == "on" %}WAN TYPE           :0
Enable DHCP        :1
{% else %}WAN TYPE           :1
Enable DHCP        :0
WAN IP             :%%IPADDR%%
WAN Subnet Mask    :%%IPNETMASK%%
{% if IPGATEWAY %}WAN Gateway        :%%IPGATEWAY%%
{% endif %}{% if IPDNS1 %}Primary DNS        :%%IPDNS1%%
{% endif %}{% if IPDNS2 %}Secondary DNS      :%%IPDNS2%%
{% endif %}{% endif %}
<SIP CONFIG MODULE>
--SIP Line List--  :
SIP1 Phone Number       :%%SIPUSER%%
SIP1 Display Name       :%%DISPLAYNAME%%
SIP1 Sip Name           :%%SIPUSER%%
SIP1 Register Addr      :%%PBXADDRESS%%
SIP1 Register Port      :%%SIPPORT%%
SIP1 Register User      :%%SIPUSER%%
SIP1 Register Pswd      :%%SIPPASSWORD%%
SIP1 Enable Reg         :1
SIP1 Transport          :0

<PHONE FEATURE MODULE>
--DateTime Config--:
Enable SNTP        :1
SNTP Server        :%%NTPSERVER%%
{% if FANVIL_TZ %}Time Zone          :%%FANVIL_TZ%%
Time Zone Name     :%%FANVIL_TZ_NAME%%
{% if TZDST == "1" %}DST Type           :2
DST Rule Mode      :2
DST Min Offset     :%%FANVIL_DST_OFFSET%%
DST Start Mon      :%%FANVIL_DST_START_MONTH%%
DST Start Week     :%%FANVIL_DST_START_WEEK%%
DST Start Wday     :%%FANVIL_DST_START_WDAY%%
DST Start Hour     :%%FANVIL_DST_START_HOUR%%
DST End Mon        :%%FANVIL_DST_END_MONTH%%
DST End Week       :%%FANVIL_DST_END_WEEK%%
DST End Wday       :%%FANVIL_DST_END_WDAY%%
DST End Hour       :%%FANVIL_DST_END_HOUR%%
{% else %}DST Type           :0
{% endif %}{% endif %}{% if PHONEPASSWORD %}
<MMI CONFIG MODULE>
--MMI Account--    :
Account1 Name      :{{ PHONEUSERNAME or "admin" }}
Account1 Password  :%%PHONEPASSWORD%%
Account1 Level     :10
{% endif %}<<END OF FILE>>
