"""Forked-call benchmark (issue 3): every call rings two devices of an account; one answers,
the other rings and is cancelled; the caller ACKs, pauses 200 ms and hangs up.

Two SIPp UAS processes stand for all devices: every account's first device is registered
with the "answer" UAS's socket as contact, its second device with the "cancelled" UAS's.
The same scenario optionally runs against a minimal Kamailio (registrar + usrloc in memory +
tm parallel forking, no auth) as a reference. Depends on benchlib and bench_register.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_register import SATURATED_PCT, Step, best_rate, finish_profile, row_text, run_step, start_profile
from benchlib import (
    LOOPBACK,
    SERVER_CORE,
    Dev,
    OneNumberServer,
    _sipp_safe,
    auth_keyword,
    free_port,
    options_ping,
    provision,
    register_rows,
    run_sipp,
    start_sipp_uas,
    stop_pid,
    wait_workers,
    workers_args,
    write_csv,
)

KAMAILIO_MODULES = ("tm", "sl", "rr", "maxfwd", "usrloc", "registrar", "textops", "siputils", "pv")
KAMAILIO_AUTH_MODULES = ("db_text", "auth", "auth_db")


def run_calls(
    workdir: Path, *, accounts: int, rates: list[float], seconds: float, kamailio: bool,
    profile_rate: float | None = None, workers: int = 0,
) -> dict:
    accounts = max(accounts, 2)
    out: dict = {"runs": {}}
    out["runs"]["OneNumber"] = _run_onenumber(workdir / "onenumber", accounts, rates, seconds, profile_rate)
    if workers > 1:  # the same run with N worker processes sharing Redis (its CPU counted too)
        name = f"OneNumber {workers} workers+Redis"
        out["runs"][name] = _run_onenumber(workdir / "onenumber-workers", accounts, rates, seconds, None,
                                           workers=workers)
        one, many = out["runs"]["OneNumber"].get("best"), out["runs"][name].get("best")
        if one and many and one.get("server_cpu_us_per_call") and many.get("server_cpu_us_per_call"):
            out["ratio_workers"] = (
                f"{name}: CPU per call {many['server_cpu_us_per_call']} µs (workers + supervisor + Redis) vs "
                f"{one['server_cpu_us_per_call']} µs with 1 worker in memory "
                f"(×{many['server_cpu_us_per_call'] / one['server_cpu_us_per_call']:.2f}) at their best steps")
    if not kamailio:
        out["kamailio_skipped"] = "--no-kamailio"
    elif shutil.which("kamailio") is None:
        out["kamailio_skipped"] = "kamailio is not installed"
    else:
        out["runs"]["Kamailio"] = _run_kamailio(workdir / "kamailio", accounts, rates, seconds)
        # the same work as OneNumber: REGISTER and INVITE authenticated with digest (auth_db over db_text)
        out["runs"]["Kamailio+auth"] = _run_kamailio(workdir / "kamailio-auth", accounts, rates, seconds,
                                                     auth=True)
        one = out["runs"]["OneNumber"].get("best")
        for name, key in (("Kamailio", "ratio"), ("Kamailio+auth", "ratio_auth")):
            kam = out["runs"][name].get("best")
            if one and kam:
                out[key] = (
                    f"{name}: highest clean rate {kam['attempted_per_s']:.0f}/s vs {one['attempted_per_s']:.0f}/s "
                    f"(×{kam['attempted_per_s'] / one['attempted_per_s']:.1f}); CPU per call "
                    f"{kam['server_cpu_us_per_call']} µs vs {one['server_cpu_us_per_call']} µs at their best steps"
                    + (f" (OneNumber ×{one['server_cpu_us_per_call'] / kam['server_cpu_us_per_call']:.1f})"
                       if kam.get("server_cpu_us_per_call") and one.get("server_cpu_us_per_call") else "")
                )
    return out


def _caller_rows(numbers: list[str], keyword: dict[str, str] | None) -> list[tuple[str, ...]]:
    """Account i is called by account i + N/2 (its first device's credentials)."""
    n = len(numbers)
    rows = []
    for i, callee in enumerate(numbers):
        caller = numbers[(i + n // 2) % n]
        rows.append((callee, caller, keyword[caller]) if keyword else (callee, caller))
    return rows


def _steps(
    pids_of: Callable[[], list[int]], scenario: str, inf: Path, rates: list[float], seconds: float,
    workdir: Path, sip_server: Any, label: str, profile: tuple[float, dict] | None = None,
) -> tuple[list[Step], list[dict]]:
    """Raise the call rate step by step until more than SATURATED_PCT % of the calls fail;
    with `profile` (rate, dict), py-spy records the server during that step into the dict."""
    steps: list[Step] = []
    rows = []
    caller_port = free_port()
    for rate in rates:
        prof = None
        if profile is not None and rate == profile[0]:
            prof = start_profile(sip_server.pid, workdir / "profile.txt", seconds)
        step = run_step(sip_server, scenario, inf, rate, seconds, workdir, caller_port, pids=pids_of())
        if prof is not None:
            profile[1].update(finish_profile(prof, workdir / "profile.txt"), rate=rate)
        steps.append(step)
        rows.append(step.row())
        print(f"  {label} calls {rate:>6.0f}/s: " + row_text(step.row()), flush=True)
        if step.result.failure_pct > SATURATED_PCT:
            break
    return steps, rows


def _run_onenumber(
    workdir: Path, accounts: int, rates: list[float], seconds: float, profile_rate: float | None,
    workers: int = 1,
) -> dict:
    extra, watch = workers_args(workers)
    server = OneNumberServer(workdir / "server", extra=extra)
    devs = provision(server.db, accounts, 2)
    numbers = sorted({d.account for d in devs})
    server.start()
    wait_workers(server, workers)
    port_a, port_b = free_port(), free_port()
    uas: list[subprocess.Popen] = []
    out: dict = {"note": "caller authenticated with digest (407), UDP"
                 + (f"; {workers} workers on the server's core, CPU of workers, supervisor and Redis"
                    if workers > 1 else ""), "steps": []}
    try:
        for pos, port in ((0, port_a), (1, port_b)):
            rows = [(d.account, d.auth_username, auth_keyword(d)) for d in devs if d.position == pos]
            # a worker still starting, or a server just started and still shedding (its loop ran
            # late while it started), refuses part of the first burst with 503
            reg = register_rows(server.sip_port, rows, db=server.db, workdir=workdir, local_port=port,
                                name=f"devices-{pos}")
            out.setdefault("registrations", []).append(reg.summary())
            if not reg.complete:
                out["error"] = f"device registrations: {reg.registered}/{len(rows)} ok; {reg.errors[:400]}"
                return out
        total = len(rates) * (seconds + 40) + 60
        uas = [start_sipp_uas("uas_answer.xml", port_a, workdir=workdir, timeout=total, remote_port=server.sip_port),
               start_sipp_uas("uas_cancelled.xml", port_b, workdir=workdir, timeout=total,
                              remote_port=server.sip_port)]
        time.sleep(0.5)
        keyword = {d.account: auth_keyword(d) for d in devs if d.position == 0}
        inf = write_csv(workdir / "calls.csv", _caller_rows(numbers, keyword))
        profile = None if profile_rate is None else (profile_rate, out.setdefault("profile", {}))
        steps, out["steps"] = _steps(lambda: watch(server), "call_uac_auth.xml", inf, rates,
                                     seconds, workdir, server, "OneNumber" if workers == 1 else f"{workers} workers",
                                     profile)
        best = best_rate(steps)
        out["best"] = best.row() if best else None
        if not any(s.result.successful for s in steps) and steps:
            out["error"] = steps[0].result.errors[:800]
    finally:
        for p in uas:
            stop_pid(p, 5)
        server.stop()
    return out


# ------------------------------------------------------------------------------------- Kamailio

KAMAILIO_CFG = """#!KAMAILIO
# Minimal reference: registrar + usrloc in memory + tm parallel forking; UDP only; with {auth_note}.
debug=0
log_stderror=yes
memdbg=5
memlog=5
children={children}
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:{port}
alias="127.0.0.1:{port}"
mpath="{mpath}"
{loads}
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_contacts", 10)
modparam("tm", "fr_inv_timer", 120000)
{auth_params}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{ {register_auth}save("location"); exit; }}
    if (is_method("INVITE")) {{ {invite_auth}record_route(); }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""


class Kamailio:
    """A Kamailio pinned to core 0; its CPU is the sum over its processes."""

    def __init__(self, workdir: Path, children: int = 2, subscribers: list[tuple[str, str]] | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.children = children
        self.subscribers = subscribers  # (auth username, password): digest auth on REGISTER and INVITE
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        """The main process and its children (workers, timers)."""
        found = [self.pid]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == self.pid:
                found.append(int(entry))
        return found

    def start(self) -> Kamailio:
        mpath = next((p for p in ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules",
                                  "/usr/lib64/kamailio/modules") if Path(p).is_dir()), "")
        modules = KAMAILIO_MODULES + (KAMAILIO_AUTH_MODULES if self.subscribers is not None else ())
        loads = "\n".join(f'loadmodule "{m}.so"' for m in modules)
        auth = {"auth_note": "no auth", "auth_params": "", "register_auth": "", "invite_auth": ""}
        if self.subscribers is not None:
            db = self._write_dbtext(self.subscribers)
            auth = {
                "auth_note": "digest auth on REGISTER and INVITE (auth_db over db_text, cached in memory)",
                "auth_params": f'modparam("auth_db", "db_url", "text://{db}")\n'
                               'modparam("auth_db", "calculate_ha1", no)\n'
                               'modparam("auth_db", "password_column", "ha1")\n'
                               'modparam("auth_db", "load_credentials", "")',
                "register_auth": 'if (!www_authenticate("$td", "subscriber")) {{ www_challenge("$td", "0"); exit; }} ',
                "invite_auth": 'if (!proxy_authenticate("$fd", "subscriber")) {{ proxy_challenge("$fd", "0"); exit; }} '
                               'consume_credentials(); ',
            }
            auth = {k: v.replace("{{", "{").replace("}}", "}") for k, v in auth.items()}
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.format(port=self.sip_port, mpath=mpath + "/", loads=loads,
                                           children=self.children, **auth))
        run = self.workdir / "run"
        run.mkdir(exist_ok=True)
        log = open(self.workdir / "kamailio.log", "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, "kamailio", "-f", str(cfg), "-DD", "-E", "-m", "512", "-M", "16",
             "-Y", str(run), "-P", str(run / "kamailio.pid")],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited: {(self.workdir / 'kamailio.log').read_text()[-800:]}")
            if options_ping(self.sip_port, 0.2) is not None:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("kamailio did not answer OPTIONS")

    def _write_dbtext(self, subscribers: list[tuple[str, str]]) -> Path:
        """A db_text database with the `subscriber` table (passwords and their HA1, as kamctl writes them)."""
        db = self.workdir / "dbtext"
        db.mkdir(exist_ok=True)
        (db / "version").write_text("id(int,auto) table_name(string) table_version(int) \n0:version:1\n"
                                    "0:subscriber:7\n")
        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        # realm = the From/To domain ($fd/$td): the loopback address the scenarios put there
        rows = [f"{i}:{user}:{LOOPBACK}:{password}:{md5(f'{user}:{LOOPBACK}:{password}')}:"
                f"{md5(f'{user}@{LOOPBACK}:{LOOPBACK}:{password}')}"
                for i, (user, password) in enumerate(subscribers, 1)]
        (db / "subscriber").write_text("id(int,auto) username(string) domain(string) password(string) "
                                       "ha1(string) ha1b(string) \n" + "\n".join(rows) + "\n")
        return db

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc, 10)
        self.proc = None


def _run_kamailio(workdir: Path, accounts: int, rates: list[float], seconds: float, *, auth: bool = False) -> dict:
    out: dict = {"note": ("digest auth on REGISTER and INVITE (auth_db over db_text)" if auth else "no auth")
                 + ", registrar + usrloc in memory + tm parallel forking, 2 UDP workers, all processes on core 0",
                 "steps": []}
    numbers = [str(200000 + i) for i in range(accounts)]
    devs = [Dev(n, pos, n if pos == 0 else f"{n}_{pos + 1}", _sipp_safe(lambda: secrets.token_urlsafe(12)))
            for n in numbers for pos in (0, 1)]
    kam = Kamailio(workdir, subscribers=[(d.auth_username, d.secret) for d in devs] if auth else None)
    uas: list[subprocess.Popen] = []
    try:
        kam.start()
        port_a, port_b = free_port(), free_port()
        for pos, port in ((0, port_a), (1, port_b)):
            mine = [d for d in devs if d.position == pos]
            rows = [(d.account, d.auth_username, auth_keyword(d)) if auth else (d.account, d.auth_username)
                    for d in mine]
            inf = write_csv(workdir / f"devices-{pos}.csv", rows)
            for _ in range(2):  # once more when a loaded machine lost a few (registering again is harmless)
                res = run_sipp("register.xml" if auth else "register_noauth.xml", kam.sip_port, workdir=workdir,
                               calls=len(rows), rate=500, inf=inf, timeout=len(rows) / 500 + 15, local_port=port)
                if res.successful == len(rows):
                    break
            if res.successful != len(rows):
                out["error"] = f"device registrations: {res.successful}/{len(rows)} ok; {res.errors[:400]}"
                return out
        total = len(rates) * (seconds + 40) + 60
        uas = [start_sipp_uas("uas_answer.xml", port_a, workdir=workdir, timeout=total, remote_port=kam.sip_port),
               start_sipp_uas("uas_cancelled.xml", port_b, workdir=workdir, timeout=total,
                              remote_port=kam.sip_port)]
        time.sleep(0.5)
        keyword = {d.account: auth_keyword(d) for d in devs if d.position == 0} if auth else None
        inf = write_csv(workdir / "calls.csv", _caller_rows(numbers, keyword))
        steps, out["steps"] = _steps(kam.pids, "call_uac_auth.xml" if auth else "call_uac.xml", inf, rates,
                                     seconds, workdir, kam, "Kamailio+auth" if auth else "Kamailio")
        best = best_rate(steps)
        out["best"] = best.row() if best else None
        if not any(s.result.successful for s in steps) and steps:
            out["error"] = steps[0].result.errors[:800]
    except RuntimeError as exc:
        out["error"] = str(exc)
    finally:
        for p in uas:
            stop_pid(p, 5)
        kam.stop()
    return out



def run_register_kamailio(workdir: Path, *, accounts: int, devices: int, rates: list[float], seconds: float) -> dict:
    """The REGISTER benchmark against Kamailio+auth: the same devices (account × devices, digest
    with `register.xml`), warm-up and rate steps as OneNumber's in `bench_register.run_register`."""
    out: dict = {"note": "digest auth (auth_db over db_text), usrloc in memory, 2 UDP workers, core 0",
                 "accounts": accounts, "devices": accounts * devices, "step_seconds": seconds, "steps": []}
    numbers = [str(200000 + i) for i in range(accounts)]
    devs = [Dev(n, pos, n if pos == 0 else f"{n}_{pos + 1}", _sipp_safe(lambda: secrets.token_urlsafe(12)))
            for n in numbers for pos in range(devices)]
    kam = Kamailio(workdir, subscribers=[(d.auth_username, d.secret) for d in devs])
    inf = write_csv(workdir / "users.csv", [(d.account, d.auth_username, auth_keyword(d)) for d in devs])
    port = free_port()
    try:
        kam.start()
        warm = run_sipp("register.xml", kam.sip_port, workdir=workdir, calls=len(devs), rate=min(500.0, len(devs)),
                        inf=inf, timeout=len(devs) / 500 + 15, local_port=port)
        out["warmup"] = {"ok": warm.successful, "of": len(devs)}
        steps: list[Step] = []
        for rate in rates:
            step = run_step(kam, "register.xml", inf, rate, seconds, workdir, port, pids=kam.pids())
            steps.append(step)
            out["steps"].append(step.row())
            print(f"  Kamailio+auth REGISTER {rate:>6.0f}/s: " + row_text(step.row()), flush=True)
            if step.result.failure_pct > SATURATED_PCT:
                break
        best = best_rate(steps)
        out["best"] = best.row() if best else None
    except RuntimeError as exc:
        out["error"] = str(exc)
    finally:
        kam.stop()
    return out
