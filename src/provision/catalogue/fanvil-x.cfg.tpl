<<VOIP CONFIG FILE>>Version:2.0000000000
# kpbxd: Fanvil X series (firmware 2.x), device %%MACLOWER%%

<GLOBAL CONFIG MODULE>
{% if IPADDRMODE == "on" %}WAN Mode           :DHCP
{% else %}WAN Mode           :STATIC
WAN IP             :%%IPADDR%%
WAN Subnet Mask    :%%IPNETMASK%%
WAN Gateway        :%%IPGATEWAY%%
Primary DNS        :%%IPDNS1%%
Secondary DNS      :%%IPDNS2%%
{% endif %}SNTP Server        :%%NTPSERVER%%
Enable SNTP        :1
Time Zone          :%%TZHOURS%%
Time Zone Name     :%%TZPOSIX%%

<SIP CONFIG MODULE>
--SIP Line List--  :
SIP1 Phone Number       :%%EXTENSION%%
SIP1 Display Name       :%%DISPLAYNAME%%
SIP1 Register Addr      :%%PBXADDRESS%%
SIP1 Register Port      :%%SIPPORT%%
SIP1 Register User      :%%SIPUSER%%
SIP1 Register Pswd      :%%SIPPASSWORD%%
SIP1 Enable Reg         :1

<AUTOUPDATE CONFIG MODULE>
Download Server IP      :%%PROVURL%%
{% if PHONEPASSWORD %}
<WEB CONFIG MODULE>
Web Server Type    :0
--Web Account List--   :
Web1 User Name     :%%PHONEUSERNAME%%
Web1 Password      :%%PHONEPASSWORD%%
Web1 User Level    :10
{% endif %}<<END OF FILE>>
