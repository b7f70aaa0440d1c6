#!/usr/bin/env python3
"""service_install: `make install DESTDIR=...` from the build tree puts the
binaries, the systemd units (naming the installed paths), clfd.conf and the
man pages in place; a second install keeps an edited clfd.conf; uninstall
removes what install put there and leaves the edited file alone."""
import filecmp
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_util import BUILDDIR, CLFD, SRCDIR, Tap, Tmp  # noqa: E402


_BUILT = []


def make(target, destdir):
    """Run make in the build tree, apart from the make running this test.
    The programs and libraries already built are never remade here (-o):
    tests running alongside may be executing them."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    if not _BUILT:
        _BUILT.extend((makevar("PROGRAMS") + " " + makevar("LIBRARIES")).split())
    cmd = ["make", "-s", "-C", BUILDDIR, "-o", "Makefile"]
    for f in _BUILT:
        cmd += ["-o", f]
    cmd += [target, "DESTDIR=" + destdir]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def makevar(name):
    """The value of a make variable in the build tree, fully expanded."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    p = subprocess.run(["make", "-s", "-C", BUILDDIR, "--no-print-directory",
                        "-o", "Makefile", "-f", "Makefile", "-f", "-", "print-var"],
                       input="print-var:\n\t@echo '$(%s)'\n" % name,
                       capture_output=True, text=True, env=env, timeout=60)
    lines = p.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


def files_under(d):
    r = set()
    for dp, _, fs in os.walk(d):
        for f in fs:
            r.add(os.path.relpath(os.path.join(dp, f), d))
    return r


def main():
    if not os.access(CLFD, os.X_OK) or not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        print("1..0 # SKIP clfd not built")
        return
    t = Tap()
    tmp = Tmp()
    try:
        run(t, tmp)
    finally:
        tmp.cleanup()
    t.done()


def run(t, tmp):
    dest = tmp.join("dest")
    bindir = makevar("bindir")
    sysconfdir = makevar("sysconfdir")
    mandir = makevar("mandir")
    unitdir = makevar("systemdsystemunitdir")
    have_systemd = makevar("systemdsystemunit_DATA") != ""
    t.ok(bindir.startswith("/") and sysconfdir.startswith("/") and mandir.startswith("/"),
         "install dirs known: %s %s %s %s" % (bindir, sysconfdir, mandir, unitdir))
    p = make("install", dest)
    t.ok(p.returncode == 0, "make install DESTDIR=... succeeds", p.stdout + p.stderr)

    def D(*parts):
        return os.path.join(dest + parts[0], *parts[1:])

    for prog in ("clfd", "clfctl"):
        f = D(bindir, prog)
        t.ok(os.path.isfile(f) and os.access(f, os.X_OK), "%s installed in bindir" % prog)
    p = subprocess.run([D(bindir, "clfd"), "-V"], capture_output=True, text=True, timeout=30)
    t.ok(p.returncode == 0 and "0." in p.stdout + p.stderr,
         "the installed clfd runs (-V: %s)" % (p.stdout + p.stderr).strip())
    conf = D(sysconfdir, "clfd.conf")
    t.ok(os.path.isfile(conf) and filecmp.cmp(conf, os.path.join(SRCDIR, "etc", "clfd.conf"),
                                              shallow=False),
         "clfd.conf installed in sysconfdir")
    p = subprocess.run([D(bindir, "clfd"), "-t", "-f", conf], capture_output=True,
                       text=True, timeout=30)
    t.ok(p.returncode == 0, "the installed clfd -t accepts the installed clfd.conf",
         p.stdout + p.stderr)
    for page in ("man8/clfd.8", "man1/clfctl.1", "man5/clfd.conf.5"):
        t.ok(os.path.isfile(D(mandir, page)), "%s installed" % page)
    if have_systemd:
        svc = D(unitdir, "clfd.service")
        t.ok(os.path.isfile(svc) and os.path.isfile(D(unitdir, "clfd.socket")),
             "clfd.service and clfd.socket installed in %s" % unitdir)
        text = open(svc).read() if os.path.isfile(svc) else ""
        t.ok(not re.search(r"@[a-z_]+@", text) and
             ("ExecStart=%s/clfd -f %s/clfd.conf" % (bindir, sysconfdir)) in text,
             "clfd.service runs the installed clfd with the installed clfd.conf")
    else:
        t.skip("units installed", "built --without-systemd")
        t.skip("units name the installed paths", "built --without-systemd")
    # An edited clfd.conf survives a second install.
    with open(conf, "a") as f:
        f.write("workers = 2\n")
    p = make("install", dest)
    t.ok(p.returncode == 0 and open(conf).read().endswith("workers = 2\n"),
         "a second install keeps the edited clfd.conf", p.stdout + p.stderr)
    p = make("uninstall", dest)
    left = files_under(dest)
    rel_conf = os.path.relpath(conf, dest)
    t.ok(p.returncode == 0 and left == {rel_conf},
         "make uninstall removes everything but the edited clfd.conf", sorted(left))
    os.unlink(conf)
    p = make("install", dest)
    p2 = make("uninstall", dest)
    t.ok(p.returncode == 0 and p2.returncode == 0 and files_under(dest) == set(),
         "install then uninstall leaves nothing", sorted(files_under(dest)))


if __name__ == "__main__":
    main()
