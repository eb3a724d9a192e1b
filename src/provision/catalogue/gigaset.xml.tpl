<?xml version="1.0" encoding="UTF-8"?>
<!-- kpbxd: Gigaset N670/N870 IP PRO (firmware 2.x), device %%MAC%% -->
<ProviderFrame xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="profile.xsd">
 <Provider>
  <MAC_ADDRESS value="%%MAC%%"/>
  <PROFILE_NAME class="string" value="kpbxd"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_DISPLAYNAME_1" class="symb_item" value='"%%DISPLAYNAME%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_ACCOUNT_NAME_1" class="symb_item" value='"%%EXTENSION%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_LOGIN_ID_1" class="symb_item" value='"%%SIPUSER%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_PASSWORD_1" class="symb_item" value='"%%SIPPASSWORD%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_USER_ID_1" class="symb_item" value='"%%SIPUSER%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_DOMAIN_1" class="symb_item" value='"%%PBXADDRESS%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SIP_SERVER_1" class="symb_item" value='"%%PBXADDRESS%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.uiI_SIP_SERVER_PORT_1" class="symb_item" value="%%SIPPORT%%"/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_TIME_SERVER" class="symb_item" value='"%%NTPSERVER%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.ucB_USE_DHCP" class="symb_item" value="{% if IPADDRMODE == "on" %}1{% else %}0{% endif %}"/>
{% if IPADDRMODE == "off" %}  <SYMB_ITEM ID="BS_IP_Data1.aucS_IP_ADDRESS" class="symb_item" value='"%%IPADDR%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_SUBNET_MASK" class="symb_item" value='"%%IPNETMASK%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_DEFAULT_GATEWAY" class="symb_item" value='"%%IPGATEWAY%%"'/>
  <SYMB_ITEM ID="BS_IP_Data1.aucS_DNS_SERVER_1" class="symb_item" value='"%%IPDNS1%%"'/>
{% endif %}{% if PHONEPASSWORD %}  <SYMB_ITEM ID="BS_AE_SwConfig.aucS_WEB_PASSWORD" class="symb_item" value='"%%PHONEPASSWORD%%"'/>
{% endif %} </Provider>
</ProviderFrame>
