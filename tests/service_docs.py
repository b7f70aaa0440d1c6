#!/usr/bin/env python3
"""service_docs: the man pages lint clean, the units verify clean and are
hardened to an exposure of 2.0 or less, and every config key is documented
in clfd.conf(5) and present (commented out, with its default) in
etc/clfd.conf, which clfd -t accepts with every line uncommented; the
protocol's error codes (src/errcode.c) are the ones clfd(8) lists."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_util import BUILDDIR, CLFD, SRCDIR, Tap, Tmp, config_keys  # noqa: E402

# The pages as built (from man/*.in, with configure's paths in them).
MANS = ["man/clfd.8", "man/clfctl.1", "man/clfd.conf.5"]
# Messages about the machine's manual database, not about our pages.
MANDOC_ENV_NOISE = ("referenced manual not found", "outdated mandoc.db")
EXPOSURE_MAX = 2.0


def main():
    t = Tap()
    tmp = Tmp()
    try:
        check_mans(t)
        check_config_docs(t, tmp)
        check_error_codes(t)
        check_units(t, tmp)
    finally:
        tmp.cleanup()
    t.done()


def check_mans(t):
    if shutil.which("mandoc") is None:
        for m in MANS:
            t.skip("mandoc -T lint " + m, "mandoc not installed")
        return
    for m in MANS:
        p = subprocess.run(["mandoc", "-T", "lint", os.path.join(BUILDDIR, m)],
                           capture_output=True, text=True)
        msgs = [l for l in (p.stdout + p.stderr).splitlines()
                if l and not any(n in l for n in MANDOC_ENV_NOISE)]
        t.ok(not msgs, "mandoc -T lint %s finds nothing" % m, "\n".join(msgs))
    # The pages are rendered without errors too (what man(1) would show).
    for m in MANS:
        p = subprocess.run(["mandoc", "-T", "ascii", os.path.join(BUILDDIR, m)],
                           capture_output=True, text=True)
        t.ok(p.returncode == 0 and len(p.stdout) > 1000,
             "mandoc renders %s" % m, p.stderr)


def check_config_docs(t, tmp):
    keys = config_keys()
    t.ok(len(keys) >= 20, "config.c's key table read (%d keys)" % len(keys))
    with open(os.path.join(BUILDDIR, "man", "clfd.conf.5")) as f:
        man = f.read()
    with open(os.path.join(SRCDIR, "etc", "clfd.conf")) as f:
        conf = f.read()
    undocumented = [k for k in keys if not re.search(r"^\.It Cm %s\b" % k, man, re.M)]
    t.ok(not undocumented, "clfd.conf(5) documents every key", undocumented)
    conf_keys = re.findall(r"^#(\w+) = ", conf, re.M)
    missing = [k for k in keys if k not in conf_keys]
    t.ok(not missing, "etc/clfd.conf lists every key commented out", missing)
    unknown = [k for k in conf_keys if k not in keys]
    t.ok(not unknown, "etc/clfd.conf lists no unknown key", unknown)
    # Each key has a one-line explanation just above it.
    lines = conf.splitlines()
    bare = [lines[i] for i in range(1, len(lines))
            if re.match(r"^#\w+ = ", lines[i]) and not lines[i - 1].startswith("# ")]
    t.ok(not bare, "every key in etc/clfd.conf is explained", bare)
    if not os.access(CLFD, os.X_OK):
        t.skip("clfd -t accepts etc/clfd.conf uncommented", "clfd not built")
        return
    p = subprocess.run([CLFD, "-t", "-f", os.path.join(SRCDIR, "etc", "clfd.conf")],
                       capture_output=True, text=True, timeout=30)
    t.ok(p.returncode == 0, "clfd -t accepts etc/clfd.conf as shipped", p.stderr)
    uncommented = re.sub(r"^#(\w+ = )", r"\1", conf, flags=re.M)
    path = tmp.write("all.conf", uncommented)
    p = subprocess.run([CLFD, "-t", "-f", path], capture_output=True, text=True,
                       timeout=30)
    t.ok(p.returncode == 0, "clfd -t accepts etc/clfd.conf with every key set",
         p.stderr)


def check_error_codes(t):
    with open(os.path.join(SRCDIR, "src", "errcode.c")) as f:
        codes = set(re.findall(r'\[ERRC_[A-Z_]+\] = "([a-z_]+)"', f.read()))
    codes.discard("none")
    with open(os.path.join(SRCDIR, "man", "clfd.8.in")) as f:
        page = f.read()
    m = re.search(r"^Error codes:$(.*?)^\.Sh ", page, re.M | re.S)
    listed = set(re.findall(r"^\.Cm ([a-z_]+)", m.group(1), re.M)) if m else set()
    listed.discard("cancel")    # ".Pf ( Cm cancel" is the op, not a code
    t.ok(len(codes) >= 13 and codes <= listed,
         "clfd(8) lists every error code of src/errcode.c (%d)" % len(codes),
         "not listed: %s" % sorted(codes - listed))


def gen_units(tmp, bindir, sysconfdir):
    """clfd.service and clfd.socket from their .in with the given paths."""
    d = tmp.join("units")
    os.makedirs(d, exist_ok=True)
    for unit in ("clfd.service", "clfd.socket"):
        with open(os.path.join(SRCDIR, "systemd", unit + ".in")) as f:
            text = f.read()
        text = text.replace("@bindir@", bindir).replace("@sysconfdir@", sysconfdir)
        text = text.replace("@systemsocket@", "/run/clfd/clfd.sock")
        with open(os.path.join(d, unit), "w") as f:
            f.write(text)
    return d


def check_units(t, tmp):
    if shutil.which("systemd-analyze") is None:
        t.skip("systemd-analyze verify", "systemd-analyze not installed")
        t.skip("systemd-analyze security", "systemd-analyze not installed")
        return
    with open(os.path.join(SRCDIR, "systemd", "clfd.service.in")) as f:
        text = f.read()
    t.ok(re.search(r"^MemoryDenyWriteExecute=", text, re.M) is None,
         "MemoryDenyWriteExecute is not set (PCRE2 JIT needs W+X memory)")
    etc = tmp.join("etc")
    os.makedirs(etc)
    shutil.copy(os.path.join(SRCDIR, "etc", "clfd.conf"), etc)
    if os.access(CLFD, os.X_OK):
        d = gen_units(tmp, os.path.dirname(CLFD), etc)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            os.path.join(d, "clfd.socket"),
                            os.path.join(d, "clfd.service")],
                           capture_output=True, text=True, timeout=60)
        out = (p.stdout + p.stderr).strip()
        t.ok(p.returncode == 0 and out == "",
             "systemd-analyze verify clfd.socket clfd.service is clean", out)
    else:
        t.skip("systemd-analyze verify", "clfd not built")
    d = gen_units(tmp, "/usr/bin", "/etc")
    p = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        os.path.join(d, "clfd.service")],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for clfd\.service: ([0-9.]+)", p.stdout)
    score = float(m.group(1)) if m else None
    t.ok(score is not None and score <= EXPOSURE_MAX,
         "systemd-analyze security exposure %s <= %.1f" % (score, EXPOSURE_MAX),
         p.stdout[-2000:] + p.stderr)
    if score is not None:
        t.diag("exposure: %.1f" % score)


if __name__ == "__main__":
    main()
