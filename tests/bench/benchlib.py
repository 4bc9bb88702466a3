#!/usr/bin/env python3
"""Helpers for tests/bench/replicate.sh and reliability.sh: fast polling of
a daemon's external cache (so a 10k-flow run that converges in tens of milliseconds is timed to a
few milliseconds, not to the ~50 ms a hafwctl + parser round trip costs), and
rendering of the results file as a text table and a markdown table.

  benchlib.py count  hafw SOCKET | ctd CLIENT_CONF
  benchlib.py wait   hafw SOCKET | ctd CLIENT_CONF  TARGET TIMEOUT_S
      Poll until the peer's external cache holds exactly TARGET entries or
      TIMEOUT_S passed. Prints one line:
        converged|timeout EPOCH_SECONDS LAST_COUNT MAX_COUNT POLLS FIRST
      FIRST: when the count was first above 0 (EPOCH_SECONDS), -1 never
  benchlib.py report RESULTS_FILE TEXT_OUT MARKDOWN_OUT
      replicate.sh's tables
  benchlib.py relreport RESULTS_FILE TEXT_OUT MARKDOWN_OUT
      reliability.sh's tables

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
    first = -1.0
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
        if first < 0 and last > 0:
            first = now
        if last == target:
            print("converged %.6f %d %d %d %.6f" % (now, last, maxc, polls, first))
            return
        if now >= deadline:
            print("timeout %.6f %d %d %d %.6f" % (now, last, maxc, polls, first))
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


def md_table(hdr, rows, right_from=0, right=None):
    """right_from: columns from this one on are right-aligned; right: or
    exactly these"""
    al = (lambda i: i in right) if right is not None else (lambda i: i >= right_from)
    out = ["| " + " | ".join(hdr) + " |",
           "|" + "|".join("---:" if al(i) else "---" for i in range(len(hdr))) + "|"]
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


# ---- reliability.sh report ----

def load_rel(path):
    recs, meta = {"rel": [], "idle": [], "bulk": []}, {}
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "meta" and len(parts) >= 2:
                meta[parts[1]] = " ".join(parts[2:])
            elif parts[0] in recs:
                recs[parts[0]].append(dict(p.split("=", 1) for p in parts[1:] if "=" in p))
    return recs, meta


RNAME = {"hafw": "hafw-syncd", "ctd": "conntrackd FTFW"}


def rel_exact(r):
    """B holds A's every flow at the end (A only ever holds the N generated
    flows, created once, so the count says it) and, for hafw, B's digest
    check agrees"""
    if r.get("status") != "converged" or r.get("short") != "0":
        return False
    return r.get("daemon") != "hafw" or r.get("b_digest_match") == "true"


def rel_repair(r):
    g = lambda k: r.get(k, "-")
    if r.get("daemon") == "hafw":
        out = "NACKs %s (%s ranges, %s on ctl), retx %s, ring misses %s" % (
            g("b_nacks_sent"), g("b_nack_ranges"), g("b_nacks_sent_control"), g("a_retransmits"),
            g("a_ring_misses"))
        extra = []
        for k, what in (("b_resyncs_loss", "resyncs (loss)"), ("b_resyncs_digest",
                                                                 "resyncs (digest)"),
                        ("a_dumps", "dumps on A"), ("a_announces", "announces"),
                        ("a_bulks_sent", "bulks"), ("b_window_resets", "window resets")):
            if num(r.get(k)):
                extra.append("%s %s" % (what, g(k)))
        if r.get("b_digest_match") not in (None, "true"):
            extra.append("digest mismatch")
        if r.get("b_synced") == "false" or r.get("b_resync_pending") == "true":
            extra.append("B not synced at the end (resync pending %s, %s seq missing)"
                         % (g("b_resync_pending"), g("b_missing")))
        elif r.get("b_missing") not in (None, "0"):
            extra.append("%s seq missing" % g("b_missing"))
        return out + ("; " + ", ".join(extra) if extra else "")
    return "lost msgs seen by B %s, by A %s" % (g("b_lost_msgs"), g("a_lost_msgs"))


def fsec(v):
    x = num(v)
    return "-" if x is None else "%.3f" % x


def rel_runs_rows(rel):
    rows = []
    key = lambda r: (int(r["loss"]), DORD.get(r["daemon"], 9), int(r["run"]))
    for r in sorted(rel, key=key):
        ok = r.get("status") == "converged"
        res = ("exact" if rel_exact(r) else "converged, not exact") if ok else "NOT converged"
        rows.append(["%s%%" % r["loss"], RNAME.get(r["daemon"], r["daemon"]), r["run"], res,
                     fsec(r.get("t")), r.get("short", "-"), fnum(r.get("wire_bpf"), 1),
                     "%s / %s" % (r.get("drop_a", "-"), r.get("drop_b", "-")), rel_repair(r)])
    return rows


REL_RUNS_HDR = ["loss", "daemon", "run", "result", "time s", "flows short", "sync-link B/flow",
                "dropped at A / B (pkts)", "repair"]
DORD = {"hafw": 0, "ctd": 1}


def rel_groups(rel):
    g = {}
    for r in rel:
        g.setdefault((int(r["loss"]), r["daemon"]), []).append(r)
    return g


def rel_sum_rows(g):
    rows = []
    for (loss, d), rs in sorted(g.items(), key=lambda kv: (kv[0][0], DORD.get(kv[0][1], 9))):
        conv = [r for r in rs if r.get("status") == "converged"]
        ts = [num(r.get("t")) for r in conv]
        t = median(ts)
        shorts = [int(num(r.get("short")) or 0) for r in rs if r.get("status") != "converged"]
        synced = "-"
        if d == "hafw":
            synced = "%d of %d" % (sum(1 for r in rs if hafw_synced(r)), len(rs))
        rows.append(["%d%%" % loss, RNAME.get(d, d),
                     "%d of %d" % (sum(1 for r in rs if rel_exact(r)), len(rs)), synced,
                     "%d of %d" % (len(conv), len(rs)),
                     "-" if t is None else "%.3f (%.3f-%.3f)" % (t, min(ts), max(ts)),
                     ", ".join(str(x) for x in shorts) or "-",
                     fnum(median(num(r.get("wire_bpf")) for r in conv), 1),
                     fnum(median(num(r.get("wire_bpf")) for r in rs), 1)])
    return rows


def hafw_synced(r):
    """hafw's own view at the end: B synced with A, no resync pending"""
    return r.get("b_synced") == "true" and r.get("b_resync_pending") == "false"


REL_SUM_HDR = ["loss", "daemon", "exact", "hafw: B synced at the end", "converged", "time s, median (min-max) of converged",
               "flows short in the runs that did not converge", "B/flow (converged runs)",
               "B/flow (all runs)"]


def rel_ratio_rows(g):
    rows = []
    for loss in sorted({l for l, _ in g}):
        h, c = g.get((loss, "hafw"), []), g.get((loss, "ctd"), [])
        tc = lambda rs: median(num(r.get("t")) for r in rs if r.get("status") == "converged")
        wb = lambda rs: median(num(r.get("wire_bpf")) for r in rs)
        part = any(r.get("status") != "converged" for r in h + c)
        rows.append(["%d%%" % loss, fr(ratio(tc(c), tc(h)), 2, part), fr(ratio(wb(h), wb(c)), 2)])
    return rows


REL_RATIO_HDR = ["loss", "convergence time: conntrackd / hafw (medians)",
                 "sync-link bytes: hafw / conntrackd (medians)"]


def idle_rows(idle):
    rows = []
    for r in sorted(idle, key=lambda r: (DORD.get(r["daemon"], 9), int(r["run"]))):
        rows.append([RNAME.get(r["daemon"], r["daemon"]), r["run"], fnum(r.get("bytes_s"), 1),
                     fnum(r.get("cpu_a_pct"), 2), fnum(r.get("cpu_b_pct"), 2)])
    return rows


IDLE_HDR = ["daemon", "run", "sync-link B/s (both directions)", "CPU % A", "CPU % B"]


def bulk_rows(bulk, n):
    rows = []
    for r in sorted(bulk, key=lambda r: (DORD.get(r["daemon"], 9), int(r["run"]))):
        ok = r.get("status") == "converged"
        rate = lambda k: fnum(n / num(r.get(k))) if ok and num(r.get(k)) else "-"
        rows.append([RNAME.get(r["daemon"], r["daemon"]), r["run"],
                     "yes" if ok else "NO (held %s)" % r.get("held"),
                     fsec(r.get("total_s")), rate("total_s"), fsec(r.get("up_s")),
                     fsec(r.get("upall_s")), rate("upall_s")]
                    # conntrackd answers `-s` between its bursts only: the
                    # first poll that sees a flow sees (nearly) all
                    + (["-", "-", "-"] if r["daemon"] == "ctd" else
                       [fsec(r.get("first_s")), fsec(r.get("xfer_s")), rate("xfer_s")]))
    return rows


BULK_HDR = ["daemon", "run", "complete", "restart to all s", "flows/s", "restart to up s",
            "up to all s", "flows/s", "restart to first flow s", "first flow to all s",
            "flows/s"]


def bulk_med(bulk, d, key, n):
    rs = [r for r in bulk if r["daemon"] == d and r.get("status") == "converged"]
    t = median(num(r.get(key)) for r in rs)
    return None if not t else n / t


def cmd_relreport(path, text_out, md_out):
    recs, meta = load_rel(path)
    rel, idle, bulk = recs["rel"], recs["idle"], recs["bulk"]
    n = int(meta.get("n", "100000"))
    g = rel_groups(rel)
    head = ("Command: %s; %s, kernel %s, %s vCPUs; %s; %s; hafw %s; %s flows, %s runs per "
            "loss level and daemon, wait bound %s s; loss in hooks: %s; hafw control "
            "connection: %s" % (
                meta.get("cmd", "?"), meta.get("host", "?"), meta.get("kernel", "?"),
                meta.get("cpus", "?"), meta.get("conntrackd", "?"), meta.get("when", "?"),
                meta.get("hafw", "?"), fnum(n), meta.get("runs", "?"), meta.get("wait", "?"),
                meta.get("loss_hooks", "?"),
                "yes" if meta.get("control") == "1" else "no (not in this build)"))
    if meta.get("hafw_sync_opts"):
        head += "; hafw sync options: " + meta["hafw_sync_opts"]
    idl = [num(r.get("idle")) for r in rel if num(r.get("idle")) is not None]
    if idl:
        head += "; machine idle before a run: median %d%%, lowest %d%%" % (median(idl), min(idl))
    ir = []
    for d in ("hafw", "ctd"):
        rs = [r for r in idle if r["daemon"] == d]
        if rs:
            ir.append([RNAME[d], "median", fnum(median(num(r.get("bytes_s")) for r in rs), 1),
                       fnum(median(num(r.get("cpu_a_pct")) for r in rs), 2),
                       fnum(median(num(r.get("cpu_b_pct")) for r in rs), 2)])
    ratios = []
    hi = [num(r.get("bytes_s")) for r in idle if r["daemon"] == "hafw"]
    ci = [num(r.get("bytes_s")) for r in idle if r["daemon"] == "ctd"]
    if hi and ci:
        ratios.append(["idle sync-link bytes/s: hafw / conntrackd",
                       fr(ratio(median(hi), median(ci)))])
    for key, what in (("total_s", "restart to all"), ("upall_s", "daemon up to all")):
        h, c = bulk_med(bulk, "hafw", key, n), bulk_med(bulk, "ctd", key, n)
        if h or c:
            ratios.append(["bulk resync flows/s (%s): hafw / conntrackd" % what,
                           "%s (%s vs %s /s)" % (fr(ratio(h, c)), fnum(h), fnum(c))])
    # targets (hafw)
    tg = []
    hb = [r for r in bulk if r["daemon"] == "hafw"]
    if hb:
        for key, what in (("upall_s", "daemon up to all"), ("total_s", "restart to all")):
            rates = [n / num(r[key]) if r.get("status") == "converged" and num(r.get(key))
                     else 0 for r in hb]
            tg.append(["met" if min(rates) >= 300000 else "NOT met",
                       "bulk resync >= 300k flows/s in every run (%s)" % what,
                       ", ".join(fnum(x) for x in rates)])
    h30 = g.get((30, "hafw"), [])
    if h30:
        ts = [num(r.get("t")) if r.get("status") == "converged" else None for r in h30]
        tg.append(["met" if all(t is not None and t <= 2 for t in ts) else "NOT met",
                   "%s flows at 30%% loss within 2 s in every run" % fnum(n),
                   ", ".join("-" if t is None else "%.3f" % t for t in ts)])
    for loss in (10, 30):
        rs = g.get((loss, "hafw"), [])
        if rs:
            k = sum(1 for r in rs if rel_exact(r))
            ks = sum(1 for r in rs if hafw_synced(r))
            tg.append(["met" if k == len(rs) else "NOT met",
                       "exact in every run at %d%% loss" % loss,
                       "%d of %d; hafw itself reports B synced in %d of %d" % (k, len(rs), ks,
                                                                               len(rs))])
    if hi:
        tg.append(["met" if max(hi) < 1000 else "NOT met",
                   "idle < 1 kB/s on the link for %s flows" % fnum(n),
                   ", ".join(fnum(x, 1) for x in hi) + " B/s"])
    sr, rr, rn = rel_sum_rows(g), rel_ratio_rows(g), rel_runs_rows(rel)
    idr, br = idle_rows(idle) + ir, bulk_rows(bulk, n)
    text = [head, "", "Convergence of %s flows under loss" % fnum(n),
            text_table(REL_SUM_HDR, sr), "", "Ratios", text_table(REL_RATIO_HDR, rr), "",
            "Every run", text_table(REL_RUNS_HDR, rn), "", "Idle (%s s)" % meta.get("idle_s", "?"),
            text_table(IDLE_HDR, idr), "", "Bulk resync after kill -9 of B's daemon",
            text_table(BULK_HDR, br), "", text_table(["ratio", "value"], ratios), "",
            "Targets (hafw)", text_table(["", "target", "measured"], tg), ""]
    md = [head.replace("Command: %s" % meta.get("cmd", "?"),
                       "Command: `%s`" % meta.get("cmd", "?")), "",
          "**Convergence of %s flows under loss** (exact: B holds A's every flow at the end "
          "and, for hafw, B's digest check agrees)" % fnum(n), "",
          md_table(REL_SUM_HDR, sr, 2), "", "**Ratios**", "", md_table(REL_RATIO_HDR, rr, 1), "",
          "**Every run**", "", md_table(REL_RUNS_HDR, rn, right={2, 4, 5, 6, 7}), "",
          "**Idle** (%s s, %s replicated flows)" % (meta.get("idle_s", "?"), fnum(n)), "",
          md_table(IDLE_HDR, idr, 2), "", "**Bulk resync after kill -9 of B's daemon**", "",
          md_table(BULK_HDR, br, 3), "", md_table(["ratio", "value"], ratios, 2), "",
          "**Targets** (hafw)", "", md_table(["", "target", "measured"], tg, 3), ""]
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
    if len(argv) == 4 and argv[0] == "relreport":
        return cmd_relreport(*argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
