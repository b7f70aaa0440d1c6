"""daemon_manpage: clfd(8) and clfd.conf(5) as a reader sees them.

Rendered with mandoc (and groff when installed), every paragraph's quotes
pair up: double quotes open and close in turn, and each opening ` of a
single quote is closed before the next one opens. The socat(1) examples of clfd(8)'s
EXAMPLES are cut from the rendered page and run as printed, with the
system socket and log path swapped for a clfd of our own and a log of our
own: every request is answered, and the submit counts the log right."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clfdtest  # noqa: E402

# The pages as built from man/*.in (configure's paths in them).
PAGES = ["man/clfd.8", "man/clfd.conf.5"]
LOG_LINES = [
    '10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET /a HTTP/1.1" 200 10',
    '10.0.0.2 - - [10/Oct/2024:13:55:37 +0000] "GET /a HTTP/1.1" 200 10',
    '10.0.0.3 - - [10/Oct/2024:13:55:38 +0000] "GET /b HTTP/1.1" 404 10',
    '10.0.0.4 - - [10/Oct/2024:13:55:39 +0000] "GET /c HTTP/1.1" 204 10',
]


def render(argv, page):
    p = subprocess.run(argv + [os.path.join(clfdtest.BUILDDIR, page)],
                       capture_output=True, text=True)
    # col -b's work: drop the overstrike of bold and underline
    return re.sub(r".\x08", "", p.stdout)


def quote_problems(text):
    """Paragraphs whose quotes do not pair up."""
    bad = []
    for para in re.split(r"\n\s*\n", text):
        # a " after a space or ( opens, any other closes: they alternate
        # (a LogFormat's \" is no quote; JSON in displays is left out)
        flat = " ".join(para.split()).replace('\\"', "")
        kinds = [i == 0 or flat[i - 1] in " ([" for i, ch in enumerate(flat)
                 if ch == '"'] if "{" not in flat else []
        if len(kinds) % 2 or any(k != (i % 2 == 0) for i, k in enumerate(kinds)):
            bad.append(flat)
            continue
        opens = [m.start() for m in re.finditer("`", flat)] + [len(flat)]
        if any("'" not in flat[a + 1:b] for a, b in zip(opens, opens[1:])):
            bad.append(flat)
    return bad


def examples(text):
    """The shell commands of the socat examples, continuation lines joined."""
    m = re.search(r"Talk to the system service.*?\n\n(.*?)\n\n", text, re.S)
    cmds, cur = [], None
    for line in (m.group(1).splitlines() if m else []):
        s = line.strip()
        if cur is None and s.startswith("$ "):
            cur = s[2:]
        elif cur is not None:
            cur += "\n" + s
        else:
            continue
        if not cur.endswith(("|", "\\")):
            cmds.append(cur)
            cur = None
    return cmds


def default_mismatches():
    """Keys whose "Default: X." in clfd.conf(5) is not etc/clfd.conf's "#key = X"."""
    man, key = {}, None
    with open(os.path.join(clfdtest.BUILDDIR, "man/clfd.conf.5")) as f:
        for line in f:
            m = re.match(r"\.It Cm (\w+) No = ", line)
            if m:
                key = m.group(1)
            m = re.match(r"Default: (\S+)\.$", line)
            if m and key:
                man[key] = m.group(1)
    etc = {}
    with open(os.path.join(clfdtest.SRCDIR, "etc/clfd.conf")) as f:
        for line in f:
            m = re.match(r"#(\w+) = (\S+)$", line.rstrip("\n"))
            if m:
                etc[m.group(1)] = m.group(2)
    bad = ["%s: man %s, etc %s" % (k, v, etc.get(k)) for k, v in man.items()
           if k in etc and etc[k] != v]
    return man, bad


def main():
    t = clfdtest.Tap()
    man, bad = default_mismatches()
    t.ok(len(man) >= 12 and not bad and man.get("task_timeout") == "3600",
         "clfd.conf(5) and etc/clfd.conf give the same defaults "
         "(%d compared; task_timeout an hour)" % len(man), "\n".join(bad))
    if shutil.which("mandoc") is None:
        t.skip("man pages", "mandoc not installed")
        return t.done()
    renderers = [["mandoc", "-T", "ascii"]]
    if shutil.which("groff"):
        renderers.append(["groff", "-mandoc", "-Tascii"])
    for page in PAGES:
        for r in renderers:
            bad = quote_problems(render(r, page))
            t.ok(not bad, "%s: %s: every quote pairs up" % (r[0], page), "\n".join(bad))
    p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"] +
                       [os.path.join(clfdtest.BUILDDIR, x) for x in PAGES],
                       capture_output=True, text=True)
    t.eq(p.stdout + p.stderr, "", "mandoc -T lint -W warning is clean")

    cmds = examples(render(["mandoc", "-T", "ascii"], "man/clfd.8"))
    t.ok(len(cmds) == 3 and all("socat" in c for c in cmds),
         "three socat examples in EXAMPLES", cmds)
    if shutil.which("socat") is None or shutil.which("jq") is None:
        t.skip("the socat examples run", "socat or jq not installed")
        return t.done()
    tmp = tempfile.mkdtemp(prefix="clfdtest-man-")
    d = None
    try:
        logs = os.path.join(tmp, "logs")
        os.mkdir(logs)
        with open(os.path.join(logs, "access.log"), "w") as f:
            f.write("\n".join(LOG_LINES) + "\n")
        d = clfdtest.Daemon(workers=1, tmp=tmp)
        outs = []
        for c in cmds:
            c = c.replace("/run/clfd/clfd.sock", d.sock)
            c = c.replace("/var/log/nginx/access.log*", os.path.join(logs, "access.log*"))
            p = subprocess.run(["sh", "-c", c], capture_output=True, text=True, timeout=60)
            outs.append(p)
            t.ok(p.returncode == 0 and p.stdout and not p.stderr,
                 "runs as printed: %s" % c.splitlines()[0], (c, p.stdout, p.stderr))
        ping = [json.loads(x) for x in outs[0].stdout.splitlines()]
        t.ok(len(ping) == 1 and ping[0].get("ok") and ping[0].get("pid") == d.pid,
             "ping example: one reply from our clfd", ping)
        sub = [json.loads(x) for x in outs[1].stdout.splitlines()]
        t.ok(len(sub) == 2 and sub[0].get("ok") and sub[0].get("files_total") == 1,
             "submit example: the request is one line, answered ok", sub)
        t.eq(sub[-1].get("counts") if sub else None, {"/a": 2, "/c": 1},
             "submit example: its 2xx filter and counts")
        w = json.loads(outs[2].stdout or "null")
        t.ok(isinstance(w, dict) and w.get("configured") == 1,
             "stats example: jq .workers", outs[2].stdout)
    except Exception as e:
        t.ok(False, "unexpected exception", repr(e) + "\n" +
             (d.log_text()[-2000:] if d else ""))
    finally:
        if d is not None:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
