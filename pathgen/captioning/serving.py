"""Managed model servers: a caption chunk job starts the OpenAI-compatible server(s) its agents
need on its own node, waits until they answer, keeps them alive and stops them at the end
(``captioning.serve: managed``; docs/captioning.md "Managed serving").

Command lines follow the engines' documentation:

* vLLM, ``vllm serve`` (https://docs.vllm.ai/en/stable/cli/serve.html): ``--host``, ``--port``,
  ``--tensor-parallel-size``, ``--max-num-seqs``, ``--gpu-memory-utilization``, ``--seed``; LoRA
  adapters (https://docs.vllm.ai/en/stable/features/lora.html): ``--enable-lora --lora-modules
  NAME=PATH ... --max-lora-rank R``, a request naming ``NAME`` as its model uses that adapter.
* SGLang, ``python -m sglang.launch_server`` (https://docs.sglang.ai/backend/server_arguments.html):
  ``--model-path``, ``--host``, ``--port``, ``--tp``, ``--mem-fraction-static``,
  ``--max-running-requests``, ``--random-seed``.
* ``command``: any executable (``captioning.server.command``) with ``{model}``, ``{port}``,
  ``{host}`` filled in; an item ``{lora_modules}`` becomes the adapters' ``NAME=PATH`` items.

Agents are grouped by base model: agents on one base (with or without LoRA adapters) share ONE
server; different base models get one server each, side by side on the job's GPU(s) with the
memory share split evenly (docs/captioning.md says why not one after another).

A server that exits or never answers within ``startup_timeout_s`` fails the job with the tail of
its log and the fix (:class:`ServerStartError`, an infrastructure failure: no slide is
quarantined). A server that dies mid-chunk is restarted up to ``max_restarts`` times; requests
that meet the dead server wait on its :class:`ServerGate` and are retried once it answers
again (not counted against their retries). Every server runs in its own process group and gets
SIGTERM, then SIGKILL after ``stop_grace_s``, when the job ends, fails or is stopped; the kernel
sends it SIGTERM too if the job process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .files import adapter_config_file, server_log_file
from .items import CaptioningAborted

log = logging.getLogger("pathgen.serving")
HOST = "127.0.0.1"
POLL_S = 0.5          # how often the supervisor looks at the server process
PROGRESS_EVERY_S = 30.0  # a start-up progress line while weights load


class ServerStartError(RuntimeError):
    """A managed server did not come up (exited, timed out, out of memory)."""


class ServerGone(CaptioningAborted):
    """A managed server kept dying (restarts used up): the chunk cannot go on."""


# base URL -> gate of the managed server behind it (the openai client consults it)
_GATES: dict[str, ServerGate] = {}


def gate_for(base_url: str) -> ServerGate | None:
    return _GATES.get(base_url.rstrip("/"))


class ServerGate:
    """Whether a managed server answers: requests that meet it down wait here for its restart."""

    def __init__(self, name: str):
        self.name = name
        self._up = threading.Event()
        self.failed: BaseException | None = None
        self.restarts = 0

    def is_up(self) -> bool:
        return self._up.is_set() and self.failed is None

    def set_up(self, up: bool) -> None:
        (self._up.set if up else self._up.clear)()

    def fail(self, err: BaseException) -> None:
        self.failed = err
        self._up.set()  # wake the waiters: they raise

    async def restarted(self) -> bool:
        """After a request met a connection error: True once the server answers again if it
        was down (the try does not count), False if it stayed up (a real failure, it counts).
        Raises :class:`ServerGone` when it will not come back."""
        if self._up.is_set() and self.failed is None:
            # the process may have died a moment ago: give the supervisor time to notice
            await asyncio.sleep(2 * POLL_S)
            if self._up.is_set() and self.failed is None:
                return False
        while not self._up.is_set():
            await asyncio.sleep(POLL_S / 2)
        if self.failed is not None:
            raise ServerGone(str(self.failed))
        return True


@dataclass
class ServerPlan:
    """One server to start: its base model, the adapters it serves, the agents it serves."""

    model: str
    adapters: dict[str, str] = field(default_factory=dict)  # served name -> adapter folder
    roles: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"


# The --max-lora-rank values vLLM accepts (its LoRA config validates against this list).
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(folder: str | Path) -> int | None:
    """LoRA rank ``r`` from a peft adapter folder's adapter_config.json (None if unreadable)."""
    try:
        return int(json.loads(adapter_config_file(folder).read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def vllm_lora_rank(ranks: list[int]) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds every adapter's rank."""
    need = max(ranks, default=8)
    for r in VLLM_LORA_RANKS:
        if r >= need:
            return r
    raise ServerStartError(f"a LoRA rank of {need} is above vLLM's largest --max-lora-rank "
                           f"({VLLM_LORA_RANKS[-1]}); export the agents as merged models")


def plan_servers(ccfg) -> list[ServerPlan]:
    """One server per base model of the openai agents (adapters named after their agent)."""
    plans: dict[str, ServerPlan] = {}
    for role in ("describe", "revise", "summarize"):
        spec = ccfg.agent(role)
        if spec.backend != "openai":
            continue
        plan = plans.setdefault(spec.model, ServerPlan(spec.model))
        plan.roles.append(role)
        if spec.adapter:
            if not adapter_config_file(spec.adapter).is_file():
                raise ServerStartError(
                    f"captioning.agents.{role}.adapter = {spec.adapter}: no adapter_config.json "
                    "there; export the agent with `pathgen agents export --format adapter`")
            plan.adapters[role] = str(spec.adapter)
    return list(plans.values())


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_command(srv, plan: ServerPlan, mem_share: float) -> list[str]:
    """The engine's command line for ``plan`` (``srv``: captioning.server)."""
    lora = [f"{name}={path}" for name, path in plan.adapters.items()]
    if srv.engine == "vllm":
        exe = str(srv.bin_dir / "vllm") if srv.bin_dir else "vllm"
        cmd = [exe, "serve", plan.model, "--host", HOST, "--port", str(plan.port),
               "--tensor-parallel-size", str(srv.tensor_parallel_size),
               "--max-num-seqs", str(srv.max_num_seqs),
               "--gpu-memory-utilization", f"{mem_share:.3f}", "--seed", "0"]
        if lora:
            ranks = [r for r in map(adapter_rank, plan.adapters.values()) if r]
            rank = srv.max_lora_rank or vllm_lora_rank(ranks)
            cmd += ["--enable-lora", "--lora-modules", *lora, "--max-loras", str(len(lora)),
                    "--max-lora-rank", str(rank)]
        return cmd + list(srv.extra_args)
    if srv.engine == "sglang":
        exe = str(srv.bin_dir / "python") if srv.bin_dir else "python"
        return [exe, "-m", "sglang.launch_server", "--model-path", plan.model, "--host", HOST,
                "--port", str(plan.port), "--tp", str(srv.tensor_parallel_size),
                "--mem-fraction-static", f"{mem_share:.3f}",
                "--max-running-requests", str(srv.max_num_seqs), "--random-seed", "0",
                *srv.extra_args]
    values = {"model": plan.model, "port": str(plan.port), "host": HOST}
    cmd = []
    for arg in srv.command:
        if arg == "{lora_modules}":
            cmd += lora
        else:
            cmd.append(arg.format(**values))
    return cmd + list(srv.extra_args)


def _set_pdeathsig() -> None:  # runs in the child before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class ManagedServer:
    """One server process: start, wait until it answers, supervise, stop."""

    def __init__(self, srv, plan: ServerPlan, log_path: Path, mem_share: float):
        self.srv, self.plan, self.log_path, self.mem_share = srv, plan, Path(log_path), mem_share
        self.gate = ServerGate(plan.model)
        self.proc: subprocess.Popen | None = None
        self.stopping = False
        self.started_s: float | None = None
        self._watch: threading.Thread | None = None

    def _spawn(self) -> None:
        cmd = server_command(self.srv, self.plan, self.mem_share)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} pathgen starts: "
                      f"{shlex.join(cmd)}\n".encode())
            try:
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             preexec_fn=_set_pdeathsig)
            except FileNotFoundError:
                raise ServerStartError(
                    f"cannot start the {self.srv.engine} server: {cmd[0]!r} is not installed where "
                    "the caption job runs; create its env (envs/engines/<engine>.yaml) and set "
                    "captioning.server.bin_dir to its bin/ folder (`pathgen doctor` checks it), "
                    "or set captioning.server.command") from None

    def tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                lines = deque(fh, maxlen=n)
        except OSError:
            return "(no server log)"
        return "".join(b.decode("utf-8", "replace") for b in lines).rstrip()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.plan.base_url + "/models", timeout=5) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _start_error(self, what: str, fix: str) -> ServerStartError:
        return ServerStartError(
            f"the managed {self.srv.engine} server for {self.plan.model} {what}; last lines of "
            f"its log {self.log_path}:\n{self.tail()}\nFix: {fix}")

    def start(self) -> float:
        """Start and wait until GET /v1/models answers; the seconds it took."""
        t0 = time.monotonic()
        self._spawn()
        limit, next_note = self.srv.startup_timeout_s, t0 + PROGRESS_EVERY_S
        while not self.answers():
            code = self.proc.poll()
            if code is not None:
                oom = "out of memory" in self.tail(60).lower()
                raise self._start_error(
                    f"exited with code {code} while starting",
                    "lower captioning.server.gpu_memory_utilization or the model's context "
                    "length (captioning.server.extra_args), or ask for a larger GPU "
                    "(resources.caption.gpu_model)" if oom else
                    "see the log above (wrong model id, missing weights or engine, bad flag)")
            now = time.monotonic()
            if now - t0 > limit:
                self._terminate()
                raise self._start_error(
                    f"did not answer GET {self.plan.base_url}/models within {limit:.0f} s",
                    "raise captioning.server.startup_timeout_s if the weights load slowly, else "
                    "see the log above")
            if now >= next_note:
                log.info("waiting for the %s server (%s) to load: %.0f s so far; log: %s",
                         self.srv.engine, self.plan.model, now - t0, self.log_path)
                next_note = now + PROGRESS_EVERY_S
            time.sleep(POLL_S)
        self.started_s = round(time.monotonic() - t0, 2)
        log.info("%s server for %s answers at %s after %.1f s (agents: %s)", self.srv.engine,
                 self.plan.model, self.plan.base_url, self.started_s, ", ".join(self.plan.roles))
        self.gate.set_up(True)
        return self.started_s

    def supervise(self) -> None:
        self._watch = threading.Thread(target=self._supervise, name="server-watch", daemon=True)
        self._watch.start()

    def _supervise(self) -> None:
        while not self.stopping:
            time.sleep(POLL_S)
            proc = self.proc
            if self.stopping or proc is None or proc.poll() is None:
                continue
            self.gate.set_up(False)
            log.error("the %s server for %s died (exit code %s); last lines of %s:\n%s",
                      self.srv.engine, self.plan.model, proc.returncode, self.log_path, self.tail(10))
            if self.gate.restarts >= self.srv.max_restarts:
                self.gate.fail(ServerStartError(
                    f"the managed {self.srv.engine} server for {self.plan.model} died "
                    f"{self.gate.restarts + 1} times (captioning.server.max_restarts="
                    f"{self.srv.max_restarts}); see {self.log_path}"))
                return
            self.gate.restarts += 1
            log.warning("restarting it (%d of %d); requests in flight are retried",
                        self.gate.restarts, self.srv.max_restarts)
            try:
                self.start()
            except ServerStartError as err:
                self.gate.fail(err)
                return

    def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(self.srv.stop_grace_s)
        except subprocess.TimeoutExpired:
            log.warning("the %s server did not stop within %.0f s: SIGKILL", self.srv.engine,
                        self.srv.stop_grace_s)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.stopping = True
        self._terminate()
        if self._watch is not None:
            self._watch.join(timeout=2 * POLL_S + 1)
        _GATES.pop(self.plan.base_url, None)


class ServerPool:
    """The managed servers of one caption chunk job."""

    def __init__(self, ccfg, log_dir: Path):
        self.ccfg, self.log_dir = ccfg, Path(log_dir)
        self.servers: list[ManagedServer] = []
        self.startup_s = 0.0

    def start(self):
        """Start every server (side by side), then return ``ccfg`` with each openai agent sent
        to its server (adapters named as their model). Raises ServerStartError."""
        srv, plans = self.ccfg.server, plan_servers(self.ccfg)
        share = srv.gpu_memory_utilization / max(1, len(plans))
        for i, plan in enumerate(plans):
            plan.port = free_port()
            log_file = server_log_file(self.log_dir, i, len(plans))
            self.servers.append(ManagedServer(srv, plan, log_file, share))
        t0 = time.monotonic()
        try:
            for s in self.servers:
                s.start()
                _GATES[s.plan.base_url] = s.gate
                s.supervise()
        except BaseException:
            self.stop()
            raise
        self.startup_s = round(time.monotonic() - t0, 2)
        return self.routed_config()

    def routed_config(self):
        agents = {}
        for s in self.servers:
            for role in s.plan.roles:
                agents[role] = {"endpoint": s.plan.base_url, "adapter": None,
                                **({"model": role} if role in s.plan.adapters else {})}
        data = self.ccfg.model_dump(mode="json")
        data["serve"] = "external"  # the job talks to its own servers as to any other
        for role, upd in agents.items():
            data["agents"][role].update(upd)
        data["agents"] = {r: {**a, "backend": a.get("backend") or (
            "openai" if r in agents else None)} for r, a in data["agents"].items()}
        return type(self.ccfg).model_validate(data)

    def failed(self) -> BaseException | None:
        return next((s.gate.failed for s in self.servers if s.gate.failed), None)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
