#!version:1.0.0.1
## kpbxd: Yealink T4x/T5x (firmware V84 and later), device %%MACLOWER%%
account.1.enable = 1
account.1.label = %%EXTENSION%%
account.1.display_name = %%DISPLAYNAME%%
account.1.auth_name = %%SIPUSER%%
account.1.user_name = %%SIPUSER%%
account.1.password = %%SIPPASSWORD%%
account.1.sip_server.1.address = %%PBXADDRESS%%
account.1.sip_server.1.port = %%SIPPORT%%
local_time.ntp_server1 = %%NTPSERVER%%
local_time.time_zone = %%TZHOURS%%
{% if IPADDRMODE == "on" %}static.network.internet_port.type = 0
{% else %}static.network.internet_port.type = 2
static.network.internet_port.ip = %%IPADDR%%
static.network.internet_port.mask = %%IPNETMASK%%
static.network.internet_port.gateway = %%IPGATEWAY%%
static.network.primary_dns = %%IPDNS1%%
static.network.secondary_dns = %%IPDNS2%%
{% endif %}{% if PHONEPASSWORD %}static.security.user_name.admin = %%PHONEUSERNAME%%
static.security.user_password = admin:%%PHONEPASSWORD%%
{% endif %}
