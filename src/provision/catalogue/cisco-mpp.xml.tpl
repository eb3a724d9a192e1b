<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Cisco IP Phone 6800/7800/8800 multiplatform (firmware 11.x/12.x), device %%MACLOWER%%. Reference: Cisco IP Phone Multiplatform Phones Provisioning and Administration Guides; wazo-provd-plugins wazo_cisco_sip/v11_3_1/templates/base.tpl -->
<flat-profile>
 <Line_Enable_1_ ua="na">Yes</Line_Enable_1_>
 <Proxy_1_ ua="na">%%PBXADDRESS%%:%%SIPPORT%%</Proxy_1_>
 <SIP_Transport_1_ ua="na">UDP</SIP_Transport_1_>
 <Register_1_ ua="na">Yes</Register_1_>
 <Display_Name_1_ ua="na">%%DISPLAYNAME%%</Display_Name_1_>
 <User_ID_1_ ua="na">%%SIPUSER%%</User_ID_1_>
 <Auth_ID_1_ ua="na">%%SIPUSER%%</Auth_ID_1_>
 <Password_1_ ua="na">%%SIPPASSWORD%%</Password_1_>
 <Station_Name ua="na">%%EXTENSION%%</Station_Name>
 <Primary_NTP_Server ua="na">%%NTPSERVER%%</Primary_NTP_Server>
{% if CISCO_TZ %} <Time_Zone ua="na">%%CISCO_TZ%%</Time_Zone>
{% if TZDST == "1" %} <Daylight_Saving_Time_Enable ua="na">Yes</Daylight_Saving_Time_Enable>
 <Daylight_Saving_Time_Rule ua="na">%%CISCO_DST_RULE%%</Daylight_Saving_Time_Rule>
{% else %} <Daylight_Saving_Time_Enable ua="na">No</Daylight_Saving_Time_Enable>
{% endif %}{% endif %}{% if IPADDRMODE == "on" %} <Connection_Type ua="na">DHCP</Connection_Type>
{% else %} <Connection_Type ua="na">Static IP</Connection_Type>
 <Static_IP ua="na">%%IPADDR%%</Static_IP>
 <NetMask ua="na">%%IPNETMASK%%</NetMask>
{% if IPGATEWAY %} <Gateway ua="na">%%IPGATEWAY%%</Gateway>
{% endif %}{% if IPDNS1 %} <Primary_DNS ua="na">%%IPDNS1%%</Primary_DNS>
{% endif %}{% if IPDNS2 %} <Secondary_DNS ua="na">%%IPDNS2%%</Secondary_DNS>
{% endif %}{% endif %}{% if PHONEPASSWORD %} <Admin_Password ua="na">%%PHONEPASSWORD%%</Admin_Password>
{% endif %} <Profile_Rule_B ua="na">%%PROVURL%%$MA.xml</Profile_Rule_B>
</flat-profile>
