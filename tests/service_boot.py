#!/usr/bin/env python3
"""service_boot: the installed units under a real systemd, booted as PID 1
of new pid/mount/uts/ipc/net/cgroup namespaces of the test's own.

`make install DESTDIR=` stages the build in the test's temporary
directory; inside the namespaces the staged prefix is bind-mounted over
the real one (/usr/local), so the host's files are never touched. The
namespace gets private tmpfs on /tmp, /var/tmp, /run and /var/log
(systemd's tmpfiles empties /tmp at boot), a private /dev, a read-only
/proc/sys and /sys, its own cgroup2 subtree, container= set (so that its
shutdown never remounts a file system) and the units that touch hardware
or machine-wide state masked. Logs under /var/log/web (0640 root:adm) are
a directory of the test's, bind-mounted there.

Checked, as root and as a uid in group adm (setpriv): socket activation;
the socket root:adm 0660 before and after the first start and after a
restart, and adm's clfctl served each time; a uid outside adm refused,
told it needs group adm; counts equal to a private clfd's; root's plain
clfctl reaching the service (ping pid == MainPID); a bad config failing a
reload (the old config stays) and a start, at error priority in the
journal, info lines at info; the watchdog restarting a SIGSTOPped
supervisor; `systemctl stop` leaving no process.

Skipped, with the reason, where the machine cannot boot it: not root, a
missing tool (unshare, nsenter, setpriv, systemd), no cgroup2 hierarchy,
a build without the units.
"""
import collections
import ctypes
import gzip
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402
from clfdtest import BUILDDIR  # noqa: E402

SYSTEMD = "/lib/systemd/systemd"
PR_SET_PDEATHSIG = 1
ADM_UID = 64200		# in group adm, no account needed
OTHER_UID = 64201	# in no group but its own
# WatchdogSec= for the test (a drop-in): the shipped 30 s would make the
# watchdog check half a minute long; the mechanism is the same.
WATCHDOG_SEC = 4
MASK = """postgresql.service munge.service slurmctld.service slurmd.service
e2scrub_reap.service e2scrub_all.timer getty.target getty@.service
getty-static.service serial-getty@.service console-getty.service
container-getty@.service systemd-timesyncd.service systemd-pstore.service
systemd-udevd.service systemd-udev-trigger.service systemd-udev-settle.service
systemd-udevd-control.socket systemd-udevd-kernel.socket
systemd-sysctl.service systemd-modules-load.service kmod-static-nodes.service
systemd-binfmt.service proc-sys-fs-binfmt_misc.automount
proc-sys-fs-binfmt_misc.mount systemd-remount-fs.service
systemd-fsck-root.service systemd-random-seed.service
systemd-firstboot.service systemd-repart.service systemd-pcrphase.service
systemd-pcrphase-sysinit.service systemd-machine-id-commit.service
systemd-hwdb-update.service ldconfig.service
systemd-journal-catalog-update.service systemd-update-done.service
systemd-journald-audit.socket apt-daily.timer apt-daily-upgrade.timer
dpkg-db-backup.timer fstrim.timer man-db.timer
systemd-tmpfiles-clean.timer""".split()

# PID 1 of the new namespaces, before systemd: everything taken from the
# test's directory ($T) is mounted before /tmp is covered by a tmpfs.
INNER = r"""
set -eu
T=$1 PREFIX=$2 COVER=${3-}
umask 022
mount --make-rprivate /
# a parent of the prefix the service's dynamic user could not search (a
# build tree in a 0700 directory): covered here by a searchable tmpfs
if [ -n "$COVER" ]; then
	mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$COVER"
	mkdir -p "$PREFIX"
fi
mount --bind "$T/stage$PREFIX" "$PREFIX"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /var/log
mkdir -m 2755 /var/log/journal
chgrp systemd-journal /var/log/journal 2>/dev/null || true
mkdir /var/log/web
mount --bind "$T/web" /var/log/web
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
# a private /dev: a few host nodes bound in, a new devpts, the console a file
nd=$T/dev
mkdir "$nd"
mount -t tmpfs -o mode=755,nosuid tmpfs "$nd"
for n in null zero full random urandom tty; do
	touch "$nd/$n"; mount --bind "/dev/$n" "$nd/$n"
done
mkdir "$nd/pts" "$nd/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$nd/pts"
ln -s pts/ptmx "$nd/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$nd/shm"
ln -s /proc/self/fd "$nd/fd"
ln -s /proc/self/fd/0 "$nd/stdin"
ln -s /proc/self/fd/1 "$nd/stdout"
ln -s /proc/self/fd/2 "$nd/stderr"
touch "$nd/console"; mount --bind "$T/console.log" "$nd/console"
mount --move "$nd" /dev
# machine-wide knobs read-only in here
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
if [ -e /proc/sysrq-trigger ]; then
	mount --bind /proc/sysrq-trigger /proc/sysrq-trigger
	mount -o remount,bind,ro /proc/sysrq-trigger
fi
# cgroup2 rooted at the test's own cgroup (the cgroup namespace)
umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
mount -o remount,bind,ro /sys
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
hostname clfd-boot
mkdir -p /run/systemd/system/sockets.target.wants /run/tmpfiles.d
for u in $MASK; do ln -s /dev/null "/run/systemd/system/$u"; done
# "r! /etc/passwd.lock" and the like would remove the host's lock files
ln -s /dev/null /run/tmpfiles.d/passwd.conf
cp -r "$T/units/." /run/systemd/system/
# last: /tmp and /var/tmp (their tmpfiles rules empty them at boot)
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
export container=clfd-test
exec "$SYSTEMD" --system --unit=multi-user.target </dev/null >/dev/console 2>&1
"""


def skip_all(why):
    print("1..0 # SKIP " + why)
    sys.exit(0)


def make_env():
    """Our environment without the make check's flags (TESTS=... etc.)."""
    e = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR"):
        e.pop(k, None)
    return e


def make_var(name):
    """A variable of the build's Makefile, expanded."""
    p = subprocess.run(["make", "-s", "-C", BUILDDIR, "--no-print-directory",
                        "-f", "Makefile", "-f", "-", "print-var"],
                       input="print-var:\n\t@echo $(%s)\n" % name,
                       capture_output=True, text=True, timeout=60, env=make_env())
    return p.stdout.strip() if p.returncode == 0 else ""


def cgroup2_root():
    """Where this machine mounts the cgroup2 hierarchy, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup2":
                return fields[4]
    return None


def preconditions():
    """The reason the machine cannot boot a systemd here, or None."""
    if os.geteuid() != 0:
        return "not root (namespaces, mounts and a systemd as PID 1 need it)"
    for tool in ("unshare", "nsenter", "setpriv", "mount", "make"):
        if shutil.which(tool) is None:
            return "no %s" % tool
    if not os.access(SYSTEMD, os.X_OK):
        return "no %s" % SYSTEMD
    root = cgroup2_root()
    if root is None:
        return "no cgroup2 hierarchy mounted"
    probe = os.path.join(root, "clfd-test-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        return "cannot make a cgroup under %s: %s" % (root, e)
    p = subprocess.run(["unshare", "--pid", "--mount", "--uts", "--ipc", "--net",
                        "--cgroup", "--fork", "--mount-proc", "true"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        return "unshare cannot make the namespaces here: " + p.stderr.strip()
    return None


def gen_web_logs(d):
    """Combined-format logs (plain and gzip) with known counts, and junk."""
    paths = ["/book/ch%d.html" % i for i in range(1, 8)] + \
        ["/", "/index.html", "/img/logo.png", "/favicon.ico", "/style.css"]
    counted = collections.Counter()
    texts = []
    for n in range(3):
        lines = []
        for i in range(400 + 150 * n):
            p = paths[(i * 7 + n) % len(paths)]
            q = "?q=%d" % i if i % 5 == 0 else ""
            lines.append('10.0.%d.%d - - [10/Oct/2024:13:%02d:%02d +0000] "GET %s%s '
                         'HTTP/1.1" %d %d "-" "test/1.0"'
                         % (n, i % 250, i // 60 % 60, i % 60, p, q,
                            200 if i % 9 else 404, 100 + i))
            if not (p.endswith((".png", ".css")) or p == "/favicon.ico" or p == "/"):
                counted[p] += 1
        lines.append("this line is not a log line")
        texts.append("\n".join(lines) + "\n")
    with open(os.path.join(d, "access.log"), "w") as f:
        f.write(texts[0])
    for n in (1, 2):
        with gzip.open(os.path.join(d, "access.log.%d.gz" % n), "wt") as f:
            f.write(texts[n])
    adm = 4
    try:
        import grp
        adm = grp.getgrnam("adm").gr_gid
    except KeyError:
        pass
    for name in os.listdir(d):
        os.chown(os.path.join(d, name), 0, adm)
        os.chmod(os.path.join(d, name), 0o640)
    os.chown(d, 0, adm)
    os.chmod(d, 0o750)
    return dict(counted)


def unsearchable(prefix):
    """The topmost parent of prefix that others may not search, or ""."""
    d = "/"
    for part in os.path.dirname(prefix).strip("/").split("/"):
        if not part:
            break
        d = os.path.join(d, part)
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return d
    return ""


class Boot:
    """A systemd as PID 1 of new namespaces; commands run inside by nsenter."""

    def __init__(self, tmp, prefix):
        self.tmp = tmp
        self.prefix = prefix
        self.proc = None
        self.pid = None		# host pid of the namespaced systemd
        self.cg = None
        root = cgroup2_root()
        self.cg = os.path.join(root, "clfd-test-%d" % os.getpid())
        os.mkdir(self.cg)
        script = os.path.join(tmp, "inner.sh")
        with open(script, "w") as f:
            f.write(INNER)
        open(os.path.join(tmp, "console.log"), "w").close()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MASK": " ".join(MASK),
               "SYSTEMD": SYSTEMD}
        procs = os.path.join(self.cg, "cgroup.procs")

        def enter_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            # should the test die, unshare dies, and with it (--kill-child)
            # the namespace's PID 1 and so everything in the namespace
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        self.out = open(os.path.join(tmp, "unshare.out"), "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup",
             "--fork", "--kill-child", "--mount-proc", "--propagation", "private",
             "sh", script, tmp, prefix, unsearchable(prefix)],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.out, env=env,
            start_new_session=True, preexec_fn=enter_cgroup)

        def child_systemd():
            if self.proc.poll() is not None:
                raise RuntimeError("unshare exited %d: %s" % (
                    self.proc.returncode, self.read("unshare.out")))
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid,
                                                          self.proc.pid)) as f:
                    kids = [int(p) for p in f.read().split()]
            except FileNotFoundError:
                return None
            for k in kids:
                try:
                    with open("/proc/%d/comm" % k) as f:
                        if f.read().strip() == "systemd":
                            return k
                except FileNotFoundError:
                    pass
            return None
        self.pid = clfdtest.wait_until(child_systemd, 30, "systemd as PID 1")

    def read(self, name):
        try:
            with open(os.path.join(self.tmp, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def run(self, argv, uid=None, timeout=90, env=None):
        """argv inside the namespaces (as uid, in group adm for ADM_UID)."""
        pre = ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i"]
        if uid is not None:
            groups = ["--groups", "adm"] if uid == ADM_UID else ["--clear-groups"]
            pre += ["setpriv", "--reuid", str(uid), "--regid", str(uid)] + groups
        e = {"PATH": "%s/bin:/usr/sbin:/usr/bin:/sbin:/bin" % self.prefix,
             "HOME": "/", "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                e[k] = os.environ[k]
        if env:
            e.update(env)
        return subprocess.run(pre + argv, capture_output=True, text=True,
                              timeout=timeout, env=e, stdin=subprocess.DEVNULL)

    def systemctl(self, *args, timeout=90):
        return self.run(["systemctl"] + list(args), timeout=timeout)

    def show(self, unit, prop):
        return self.systemctl("show", "-p", prop, "--value", unit).stdout.strip()

    def journal(self, unit="clfd.service"):
        """The unit's journal entries as dicts (MESSAGE, PRIORITY, ...)."""
        p = self.run(["journalctl", "--no-pager", "-o", "json", "-u", unit])
        out = []
        for line in p.stdout.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            m = e.get("MESSAGE")
            if isinstance(m, list):	# bytes that are not UTF-8
                m = bytes(m).decode(errors="replace")
            e["MESSAGE"] = m or ""
            out.append(e)
        return out

    def poweroff(self):
        if self.proc is None:
            return
        if self.proc.poll() is None and self.pid is not None:
            try:
                self.systemctl("poweroff", timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                # PID 1 of the namespace: its death ends every process in it
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(30)
        elif self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.out.close()
        self.proc = None

    def cleanup(self):
        self.poweroff()
        if self.cg is not None and os.path.isdir(self.cg):
            for top, dirs, _ in os.walk(self.cg, topdown=False):
                for d in dirs:
                    try:
                        os.rmdir(os.path.join(top, d))
                    except OSError:
                        pass
            try:
                os.rmdir(self.cg)
            except OSError as e:
                print("# cgroup %s left: %s" % (self.cg, e))


def stage(tmp, t):
    """make install DESTDIR=tmp/stage; the installed paths, or None."""
    dirs = {k: make_var(k) for k in ("prefix", "bindir", "sysconfdir",
                                     "systemdsystemunitdir", "systemsocket")}
    if not all(dirs.values()):
        skip_all("cannot read the install paths from the build's Makefile")
    for k in ("bindir", "sysconfdir", "systemdsystemunitdir"):
        if not dirs[k].startswith(dirs["prefix"] + "/"):
            skip_all("%s %s is not under the prefix %s, which is what the "
                     "test mounts" % (k, dirs[k], dirs["prefix"]))
    if not os.path.isdir(dirs["prefix"]):
        skip_all("the prefix %s is no directory to mount the staged tree on"
                 % dirs["prefix"])
    for d in ("/tmp", "/var/tmp", "/run", "/var/log", "/dev", "/proc", "/sys"):
        if (dirs["prefix"] + "/").startswith(d + "/"):
            skip_all("the prefix %s is under %s, which the namespace covers "
                     "with its own" % (dirs["prefix"], d))
    cover = unsearchable(dirs["prefix"])
    if cover and (tmp + "/").startswith(cover + "/"):
        skip_all("the test's directory %s is under %s, which others may not "
                 "search and the namespace covers" % (tmp, cover))
    p = subprocess.run(["make", "-C", BUILDDIR, "install",
                        "DESTDIR=" + os.path.join(tmp, "stage")],
                       capture_output=True, text=True, timeout=300, env=make_env())
    if not t.ok(p.returncode == 0, "make install DESTDIR= into the test's directory",
                p.stdout[-2000:] + p.stderr[-2000:]):
        return None
    S = lambda d: os.path.join(tmp, "stage") + d  # noqa: E731
    if not os.path.isfile(S(dirs["systemdsystemunitdir"]) + "/clfd.socket"):
        skip_all("the build installs no systemd units (configure --without-systemd)")
    return dirs, S


def main():
    why = preconditions()
    if why:
        skip_all(why)
    t = clfdtest.Tap()
    # a make check that times out sends SIGTERM: power off on the way out
    signal.signal(signal.SIGTERM, lambda sig, frame: sys.exit(1))
    tmp = tempfile.mkdtemp(prefix="clfd-boot-")
    boot = priv = None
    try:
        r = stage(tmp, t)
        if r is None:
            return t.done()
        dirs, S = r
        web = os.path.join(tmp, "web")
        os.mkdir(web)
        want = gen_web_logs(web)
        conf = S(dirs["sysconfdir"]) + "/clfd.conf"
        with open(conf) as f:
            good_conf = f.read()
        t.ok(re.search(r"^roots = /var/log$", good_conf, re.M) is not None,
             "the installed clfd.conf sets roots = /var/log")
        # The units are the installed ones (linked from /run/systemd/system
        # when unitdir is not in systemd's search path), clfd.socket enabled
        # for this boot; a drop-in shortens the watchdog.
        units = os.path.join(tmp, "units")
        os.makedirs(os.path.join(units, "sockets.target.wants"))
        os.makedirs(os.path.join(units, "clfd.service.d"))
        unitdir = dirs["systemdsystemunitdir"]
        for u in ("clfd.socket", "clfd.service"):
            if unitdir != "/usr/local/lib/systemd/system":
                os.symlink(os.path.join(unitdir, u), os.path.join(units, u))
        os.symlink(os.path.join(unitdir, "clfd.socket"),
                   os.path.join(units, "sockets.target.wants", "clfd.socket"))
        dropin = "[Service]\nWatchdogSec=%ds\n" % WATCHDOG_SEC
        if clfdtest.SANITIZERS == "yes":
            # LeakSanitizer stops the process with ptrace, which the unit's
            # SystemCallFilter= refuses: leak checks are done by the other
            # tests and under valgrind; ASan and UBSan stay on.
            dropin += "Environment=ASAN_OPTIONS=detect_leaks=0\n"
        with open(os.path.join(units, "clfd.service.d", "test.conf"), "w") as f:
            f.write(dropin)

        boot = Boot(tmp, dirs["prefix"])
        st = clfdtest.wait_until(
            lambda: (lambda s: s if s in ("running", "degraded") else None)(
                boot.systemctl("is-system-running").stdout.strip()), 120, "boot")
        t.ok(st in ("running", "degraded"), "systemd booted (%s)" % st)
        if st == "degraded":
            t.diag(boot.systemctl("--failed", "--no-legend").stdout)
        os.mkdir(os.path.join(tmp, "priv"))
        priv = clfdtest.Daemon(workers=2, tmp=os.path.join(tmp, "priv"),
                               preexec=lambda: ctypes.CDLL(None).prctl(
                                   PR_SET_PDEATHSIG, signal.SIGTERM))
        checks(t, boot, dirs, want, web, conf, good_conf, priv)
    except Exception as e:
        t.ok(False, "unexpected exception", "%s: %s" % (type(e).__name__, e))
        if boot is not None:
            t.diag(boot.read("console.log")[-3000:])
    finally:
        if priv is not None:
            priv.cleanup()
        if boot is not None:
            boot.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()




def clfctl(boot, dirs, args, uid=None):
    """clfctl inside the namespaces; (process, its JSON output or None)."""
    p = boot.run([dirs["bindir"] + "/clfctl"] + args, uid=uid)
    try:
        return p, json.loads(p.stdout)
    except ValueError:
        return p, None


def main_pid(boot):
    """clfd.service's MainPID once it is active (wait for it), else 0."""
    def up():
        if boot.show("clfd.service", "ActiveState") != "active":
            return None
        pid = int(boot.show("clfd.service", "MainPID") or 0)
        return pid or None
    return clfdtest.wait_until(up, 90, "clfd.service active")


def unit_diag(t, boot):
    """What systemd knows of clfd's units, for a failed activation."""
    t.diag(boot.systemctl("status", "--no-pager", "-l", "clfd.socket",
                          "clfd.service").stdout[-4000:])
    t.diag(boot.run(["journalctl", "--no-pager", "-b", "-n", "80"]).stdout[-6000:])


def owner_mode(boot, path):
    return boot.run(["stat", "-c", "%U:%G %a %F", path]).stdout.strip()


def journal_has(boot, pred, timeout=30):
    """The first of clfd.service's journal entries matching pred (waited for)."""
    def find():
        for e in boot.journal():
            if pred(e):
                return e
        return None
    try:
        return clfdtest.wait_until(find, timeout, "a journal entry")
    except TimeoutError:
        return None


def worker_pids(boot, dirs):
    p, r = clfctl(boot, dirs, ["stats", "-o", "compact"])
    if r is None:
        return None
    return sorted(s["pid"] for s in r["workers"]["slots"])


def checks(t, boot, dirs, want, web, conf, good_conf, priv):
    sock = dirs["systemsocket"]
    SOCK_OK = "root:adm 660 socket"
    # socket activation; adm before the first start
    t.eq(boot.systemctl("is-active", "clfd.socket").stdout.strip(), "active",
         "clfd.socket listens after boot")
    t.eq(boot.show("clfd.service", "ActiveState"), "inactive",
         "clfd.service is not running before the first connection")
    t.eq(owner_mode(boot, sock), SOCK_OK, "before the first start: %s is root:adm 0660" % sock)
    p, r = clfctl(boot, dirs, ["ping"], uid=ADM_UID)
    t.ok(r is not None and r.get("ok"), "a uid in group adm pings: socket activation "
         "starts clfd.service", p.stderr)
    try:
        pid = main_pid(boot)
    except TimeoutError:
        pid = 0
    if r is None or not pid:
        unit_diag(t, boot)
    t.ok(r is not None and r.get("pid") == pid, "the ping was answered by MainPID %d" % pid, r)
    t.eq(owner_mode(boot, sock), SOCK_OK, "after the first start: still root:adm 0660")
    t.eq(owner_mode(boot, os.path.dirname(sock)), "root:root 755 directory",
         "its directory stays root's, 0755")
    p, r = clfctl(boot, dirs, ["ping"], uid=ADM_UID)
    t.ok(r is not None and r.get("pid") == pid, "adm pings the running service", p.stderr)
    # outside adm: refused, told why
    p, r = clfctl(boot, dirs, ["ping"], uid=OTHER_UID)
    t.ok(p.returncode == 3 and "%s is the clfd system service; you need to be in group "
         "adm" % sock in p.stderr, "a uid outside adm is refused and told it needs group adm",
         "exit %d: %s" % (p.returncode, p.stderr))
    t.ok(boot.run(["test", "-e", "/tmp/clfd-%d" % OTHER_UID]).returncode != 0,
         "and no per-user daemon was started for it")
    # root's plain clfctl: the system service, no daemon of its own
    p, r = clfctl(boot, dirs, ["ping"])
    t.ok(r is not None and r.get("pid") == pid, "root's plain clfctl reaches the service "
         "(ping pid == MainPID)", p.stdout + p.stderr)
    t.ok(boot.run(["test", "-e", "/tmp/clfd-0"]).returncode != 0,
         "root's clfctl started no daemon of its own")
    # counts of 0640 root:adm logs under /var/log, as adm's job
    p, res = clfctl(boot, dirs, ["submit", "--no-progress", "-o", "compact",
                                 "/var/log/web/access.log*"], uid=ADM_UID)
    t.ok(p.returncode == 0 and res is not None, "adm submits /var/log/web/access.log*",
         p.stderr)
    _, ev = priv.submit([os.path.join(web, "access.log*")])
    got = res.get("counts") if res else None
    t.eq(got, ev.get("counts") if ev else None,
         "the service's counts equal a private clfd's on the same files")
    t.eq(got, want, "and the counts the logs were written with")
    keys = ("files", "failed", "lines", "malformed", "counted")
    t.eq({k: (res or {}).get("totals", {}).get(k) for k in keys},
         {k: (ev or {}).get("totals", {}).get(k) for k in keys},
         "and the same totals (3 files, read through adm)")

    # a restart: adm keeps its access
    p = boot.systemctl("restart", "clfd.service")
    t.ok(p.returncode == 0, "systemctl restart clfd", p.stderr)
    pid2 = main_pid(boot)
    t.ok(pid2 != pid, "a new MainPID (%d, was %d)" % (pid2, pid))
    t.eq(owner_mode(boot, sock), SOCK_OK, "after a restart: still root:adm 0660")
    p, r = clfctl(boot, dirs, ["ping"], uid=ADM_UID)
    t.ok(r is not None and r.get("pid") == pid2, "adm pings the restarted service", p.stderr)

    # a good reload that changes nothing the workers hold keeps them
    before = worker_pids(boot, dirs)
    with open(conf, "w") as f:
        f.write(good_conf + "result_ttl = 600\n")
    p = boot.systemctl("reload", "clfd.service")
    t.ok(p.returncode == 0 and boot.show("clfd.service", "ActiveState") == "active",
         "systemctl reload with a good file succeeds", p.stderr)
    t.ok(journal_has(boot, lambda e: "reloaded " in e["MESSAGE"]) is not None,
         "the reload is logged")
    t.ok(before and worker_pids(boot, dirs) == before,
         "the workers were kept: nothing they hold changed", before)
    # a bad reload fails, the old config stays
    bad_line = len((good_conf + "x").splitlines()) + 1
    with open(conf, "w") as f:
        f.write(good_conf + "roots = /\nno_such_key = 1\n")
    p = boot.systemctl("reload", "clfd.service")
    t.ok(p.returncode != 0, "systemctl reload with a broken clfd.conf fails",
         "exit %d: %s" % (p.returncode, p.stderr))
    t.ok(boot.show("clfd.service", "ActiveState") == "active" and main_pid(boot) == pid2,
         "and the daemon runs on, the same MainPID")
    e0 = journal_has(boot, lambda e: "clfd.conf:%d" % bad_line in e["MESSAGE"])
    t.ok(e0 is not None and e0.get("PRIORITY") == "3",
         "the reload's error names clfd.conf:%d at error priority" % bad_line, e0)
    p, r = clfctl(boot, dirs, ["submit", "--no-progress", "-o", "compact",
                               dirs["sysconfdir"] + "/clfd.conf"])
    inside = dirs["sysconfdir"] + "/clfd.conf"
    t.ok(r is not None and r.get("files") == [] and r.get("unmatched") == [inside],
         "the old roots (/var/log) are still in force: clfd.conf is outside "
         "them (unmatched)",
         "exit %d: %s %s" % (p.returncode, p.stdout[-500:], p.stderr))
    # a bad file fails a start, at error priority
    p = boot.systemctl("restart", "clfd.service")
    t.ok(p.returncode != 0, "systemctl restart with the broken clfd.conf fails", p.stderr)
    with open(conf, "w") as f:
        f.write(good_conf)
    e = journal_has(boot, lambda e: "clfd.conf:%d" % bad_line in e["MESSAGE"] and
                    e.get("_PID") != (e0 or {}).get("_PID"))
    t.ok(e is not None and e.get("PRIORITY") == "3",
         "clfd -t's error at start is at error priority", e)
    boot.systemctl("reset-failed", "clfd.service", "clfd.socket")
    p = boot.systemctl("start", "clfd.socket", "clfd.service")
    pid3 = main_pid(boot)
    p, r = clfctl(boot, dirs, ["ping"], uid=ADM_UID)
    t.ok(r is not None and r.get("pid") == pid3, "with the file fixed it starts again", p.stderr)
    e = journal_has(boot, lambda e: "ready" in e["MESSAGE"] and "worker" in e["MESSAGE"])
    t.ok(e is not None and e.get("PRIORITY") == "6", "\"N workers ready\" is at info priority", e)
    t.ok(not any(re.match(r"<\d>", e["MESSAGE"]) for e in boot.journal()),
         "no message shows a raw <N> prefix")

    # the watchdog: a stopped supervisor is killed and restarted
    restarts = int(boot.show("clfd.service", "NRestarts") or 0)
    boot.run(["kill", "-STOP", str(pid3)])
    t0 = time.monotonic()
    try:
        pid4 = clfdtest.wait_until(
            lambda: (lambda p: p if p != pid3 else None)(main_pid(boot)), 120,
            "a new MainPID after the watchdog")
    except TimeoutError:
        pid4 = None
    t.ok(pid4 is not None, "the watchdog (WatchdogSec=%ds) replaced the SIGSTOPped "
         "supervisor in %.0f s" % (WATCHDOG_SEC, time.monotonic() - t0))
    t.ok(int(boot.show("clfd.service", "NRestarts") or 0) > restarts and
         journal_has(boot, lambda e: "atchdog timeout" in e["MESSAGE"]) is not None,
         "systemd logged the watchdog timeout and restarted the service")
    p, r = clfctl(boot, dirs, ["ping"], uid=ADM_UID)
    t.ok(r is not None and r.get("pid") == pid4, "adm pings the restarted service", p.stderr)
    t.eq(owner_mode(boot, sock), SOCK_OK, "after the watchdog's restart: root:adm 0660")

    # stop: nothing left
    p = boot.systemctl("stop", "clfd.service", "clfd.socket")
    t.ok(p.returncode == 0, "systemctl stop clfd.service clfd.socket", p.stderr)
    ps = boot.run(["ps", "-e", "-o", "pid=,args="]).stdout
    left = [l for l in ps.splitlines() if re.search(r"\bclfd\b", l)
            and "ps -e" not in l]
    t.ok(not left, "no clfd process is left", left)
    t.ok(boot.run(["test", "-e", "/sys/fs/cgroup/system.slice/clfd.service"]).returncode != 0,
         "the service's cgroup is gone")
    t.ok(boot.run(["test", "-e", sock]).returncode != 0, "the socket is removed")


if __name__ == "__main__":
    sys.exit(main())
