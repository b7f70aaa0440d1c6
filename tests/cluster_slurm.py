#!/usr/bin/env python3
"""clfd-sbatch on a real, private, single-host Slurm cluster.

Brings one up inside the test's own temporary directory, in the
foreground and with no systemd: munged with a key made there, slurmctld -D
and slurmd -D from a generated slurm.conf (linuxproc process tracking, no
task plugin, no scheduling delay, state and spool dirs here, free ports),
ready when sinfo shows the node idle. Then `clfd-sbatch -n 4 --wait` on
generated and real logs gives the counts a daemon's submit gives, bit for
bit, with and without --under /book; a map task that fails (a damaged
gzip file in its chunk, a clfctl that exits non-zero) fails the run
clearly, with no result.json. Every daemon started is stopped by its pid.
Skips, saying why, when not root or when Slurm and munge are missing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clfctl_util import Tap, start_daemon, clfctl, clean_env, gen_logs, CLFCTL  # noqa: E402
from clfdtest import BUILDDIR, real_logs  # noqa: E402
from cluster_map import same_result  # noqa: E402

SBATCH = os.path.join(BUILDDIR, "contrib", "slurm", "clfd-sbatch")
PROGS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol",
         "squeue", "scancel")


def skip_all(why):
    print("1..0 # SKIP " + why)
    sys.stdout.flush()
    sys.exit(0)


def which(p):
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        f = os.path.join(d, p)
        if os.path.isfile(f) and os.access(f, os.X_OK):
            return f
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """munged, slurmctld and slurmd of our own, in dir."""

    def __init__(self, dir):
        self.dir = dir
        self.procs = []
        self.conf = os.path.join(dir, "slurm.conf")
        self.env = clean_env(SLURM_CONF=self.conf)
        self.logs = os.path.join(dir, "log")

    def start(self):
        d = self.dir
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(os.path.join(d, sub))
        # munged wants every directory above its socket searchable by all
        os.chmod(d, 0o711)
        os.chmod(os.path.join(d, "munge"), 0o711)
        key = os.path.join(d, "munge", "munge.key")
        subprocess.run([which("mungekey"), "-c", "-k", key], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(key, 0o600)
        self.munge_sock = os.path.join(d, "munge", "munge.sock")
        self.spawn("munged", [which("munged"), "--foreground", "--socket=" + self.munge_sock,
                              "--key-file=" + key,
                              "--log-file=" + os.path.join(self.logs, "munged.log"),
                              "--pid-file=" + os.path.join(d, "munge", "munged.pid"),
                              "--seed-file=" + os.path.join(d, "munge", "munged.seed")])
        self.wait(lambda: os.path.exists(self.munge_sock), 20, "munged's socket")
        self.node = socket.gethostname().split(".")[0]
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "ClusterName=clfdtest",
                "SlurmctldHost=%s(127.0.0.1)" % self.node,
                "SlurmUser=root", "SlurmdUser=root",
                "SlurmctldPort=%d" % free_port(), "SlurmdPort=%d" % free_port(),
                "AuthType=auth/munge", "CredType=cred/munge",
                "AuthInfo=socket=%s" % self.munge_sock,
                "StateSaveLocation=%s/state" % d, "SlurmdSpoolDir=%s/spool" % d,
                "SlurmctldPidFile=%s/slurmctld.pid" % d, "SlurmdPidFile=%s/slurmd.pid" % d,
                "SlurmctldLogFile=%s/slurmctld.log" % self.logs,
                "SlurmdLogFile=%s/slurmd.log" % self.logs,
                "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0",
                "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
                "MpiDefault=none", "ReturnToService=2", "MailProg=/bin/true",
                "MinJobAge=300",
                "NodeName=%s NodeAddr=127.0.0.1 CPUs=%d State=UNKNOWN" %
                (self.node, os.cpu_count() or 1),
                "PartitionName=clfd Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                ""]))
        t0 = time.monotonic()
        self.spawn("slurmctld", [which("slurmctld"), "-D", "-i", "-f", self.conf])
        self.spawn("slurmd", [which("slurmd"), "-D", "-N", self.node, "-f", self.conf])
        self.wait(self.idle, 60, "sinfo to show the node idle")
        return time.monotonic() - t0

    def spawn(self, name, argv):
        out = open(os.path.join(self.logs, name + ".out"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             env=self.env, cwd=self.dir)
        out.close()
        self.procs.append((name, p))

    def idle(self):
        r = subprocess.run([which("sinfo"), "-h", "-o", "%T"], capture_output=True,
                           text=True, env=self.env)
        return r.returncode == 0 and r.stdout.strip() == "idle"

    def wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError("%s exited with %d:\n%s" % (name, p.returncode,
                                                                   self.log_tail()))
            if time.monotonic() > deadline:
                raise TimeoutError("%s: not in %ds\n%s" % (what, timeout, self.log_tail()))
            time.sleep(0.02)

    def log_tail(self):
        out = []
        for f in sorted(os.listdir(self.logs)):
            with open(os.path.join(self.logs, f), errors="replace") as fh:
                out.append("== %s\n%s" % (f, "".join(fh.readlines()[-8:])))
        return "\n".join(out)

    def stop(self):
        """SIGTERM each daemon, last started first, by pid; SIGKILL if it
        does not go. True when all went on SIGTERM."""
        clean = True
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    clean = False
                    p.kill()
                    p.wait()
        self.procs = []
        return clean


def our_procs(marker):
    """Pids of processes whose command line names marker (our dir)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def main():
    if os.geteuid() != 0:
        skip_all("not root: slurmd and slurmctld run as root here")
    missing = [p for p in PROGS if which(p) is None]
    if missing:
        skip_all("not installed: %s (Debian: slurm-wlm munge)" % " ".join(missing))
    t = Tap()
    tmp = tempfile.mkdtemp(prefix="clfd-slurm-")
    os.chmod(tmp, 0o711)    # (munged: see Slurm.start)
    slurm = Slurm(os.path.join(tmp, "slurm"))
    d = None
    try:
        os.makedirs(slurm.dir)
        try:
            cold = slurm.start()
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as e:
            t.ok(False, "a private Slurm cluster comes up", str(e))
            return t
        t.ok(True, "a private Slurm cluster comes up (node idle in %.2f s)" % cold)
        t.diag("cluster cold start: %.2f s" % cold)

        data = os.path.join(tmp, "data")
        gen_logs(os.path.join(data, "gen"), 8, 4000, seed=21)
        os.makedirs(os.path.join(data, "real"))
        for f in real_logs():
            shutil.copy(f, os.path.join(data, "real", os.path.basename(f)))
        pats = [os.path.join(data, "gen", "*"), os.path.join(data, "real", "*")]
        os.makedirs(os.path.join(tmp, "clfd"))
        d = start_daemon(os.path.join(tmp, "clfd"))
        env = clean_env(SLURM_CONF=slurm.conf, CLFCTL=CLFCTL)

        def sbatch(args, out, e=env):
            t0 = time.monotonic()
            r = subprocess.run([SBATCH, "-n", "4", "--wait", "-O", out] + args,
                               capture_output=True, text=True, env=e, timeout=300)
            return r, time.monotonic() - t0

        for args, what in (([], "no filter"), (["--under", "/book"], "--under /book"),
                           (["--under", "/book", "-o", "compact"], "--under /book, -o compact")):
            os.makedirs(os.path.join(tmp, "submit"), exist_ok=True)
            want = clfctl(["submit", "-o", "compact", "--no-progress"] +
                          [a for a in args if a not in ("-o", "compact")] + pats, d.sock)
            out = os.path.join(tmp, "out-%s" % what.replace(" ", "").replace("/", "")
                               .replace(",", ""))
            r, secs = sbatch(args + pats, out)
            ids = r.stdout.split()
            t.ok(r.returncode == want.returncode and len(ids) == 4 and ids[0] == "map" and
                 ids[2] == "merge", "clfd-sbatch -n 4 --wait (%s): submit's exit status "
                 "(%d), the job ids printed" % (what, want.returncode),
                 r.stdout + r.stderr + slurm.log_tail())
            t.diag("4-task array + merge (%s): %.2f s" % (what, secs))
            got = ""
            if os.path.isfile(os.path.join(out, "result.json")):
                with open(os.path.join(out, "result.json")) as f:
                    got = f.read()
            t.ok(got != "", "a result.json (%s)" % what)
            try:
                g, w = json.loads(got), json.loads(want.stdout)
            except ValueError:
                g, w = {}, {}
            t.ok(w.get("counts") and
                 json.dumps(g.get("counts")) == json.dumps(w.get("counts")),
                 "counts equal submit's, bit for bit (%s)" % what,
                 "distinct %s / %s" % (g.get("totals", {}).get("distinct"),
                                       w.get("totals", {}).get("distinct")))
            same_result(t, json.dumps(g, separators=(",", ":")), want.stdout,
                        "result.json is submit's result (%s)" % what)
            parts = sorted(f for f in os.listdir(out) if f.endswith(".clfp"))
            t.eq(parts, ["part-%d.clfp" % i for i in range(4)],
                 "one partial per map task (%s)" % what)

        # a map task that fails: a damaged gzip file in its chunk
        bad = os.path.join(data, "bad")
        os.makedirs(bad)
        for i in range(3):
            shutil.copy(os.path.join(data, "real", sorted(os.listdir(
                os.path.join(data, "real")))[i]), os.path.join(bad, "ok%d.log" % i))
        with open(os.path.join(bad, "damaged.log.gz"), "wb") as f:
            f.write(b"\x1f\x8b\x08\x00" + os.urandom(4000))
        out = os.path.join(tmp, "out-damaged")
        r, secs = sbatch([os.path.join(bad, "*")], out)
        t.ok(r.returncode != 0 and "map task" in r.stderr and "FAILED" in r.stderr and
             "damaged.log.gz" in r.stderr and "did not run" in r.stderr and
             not os.path.exists(os.path.join(out, "result.json")),
             "a map task that fails (a damaged file): the run fails, the task and "
             "file named, no result.json", r.stdout + r.stderr)

        # a map task whose clfctl exits non-zero (killed, out of space...)
        wrap = os.path.join(tmp, "clfctl-failing")
        with open(wrap, "w") as f:
            f.write("#!/bin/sh\ncase \"$*\" in *chunk-2.list*) echo 'clfctl: no space "
                    "left on device' >&2; exit 3;; esac\nexec %s \"$@\"\n" % CLFCTL)
        os.chmod(wrap, 0o755)
        out = os.path.join(tmp, "out-exit3")
        r, secs = sbatch(pats, out, clean_env(SLURM_CONF=slurm.conf, CLFCTL=wrap))
        t.ok(r.returncode != 0 and "map task 2 ended FAILED" in r.stderr and
             "no space left" in r.stderr and
             not os.path.exists(os.path.join(out, "result.json")),
             "a chunk whose clfctl exits 3: the run fails, task 2 named, no result.json",
             r.stdout + r.stderr)

        # usage errors never reach Slurm
        r = subprocess.run([SBATCH, "-O", os.path.join(tmp, "out-none"),
                            os.path.join(data, "nothing-*")], capture_output=True, text=True,
                           env=env)
        t.ok(r.returncode == 5 and "no file matches" in r.stderr,
             "no file matches: exit 5 (as submit) before anything is submitted", r.stderr)
    finally:
        if d is not None:
            d.cleanup()
        clean = slurm.stop()
        t.ok(clean, "the Slurm daemons stop on SIGTERM")
        left = our_procs(slurm.dir)
        t.ok(left == [], "no process of the test's cluster left", str(left))
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


if __name__ == "__main__":
    main()
