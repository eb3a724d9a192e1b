#!version:1.0.0.1
## kpbxd: Yealink common file %%FILENAME%% (every device of the model)
## Reference: Yealink Auto Provisioning Guide, "Common CFG File"; wazo-provd-plugins wazo_yealink/v86/templates/base.tpl
static.auto_provision.server.url = %%PROVURL%%
