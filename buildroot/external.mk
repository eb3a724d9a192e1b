include $(sort $(wildcard $(BR2_EXTERNAL_PBX_PATH)/package/*/*.mk))
