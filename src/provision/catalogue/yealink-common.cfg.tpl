#!version:1.0.0.1
## kpbxd: Yealink common file (all devices of the model)
static.auto_provision.server.url = %%PROVURL%%
static.auto_provision.power_on = 1
local_time.ntp_server1 = %%NTPSERVER%%
local_time.time_zone = %%TZHOURS%%
