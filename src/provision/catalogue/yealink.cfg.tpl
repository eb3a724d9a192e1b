#!version:1.0.0.1
## kpbxd: Yealink T3x/T4x/T5x/W (firmware V84 and later), device %%MACLOWER%%
## Reference: Yealink Administrator Guide; wazo-provd-plugins wazo_yealink/v86/templates/base.tpl
account.1.enable = 1
account.1.label = %%EXTENSION%%
account.1.display_name = %%DISPLAYNAME%%
account.1.auth_name = %%SIPUSER%%
account.1.user_name = %%SIPUSER%%
account.1.password = %%SIPPASSWORD%%
account.1.sip_server.1.address = %%PBXADDRESS%%
account.1.sip_server.1.port = %%SIPPORT%%
account.1.sip_server.1.transport_type = 0
local_time.ntp_server1 = %%NTPSERVER%%
{% if YEALINK_TZ -%}
local_time.time_zone = %%YEALINK_TZ%%
{% if YEALINK_TZ_NAME %}local_time.time_zone_name = %%YEALINK_TZ_NAME%%
{% endif -%}
{% if TZDST == "1" -%}
local_time.summer_time = 1
local_time.dst_time_type = 1
local_time.start_time = %%YEALINK_DST_START%%
local_time.end_time = %%YEALINK_DST_END%%
local_time.offset_time = %%YEALINK_DST_OFFSET%%
{% else -%}
local_time.summer_time = 0
{% endif -%}
{% endif -%}
{% if IPADDRMODE == "on" -%}
static.network.internet_port.type = 0
{% else -%}
static.network.internet_port.type = 2
static.network.internet_port.ip = %%IPADDR%%
static.network.internet_port.mask = %%IPNETMASK%%
static.network.internet_port.gateway = %%IPGATEWAY%%
static.network.primary_dns = %%IPDNS1%%
{% if IPDNS2 %}static.network.secondary_dns = %%IPDNS2%%
{% endif -%}
{% endif -%}
{% if PHONEPASSWORD -%}
static.security.user_name.admin = {{ PHONEUSERNAME or "admin" }}
static.security.user_password = {{ PHONEUSERNAME or "admin" }}:%%PHONEPASSWORD%%
{% endif -%}
