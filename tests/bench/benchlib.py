#!/usr/bin/env python3
"""Helpers for tests/bench/replicate.sh: fast polling of a daemon's external
cache (so a 10k-flow run that converges in tens of milliseconds is timed to a
few milliseconds, not to the ~50 ms a hafwctl + parser round trip costs), and
rendering of the results file as a text table and a markdown table.

  benchlib.py count  hafw SOCKET | ctd CLIENT_CONF
  benchlib.py wait   hafw SOCKET | ctd CLIENT_CONF  TARGET TIMEOUT_S
      Poll until the peer's external cache holds exactly TARGET entries or
      TIMEOUT_S passed. Prints one line:
        converged|timeout EPOCH_SECONDS LAST_COUNT MAX_COUNT POLLS
  benchlib.py report RESULTS_FILE TEXT_OUT MARKDOWN_OUT

Only the standard library is used.
"""
import json
import re
import socket
import subprocess
import sys
import time


def hafw_external(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(sock_path)
        s.sendall(b'{"cmd":"status"}\n')
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    j = json.loads(b"".join(chunks))
    return sum(p["flows"] for p in j.get("peers", []))


CTD_RE = re.compile(r"cache external:\s*\ncurrent active connections:\s*(\d+)")


def ctd_external(conf):
    r = subprocess.run(["conntrackd", "-C", conf, "-s"], capture_output=True, text=True,
                       timeout=10)
    m = CTD_RE.search(r.stdout)
    if not m:
        raise RuntimeError("conntrackd -s: no external cache line (rc %d): %s"
                           % (r.returncode, (r.stderr or r.stdout)[:200]))
    return int(m.group(1))


def counter(kind, arg):
    if kind == "hafw":
        return lambda: hafw_external(arg), 0.005
    if kind == "ctd":
        return lambda: ctd_external(arg), 0.01
    raise SystemExit("unknown daemon kind %r" % kind)


def cmd_count(kind, arg):
    f, _ = counter(kind, arg)
    print(f())


def cmd_wait(kind, arg, target, timeout):
    f, interval = counter(kind, arg)
    target = int(target)
    deadline = time.time() + float(timeout)
    last = maxc = -1
    polls = 0
    # bounded: at most timeout / interval polls (plus the slack of slow answers)
    while True:
        try:
            last = f()
        except Exception as e:  # daemon busy or restarting: keep polling
            print("poll error: %s" % e, file=sys.stderr)
            last = -1
        now = time.time()
        polls += 1
        maxc = max(maxc, last)
        if last == target:
            print("converged %.6f %d %d %d" % (now, last, maxc, polls))
            return
        if now >= deadline:
            print("timeout %.6f %d %d %d" % (now, last, maxc, polls))
            return
        time.sleep(interval)


# ---- report ----

def load(path):
    cases, kern, meta = [], [], {}
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
            if parts[0] == "case":
                e, w = num(kv.get("commit_expected")), num(kv.get("commit_wall"))
                if e is not None and w:
                    kv["commit_wall_rate"] = "%.4f" % (e / w)
                cases.append(kv)
            elif parts[0] == "kernel":
                kern.append(kv)
            elif parts[0] == "meta" and len(parts) >= 2:
                meta[parts[1]] = " ".join(parts[2:])
    return cases, kern, meta


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def median(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    m = len(vals) // 2
    return vals[m] if len(vals) % 2 else (vals[m - 1] + vals[m]) / 2


class Agg:
    """The repetitions of one (daemon, flows) case."""

    def __init__(self, reps):
        self.reps = reps
        self.n = int(reps[0]["n"])
        self.conv = [r for r in reps if r.get("repl_status") == "converged"]

    def med(self, key, reps=None):
        return median(num(r.get(key)) for r in (self.reps if reps is None else reps))

    def rng(self, key, reps=None):
        v = [num(r.get(key)) for r in (self.reps if reps is None else reps)]
        v = [x for x in v if x is not None]
        return (min(v), max(v)) if v else (None, None)

    def all_conv(self):
        return len(self.conv) == len(self.reps)

    def repl_rate(self):
        """median over the converged repetitions (None if none converged)"""
        return self.med("repl_rate", self.conv) if self.conv else None

    def commit_rate(self, wall=False):
        return self.med("commit_wall_rate" if wall else "commit_rate")

    def sum_lost(self, key):
        a = b = 0
        for r in self.reps:
            x, _, y = r.get(key, "0/0").partition("/")
            a += int(num(x) or 0)
            b += int(num(y) or 0)
        return "%d/%d" % (a, b)


def fnum(v, digits=0):
    x = num(v)
    if x is None:
        return "-"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{d}f}".format(x, d=digits)


def ratio(a, b):
    a, b = num(a), num(b)
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fr(x, digits=2, partial=False):
    return "-" if x is None else ("%.*fx%s" % (digits, x, "*" if partial else ""))


DNAME = {"hafw": "hafw-syncd", "ctd-default": "conntrackd, 2 MB netlink buf",
         "ctd-tuned": "conntrackd, 32 MB netlink buf"}
DORDER = {"hafw": 0, "ctd-default": 1, "ctd-tuned": 2}


def group(cases):
    g = {}
    for c in cases:
        g.setdefault((c["daemon"], int(c["n"])), []).append(c)
    return {k: Agg(v) for k, v in g.items()}


def case_rows(aggs):
    rows = []
    for (d, n), a in sorted(aggs.items(), key=lambda kv: (kv[0][1], DORDER.get(kv[0][0], 9))):
        reps = len(a.reps)
        repl_t = repl_r = "-"
        if a.conv:
            lo, hi = a.rng("repl_rate", a.conv)
            repl_t = fnum(a.med("repl_s", a.conv), 3)
            repl_r = "%s (%s-%s)" % (fnum(a.med("repl_rate", a.conv)), fnum(lo), fnum(hi))
        if not a.all_conv():
            nc = [r for r in a.reps if r.get("repl_status") != "converged"]
            held = min(int(num(r.get("repl_held")) or 0) for r in nc)
            repl_r += "; %d of %d runs did not converge in %s s (held %s of %s)" % (
                len(nc), reps, fnum(max(num(r.get("repl_s")) or 0 for r in nc), 0),
                fnum(held), fnum(n))
        lag = a.med("lag_s", a.conv)
        commit = "%s / %s" % (fnum(a.med("commit_s"), 3), fnum(a.med("commit_wall"), 3))
        commit_r = "%s / %s" % (fnum(a.commit_rate()), fnum(a.commit_rate(True)))
        bad = [r for r in a.reps if r.get("commit_kernel") != r.get("commit_expected")]
        if bad:
            commit_r += " (B kernel %s of %s)" % (bad[0].get("commit_kernel"),
                                                  bad[0].get("commit_expected"))
        fl = [r for r in a.reps if r.get("flush_status") == "converged"]
        if len(fl) == reps:
            flush = fnum(a.med("flush_s"), 3)
        else:
            flush = "%s (%d of %d runs did not converge in %s s)" % (
                fnum(a.med("flush_s", fl), 3) if fl else "-", reps - len(fl), reps,
                fnum(max(num(r.get("flush_s")) or 0 for r in a.reps), 0))
        cl = [r for r in a.reps if "commit_lost" in r]
        commit_lost = "-"
        if cl:
            commit_lost = "%d of %d (commit %s s)" % (
                sum(int(num(r["commit_lost"]) or 0) for r in cl),
                sum(int(num(r.get("commit_stream")) or 0) for r in cl),
                fnum(a.med("commit_load_s"), 3))
        rows.append([fnum(n), DNAME.get(d, d), repl_t, repl_r, fnum(a.med("gen_rate")),
                     "-" if lag is None else fnum(lag * 1000, 0), commit, commit_r, flush,
                     fnum(a.med("wire_bpf"), 1), fnum(a.med("rss_bpf"), 0),
                     fnum(a.med("cpu_a_100k"), 2), fnum(a.med("cpu_b_100k"), 2),
                     a.sum_lost("lost") + " / " + a.sum_lost("lost_flush"), commit_lost])
    return rows


CASE_HDR = ["flows", "daemon", "replication s", "replication /s (min-max)",
            "gen /s meanwhile", "lag after gen ms", "commit s: daemon / client",
            "commit /s: daemon / client",
            "conntrack -F reaches peer s", "sync-link B/flow", "peer RSS B/flow",
            "CPU s/100k NEW (A)", "CPU s/100k NEW (B)", "lost/overruns create / flush",
            "streaming peer's datagrams lost during a 2nd commit on B (its time)"]


def kern_agg(kern):
    g = {}
    for k in kern:
        g.setdefault(int(k["n"]), []).append(k)
    out = {}
    for n, ks in g.items():
        out[n] = {"listener_rate": median(num(k.get("listener_rate")) for k in ks),
                  "gen_alone": median(num(k.get("gen_alone")) for k in ks),
                  "gen_listen": median(num(k.get("gen_listen")) for k in ks),
                  "events": "/".join(k.get("listener_events", "-") for k in ks),
                  "overruns": sum(int(num(k.get("listener_overruns")) or 0) for k in ks),
                  "reps": len(ks),
                  "range": (min(num(k.get("listener_rate")) or 0 for k in ks),
                            max(num(k.get("listener_rate")) or 0 for k in ks))}
    return out


def ratio_rows(aggs, kern):
    rows = []
    for n in sorted({n for _, n in aggs}):
        h, t, d = aggs.get(("hafw", n)), aggs.get(("ctd-tuned", n)), aggs.get(("ctd-default", n))
        k = kern.get(n, {})
        part = lambda *xs: any(x and not x.all_conv() for x in xs)
        cr = lambda x, y: "%s / %s" % (fr(ratio(x and x.commit_rate(), y and y.commit_rate())),
                                       fr(ratio(x and x.commit_rate(True),
                                                y and y.commit_rate(True))))
        rows.append([fnum(n),
                     fr(ratio(h and h.repl_rate(), t and t.repl_rate()), 2, part(h, t)),
                     cr(h, t),
                     fr(ratio(h and h.repl_rate(), k.get("listener_rate")), 2, part(h)),
                     fr(ratio(h and h.repl_rate(), d and d.repl_rate()), 2, part(h, d)),
                     cr(h, d)])
    return rows


RATIO_HDR = ["flows", "replication: hafw / conntrackd tuned",
             "commit: hafw / conntrackd tuned (daemon / client)",
             "replication: hafw / counting listener", "replication: hafw / conntrackd 2 MB",
             "commit: hafw / conntrackd 2 MB (daemon / client)"]


def kern_rows(kern):
    rows = []
    for n in sorted(kern):
        k = kern[n]
        rows.append([fnum(n), fnum(k["gen_alone"]), fnum(k["gen_listen"]),
                     "%s (%s-%s)" % (fnum(k["listener_rate"]), fnum(k["range"][0]),
                                     fnum(k["range"][1])),
                     k["events"], str(k["overruns"])])
    return rows


KERN_HDR = ["flows", "create /s, no listener", "create /s, 1 listener",
            "listener NEW events /s (min-max)", "events counted", "listener overruns"]


def targets(aggs, kern):
    out = []
    ns = sorted({n for _, n in aggs})
    for n in ns:
        h, t, k = aggs.get(("hafw", n)), aggs.get(("ctd-tuned", n)), kern.get(n, {})
        if not h:
            continue
        rl = ratio(h.repl_rate(), k.get("listener_rate"))
        rc = ratio(h.repl_rate(), t and t.repl_rate())
        lost = h.sum_lost("lost")
        ok = rl is not None and rl >= 0.75 and lost == "0/0" and h.all_conv()
        conv = "" if h.all_conv() else "; %d of %d runs never converged" % (
            len(h.reps) - len(h.conv), len(h.reps))
        out.append(("%s flows: replication >= 75%% of the counting listener, no event lost"
                    % fnum(n), ok, "%s of the listener (%s conntrackd tuned); lost "
                    "datagrams/netlink overruns %s%s" % (fr(rl), fr(rc), lost, conv)))
        for wall, what in ((False, "time the daemon reports"), (True, "time the client waits")):
            cc = ratio(h.commit_rate(wall), t and t.commit_rate(wall))
            out.append(("%s flows: commit >= 2.5x conntrackd (%s)" % (fnum(n), what),
                        cc is not None and cc >= 2.5, "%s (%s vs %s /s)"
                        % (fr(cc), fnum(h.commit_rate(wall)), fnum(t and t.commit_rate(wall)))))
        w = h.med("wire_bpf")
        out.append(("%s flows: < 60 sync-link bytes per flow" % fnum(n),
                    w is not None and w < 60,
                    "%s B (conntrackd tuned %s B)" % (fnum(w, 1), fnum(t and t.med("wire_bpf"),
                                                                       1))))
        r = h.med("rss_bpf")
        out.append(("%s flows: < 200 B peer RSS per cached flow" % fnum(n),
                    r is not None and r < 200,
                    "%s B (conntrackd tuned %s B)" % (fnum(r), fnum(t and t.med("rss_bpf")))))
    if len(ns) >= 2 and aggs.get(("hafw", ns[0])) and aggs.get(("hafw", ns[-1])):
        lo, hi = aggs[("hafw", ns[0])], aggs[("hafw", ns[-1])]
        c0, c1 = lo.med("commit_us_per_flow"), hi.med("commit_us_per_flow")
        rr = ratio(c1, c0)
        w0, w1 = lo.commit_rate(True), hi.commit_rate(True)
        rw = ratio(w0, w1)
        out.append(("commit cost per flow at %s within 1.3x of %s" % (fnum(ns[-1]),
                                                                      fnum(ns[0])),
                    rr is not None and rr <= 1.3,
                    "%s (%s us vs %s us per flow, daemon time); client time: %s"
                    % (fr(rr), fnum(c1, 2), fnum(c0, 2), fr(rw))))
    return out


def text_table(hdr, rows):
    w = [max(len(str(x)) for x in col) for col in zip(hdr, *rows)]
    return "\n".join(["  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)).rstrip()
                      for r in [hdr, ["-" * x for x in w]] + rows])


def md_table(hdr, rows, right_from=0):
    out = ["| " + " | ".join(hdr) + " |",
           "|" + "|".join("---" if i < right_from else "---:" for i in range(len(hdr))) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def cmd_report(path, text_out, md_out):
    cases, kern, meta = load(path)
    aggs, kg = group(cases), kern_agg(kern)
    cr, rr, kr = case_rows(aggs), ratio_rows(aggs, kg), kern_rows(kg)
    tg_rows = [[("met" if ok else "NOT met"), what, detail] for what, ok, detail in targets(aggs,
                                                                                          kg)]
    reps = max([len(a.reps) for a in aggs.values()] + [0])
    idle = [num(c.get("idle")) for c in cases + kern if num(c.get("idle")) is not None]
    head = ("Command: %s; %s, kernel %s, %s vCPUs; %s; %s; hafw %s; medians of %d runs"
            % (meta.get("cmd", "?"), meta.get("host", "?"), meta.get("kernel", "?"),
               meta.get("cpus", "?"), meta.get("conntrackd", "?"), meta.get("when", "?"),
               meta.get("hafw", "?"), reps))
    if meta.get("commit"):
        head += "; " + meta["commit"]
    if idle:
        head += ("; machine idle before a case: median %d%%, lowest %d%%"
                 % (median(idle), min(idle)))
    if any(not a.all_conv() for a in aggs.values()):
        head += ("; * = ratio over the runs that converged only")
    text = [head, "", text_table(CASE_HDR, cr), "", "Ratios (medians)",
            text_table(RATIO_HDR, rr), "", "Kernel limits (same run)",
            text_table(KERN_HDR, kr), "", "Targets",
            text_table(["", "target", "measured"], tg_rows), ""]
    md = [head.replace("Command: %s" % meta.get("cmd", "?"),
                       "Command: `%s`" % meta.get("cmd", "?")), "",
          "**Per daemon** (medians; lost/overruns are sums over the runs)", "",
          md_table(CASE_HDR, cr, 2), "", "**Ratios** (medians)", "", md_table(RATIO_HDR, rr, 1),
          "", "**Kernel limits** (same run, no daemon)", "", md_table(KERN_HDR, kr, 1), "",
          "**Targets**", "", md_table(["", "target", "measured"], tg_rows, 3), ""]
    with open(text_out, "w") as fh:
        fh.write("\n".join(text))
    with open(md_out, "w") as fh:
        fh.write("\n".join(md))


def main(argv):
    if len(argv) >= 3 and argv[0] == "count":
        return cmd_count(argv[1], argv[2])
    if len(argv) == 5 and argv[0] == "wait":
        return cmd_wait(*argv[1:])
    if len(argv) == 4 and argv[0] == "report":
        return cmd_report(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
