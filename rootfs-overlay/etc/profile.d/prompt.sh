# Console prompt of the kpbx appliance: user, host and directory ("[root@kpbx ~]# "), on the
# test image and on Buildroot images alike (Buildroot's /etc/profile alone shows "# ").
if [ -n "$PS1" ]; then
	PS1='[\u@\h \W]\$ '
	export PS1
fi
