#!version:1.0.0.1
## kpbxd: Yealink MAC-oriented boot file, device %%MACLOWER%%
## Reference: Yealink Auto Provisioning Guide (V81 and later), "Boot Files"
include:config "y000000000000.cfg"
include:config "%%MACLOWER%%.cfg"
