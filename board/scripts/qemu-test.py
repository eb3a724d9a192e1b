#!/usr/bin/env python3
"""Boot the kpbx test image under qemu-system and drive its serial console.

Scenario (every wait is bounded; any mismatch, timeout or unexpected qemu exit fails):
  boot -> log in as root on the serial getty -> kpbx status -> data disk mounted
  -> kpbx system set location=rack-7 -> kpbx audit list shows it -> kill -9 kpbxd, init respawns it
  -> provision a phone, fetch its file from the host over the emulated network (HTTP)
  -> reboot (rcK stops kpbxd, unmounts the disk) -> boot again on the same disk -> log in
  -> kpbx system show has location=rack-7 -> kpbx audit verify -> poweroff, qemu exits 0.

Network: qemu user-mode networking with restrict=on (the guest reaches nothing outside the
emulated LAN); the only forward is host 127.0.0.1:<free port> -> guest :80, for the
provisioning step. Python 3 stdlib only.

usage: qemu-test.py --arch x86_64|aarch64 --image-dir DIR [--accel auto|kvm|tcg]
"""

import argparse
import hashlib
import atexit
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

QEMU_PKG = {"x86_64": "qemu-system-x86", "aarch64": "qemu-system-arm"}
CONSOLE = {"x86_64": "ttyS0", "aarch64": "ttyAMA0"}
DATA_LABEL = "KPBXDATA"


class TestFailure(Exception):
    pass


def log(msg):
    print(f"qemu-test: {msg}", flush=True)


def first_line(text):
    return " ".join((text.strip().splitlines() or [""])[0].split())


def ensure_qemu(arch):
    binary = f"qemu-system-{arch}"
    if shutil.which(binary):
        return binary
    pkg = QEMU_PKG[arch]
    if os.geteuid() != 0:
        raise TestFailure(f"{binary} not found and not root: install it with "
                          f"'apt-get install --no-install-recommends {pkg}'")
    log(f"{binary} missing: apt-get install {pkg}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc = subprocess.call(["apt-get", "install", "-y", "-q", "--no-install-recommends", pkg], env=env)
    if rc != 0 or not shutil.which(binary):
        raise TestFailure(f"apt-get install {pkg} failed (rc {rc}); try 'apt-get update' first")
    return binary


def kvm_usable(arch):
    """/dev/kvm alone is not enough: nested setups expose it without vmx/svm and guests hang."""
    if arch != os.uname().machine or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    if arch == "x86_64":
        with open("/proc/cpuinfo") as f:
            return re.search(r"^flags\s*:.*\b(vmx|svm)\b", f.read(), re.M) is not None
    return True


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_pid(pid, what):
    """Terminate one process by PID: SIGTERM, then SIGKILL after 5 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    log(f"{what} (pid {pid}) ignored SIGTERM: SIGKILL")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_stale(pidfile, image_dir):
    """A previous run killed hard may have left its qemu: end it by its recorded PID, after
    checking that this PID is still a qemu of this image directory."""
    try:
        pid = int(open(pidfile).read().strip())
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except (OSError, ValueError):
        return
    if "qemu-system" in cmdline and image_dir in cmdline:
        log(f"killing stale qemu from a previous run (pid {pid})")
        kill_pid(pid, "stale qemu")


class Vm:
    """One qemu process with its serial console on stdin/stdout."""

    def __init__(self, args, logf, scale):
        self.args = args
        self.logf = logf
        self.scale = scale
        self.proc = None
        self.buf = b""
        self.pos = 0  # expect() consumes buf up to here
        self.lock = threading.Condition()
        self.eof = False
        self.reader = None

    def start(self, pidfile):
        if self.reader:
            self.reader.join(10)  # the previous qemu's output must be drained first
        with self.lock:
            self.buf, self.pos, self.eof = b"", 0, False
            self.logf.write(f"\n===== qemu: {' '.join(self.args)}\n".encode())
            self.logf.flush()
            self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        with open(pidfile, "w") as f:
            f.write(f"{self.proc.pid}\n")
        self.reader = threading.Thread(target=self._reader, args=(self.proc,), daemon=True)
        self.reader.start()

    def _reader(self, proc):
        """Copy one qemu's console output to buf and the log, until that qemu closes it."""
        fd = proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 4096)
            with self.lock:
                if proc is not self.proc:
                    return
                if not chunk:
                    self.eof = True
                    self.lock.notify_all()
                    return
                self.buf += chunk
                self.logf.write(chunk)
                self.logf.flush()
                self.lock.notify_all()

    def tail(self, n=25):
        lines = self.buf.decode(errors="replace").replace("\r", "").splitlines()
        return "\n".join("    | " + line for line in lines[-n:])

    def expect(self, pattern, timeout, what):
        """Wait for regex `pattern` (bytes) in new console output; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * self.scale
        with self.lock:
            while True:
                m = rx.search(self.buf, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                if self.eof:  # never block on the process while holding the lock
                    raise TestFailure(f"qemu exited (rc {self.proc.poll()}) while waiting for "
                                      f"{what}; console tail:\n{self.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure(f"timeout ({timeout * self.scale:.0f} s) waiting for "
                                      f"{what}; console tail:\n{self.tail()}")
                self.lock.wait(min(left, 1.0))

    def send(self, text):
        if self.proc.poll() is not None:
            raise TestFailure(f"qemu is gone (rc {self.proc.returncode}); console tail:\n{self.tail()}")
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, cmd, timeout=30, check=True):
        """Run a shell command on the console; return (rc, output). Markers carry a random
        token; the echoed command line cannot match them ("-B;" and "-E-$?" differ)."""
        tok = secrets.token_hex(4)
        self.send(f"echo {tok}-B; {cmd}; echo {tok}-E-$?\r")
        self.expect(rf"{tok}-B\r?\n".encode(), timeout, f"start of '{cmd}'")
        start = self.pos
        m = self.expect(rf"{tok}-E-(\d+)".encode(), timeout, f"end of '{cmd}'")
        out = self.buf[start:m.start()].decode(errors="replace").replace("\r", "")
        rc = int(m.group(1))
        if check and rc != 0:
            raise TestFailure(f"'{cmd}' exited {rc}:\n{out}")
        return rc, out

    def wait_exit(self, timeout, what):
        try:
            rc = self.proc.wait(timeout * self.scale)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"timeout ({timeout * self.scale:.0f} s) waiting for {what}; "
                              f"console tail:\n{self.tail()}") from None
        self.reader.join(10)
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            kill_pid(self.proc.pid, "qemu")
            self.proc.wait()


class Scenario:
    def __init__(self, vm, pidfile, http_port, boot_timeout):
        self.vm = vm
        self.pidfile = pidfile
        self.http_port = http_port
        self.boot_timeout = boot_timeout
        self.passed = []
        self.pending = []

    def ok(self, what, detail=""):
        self.passed.append(what)
        log(f"PASS {what}{': ' + detail if detail else ''}")

    def must_contain(self, out, needle, what):
        if needle not in out:
            raise TestFailure(f"{what}: expected '{needle}' in:\n{out}")

    # --- steps -----------------------------------------------------------------------------
    def boot_and_login(self, n):
        t0 = time.monotonic()
        self.vm.start(self.pidfile)
        self.vm.expect(rb"login: ", self.boot_timeout, f"login prompt (boot {n})")
        time.sleep(0.5)  # getty flushes input when it starts
        self.vm.send("root\r")
        self.vm.expect(rb"\]# ", 30, "root shell prompt after login")
        self.ok(f"boot {n} + root login on the serial console", f"{time.monotonic() - t0:.1f} s")
        self.vm.run("stty -echo")

    def wait_daemon(self, timeout=30):
        deadline = time.monotonic() + timeout * self.vm.scale
        while True:
            rc, out = self.vm.run("kpbx status", check=False)
            if rc == 0:
                return out
            if time.monotonic() > deadline:
                _, log_out = self.vm.run("tail -n 20 /var/log/kpbxd.out /var/log/kpbxd.log", check=False)
                raise TestFailure(f"kpbx status still failing (rc {rc}) after "
                                  f"{timeout * self.vm.scale} s:\n{out}\n{log_out}")
            time.sleep(1)

    def status(self):
        out = self.wait_daemon()
        self.ok("kpbx status", first_line(out))
        _, js = self.vm.run("kpbx status --json")
        try:
            json.loads(js)
        except ValueError as e:
            raise TestFailure(f"kpbx status --json is not JSON ({e}):\n{js}") from None
        self.ok("kpbx status --json parses")

    def data_disk_mounted(self):
        _, out = self.vm.run("grep ' /var/lib/kpbxd ' /proc/mounts")
        self.must_contain(out, "ext4", "data disk")
        self.ok("persistent data disk mounted on /var/lib/kpbxd", out.strip())

    def set_location(self):
        # A time zone needs the image's tz database (/usr/share/zoneinfo).
        self.vm.run("kpbx system set location=rack-7 timezone=Europe/Rome")
        _, out = self.vm.run("kpbx system show")
        self.must_contain(out, "rack-7", "kpbx system show after set")
        self.must_contain(out, "Europe/Rome", "kpbx system show after set")
        self.ok("kpbx system set location=rack-7 timezone=Europe/Rome")

    def audit_lists_change(self):
        _, out = self.vm.run("kpbx audit list")
        self.must_contain(out, "location", "kpbx audit list")
        self.must_contain(out, "rack-7", "kpbx audit list")
        self.ok("kpbx audit list shows the change")

    def respawn(self):
        _, old = self.vm.run("cat /run/kpbxd.pid")
        self.vm.run("kill -9 $(cat /run/kpbxd.pid)")
        deadline = time.monotonic() + 30 * self.vm.scale
        while True:
            rc, new = self.vm.run("cat /run/kpbxd.pid", check=False)
            if rc == 0 and new.strip() and new.strip() != old.strip():
                break
            if time.monotonic() > deadline:
                raise TestFailure(f"kpbxd was not respawned by init within {30 * self.vm.scale} s")
            time.sleep(1)
        self.wait_daemon()
        self.ok("kpbxd killed with SIGKILL is respawned by init", f"pid {old.strip()} -> {new.strip()}")

    def init_script_stop_start(self):
        """S60kpbxd stop must keep the daemon down despite the inittab respawn; start resumes it."""
        self.vm.run("/etc/init.d/S60kpbxd stop")
        time.sleep(3)
        rc, out = self.vm.run("/etc/init.d/S60kpbxd status", check=False)
        if rc == 0:
            raise TestFailure(f"kpbxd runs again 3 s after 'S60kpbxd stop':\n{out}")
        self.vm.run("/etc/init.d/S60kpbxd start")
        self.wait_daemon()
        self.ok("S60kpbxd stop holds the respawned daemon down, start brings it back")

    def fetch_provisioning(self):
        """Provision a phone in the guest, then fetch its generated file from the host over
        the emulated network (the hostfwd to guest :80) and compare it with the guest's copy."""
        self.vm.run("kpbx prov account add extension=201 sip_password=qemu-pw")
        self.vm.run("kpbx prov device add mac=00:15:65:00:00:01 model=Yealink-T4x "
                    "template=yealink-t4x account=201")
        _, guest = self.vm.run("md5sum /var/lib/kpbxd/provisioning/001565000001.cfg")
        want = guest.split()[0] if guest.split() else ""
        url = f"http://127.0.0.1:{self.http_port}/provisioning/001565000001.cfg"
        deadline = time.monotonic() + 30 * self.vm.scale
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    body = r.read()
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise TestFailure(f"GET {url}: {e}")
                time.sleep(1)
        if b"account.1.password = qemu-pw" not in body:
            raise TestFailure(f"GET {url}: unexpected content:\n{body[:400]!r}")
        got = hashlib.md5(body).hexdigest()
        if got != want:
            raise TestFailure(f"GET {url}: md5 {got}, the guest's file has {want}")
        self.ok("provisioning file fetched over the emulated network", f"{len(body)} bytes, md5 {got}")

    def reboot(self):
        self.vm.send("reboot\r")
        self.vm.expect(rb"Stopping kpbxd: OK", 60, "rcK stopping kpbxd")
        rc = self.vm.wait_exit(60, "qemu to exit on guest reboot (-no-reboot)")
        self.ok("reboot: rcK stopped kpbxd cleanly", f"qemu rc {rc}")

    def persisted(self):
        self.wait_daemon()
        _, out = self.vm.run("kpbx system show")
        self.must_contain(out, "rack-7", "kpbx system show after reboot")
        self.must_contain(out, "Europe/Rome", "kpbx system show after reboot")
        self.ok("location=rack-7 timezone=Europe/Rome persisted across reboot")
        _, out = self.vm.run("kpbx audit list")
        self.must_contain(out, "location", "kpbx audit list after reboot")
        _, out = self.vm.run("kpbx audit verify")
        self.ok("kpbx audit verify", first_line(out))

    def poweroff(self):
        self.vm.send("poweroff\r")
        rc = self.vm.wait_exit(60, "qemu to exit on poweroff")
        if rc != 0:
            raise TestFailure(f"qemu exited {rc} on poweroff")
        self.ok("poweroff, qemu exited 0")

    def run(self):
        self.boot_and_login(1)
        _, ver = self.vm.run("kpbxd --version")
        log(f"guest: {ver.strip()}")
        self.status()
        self.data_disk_mounted()
        self.set_location()
        self.audit_lists_change()
        self.respawn()
        self.init_script_stop_start()
        self.fetch_provisioning()
        self.reboot()
        self.boot_and_login(2)
        self.data_disk_mounted()
        self.persisted()
        self.poweroff()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="x86_64", choices=sorted(QEMU_PKG))
    ap.add_argument("--image-dir", required=True)
    ap.add_argument("--accel", default=os.environ.get("IMG_ACCEL", "auto"), choices=["auto", "kvm", "tcg"])
    ap.add_argument("--memory", default="256")
    a = ap.parse_args()

    image_dir = os.path.abspath(a.image_dir)
    kernel = os.path.join(image_dir, "vmlinuz")
    initrd = os.path.join(image_dir, "initrd.cpio.gz")
    for f in (kernel, initrd):
        if not os.path.exists(f):
            raise TestFailure(f"{f} missing: run 'make image' first")
    pidfile = os.path.join(image_dir, "qemu.pid")
    logpath = os.path.join(image_dir, "qemu-test.log")
    disk = os.path.join(image_dir, "qemu-test-data.img")

    qemu = ensure_qemu(a.arch)
    kill_stale(pidfile, image_dir)

    # A fresh, labelled data disk for each run: the test proves persistence across its own reboot.
    if not shutil.which("mkfs.ext4"):
        raise TestFailure("mkfs.ext4 missing (apt-get install e2fsprogs)")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, disk], check=True)

    accel = a.accel
    if accel == "auto":
        accel = "kvm" if kvm_usable(a.arch) else "tcg"
    scale = 1 if accel == "kvm" else 3
    http_port = free_loopback_port()

    args = [qemu, "-m", a.memory, "-smp", "1", "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", f"console={CONSOLE[a.arch]},115200 panic=-1 quiet",
            "-drive", f"if=none,id=data,format=raw,file={disk}",
            "-device", "virtio-blk-pci,drive=data",
            "-netdev", f"user,id=lan,restrict=on,hostfwd=tcp:127.0.0.1:{http_port}-:80",
            "-device", "virtio-net-pci,netdev=lan"]
    if a.arch == "aarch64":
        args[1:1] = ["-M", "virt", "-cpu", "host" if accel == "kvm" else "cortex-a57"]
    else:
        args[1:1] = ["-cpu", "host"] if accel == "kvm" else []
    args[1:1] = ["-accel", accel]

    log(f"{a.arch}, accel {accel} (timeouts x{scale}), console log {logpath}")
    with open(logpath, "wb") as logf:
        vm = Vm(args, logf, scale)
        atexit.register(vm.kill)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda s, _f: sys.exit(128 + s))
        t0 = time.monotonic()
        sc = Scenario(vm, pidfile, http_port, boot_timeout=60)
        try:
            sc.run()
        finally:
            vm.kill()
            try:
                os.unlink(pidfile)
            except FileNotFoundError:
                pass
    pending = f", {len(sc.pending)} pending ({', '.join(sc.pending)})" if sc.pending else ""
    log(f"PASS: {len(sc.passed)} checks{pending}, {a.arch}/{accel}, {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except TestFailure as e:
        log(f"FAIL: {e}")
        sys.exit(1)
