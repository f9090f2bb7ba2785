"""Every code block of README.md runs as printed, against a running ``up``.

The README's convention, for whoever edits it: each fenced block tagged
``sh``, ``bash``, ``shell``, ``console`` (its ``$ `` lines) or ``python`` is
run here, in order, in a directory laid out like a fresh clone (its ``.venv``
is this test's virtual environment, on PATH as after ``source
.venv/bin/activate``), next to an ``ec-recommend up`` started there (data in
``.ec-data``). Blocks without a language (pictures, layouts) are not code.
The line right before a block may say how to run it:

- ``<!-- readme-test: skip -->``: not run. For what needs root, Docker,
  Kubernetes, AWS, a server elsewhere, values the reader fills in, minutes
  of load, or is the install and test command that CI runs anyway.
- ``<!-- readme-test: background -->``: a server. Started, it must print its
  ready JSON line (``serve``, and ``up`` when not on a terminal) within a
  minute; then it is stopped with SIGTERM and must exit cleanly.

Any other block must exit 0 without a traceback (Python blocks run as a
script). The printed commands stay what a user types: only the gateway's
ports (8080, 8081, ...) are mapped to free ones, and a load run's
``--run-time`` shortened.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.e2e.conftest import up_process

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELLS = {"sh", "bash", "shell", "console"}
MARKER = re.compile(r"<!--\s*readme-test:\s*(\w+)\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
# what a fresh clone holds that the README's commands use
CLONE_ENTRIES = ("loadgen", "scripts", "proto", "src", "docs", "pyproject.toml", "README.md")
# Tools from optional extras: a block that uses one runs where it is installed
# (CI installs every extra); elsewhere it is left out.
OPTIONAL_TOOLS = {"locust": "locust"}
BLOCK_TIMEOUT = 120.0
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    mode: str  # "run", "skip" or "background"
    code: str

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}, {self.mode})"


def readme_blocks(text: str) -> list[Block]:
    """The README's code blocks with their run mode, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        language = opening.group(1).lower()
        if language not in SHELLS | {"python"}:
            continue
        before = lines[start - 1] if start else ""
        marker = MARKER.search(before)
        mode = marker.group(1) if marker else "run"
        if mode not in ("run", "skip", "background"):
            raise ValueError(f"README.md:{start}: unknown readme-test mode {mode!r}")
        if language == "console":
            body = [line[2:] for line in body if line.startswith("$ ")]
        blocks.append(Block(start + 1, language, mode, "\n".join(body) + "\n"))
    return blocks


def test_the_readme_convention_is_parsed() -> None:
    text = (
        "```\npicture\n```\n<!-- readme-test: skip -->\n```sh\napt-get install x\n```\n"
        "```console\n$ echo hi\nhi\n```\n<!-- readme-test: background -->\n```bash\nserve\n```\n"
    )
    assert [(b.language, b.mode, b.code) for b in readme_blocks(text)] == [
        ("sh", "skip", "apt-get install x\n"),
        ("console", "run", "echo hi\n"),
        ("bash", "background", "serve\n"),
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Rewrite:
    """README port numbers to free ports (8080: the running up's gateway); short load runs."""

    def __init__(self, gateway_port: int) -> None:
        self.ports = {"8080": str(gateway_port)}

    def __call__(self, code: str) -> str:
        code = re.sub(r"\b80[89]\d\b", lambda m: self._port(m.group(0)), code)
        return re.sub(r"--run-time \S+", "--run-time 5s", code)

    def _port(self, printed: str) -> str:
        return self.ports.setdefault(printed, str(_free_port()))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory laid out like a fresh clone with its virtual environment."""
    work = tmp_path_factory.mktemp("readme")
    (work / ".venv").symlink_to(Path(sys.prefix))
    for name in CLONE_ENTRIES:
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    return work


def _environment() -> dict[str, str]:
    """The user's shell after activating the venv: no test settings, quieter logs."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["EC_LOG_LEVEL"] = "WARNING"
    return environment


def _command(block: Block, code: str, work: Path) -> list[str]:
    if block.language == "python":
        script = work / f"readme_{block.line}.py"
        script.write_text(code, encoding="utf-8")
        return [sys.executable, str(script)]
    return ["bash", "-e", "-o", "pipefail", "-c", code]


def _run(block: Block, code: str, work: Path) -> str | None:
    """What went wrong with a block that runs to its end, or None."""
    result = subprocess.run(
        _command(block, code, work),
        cwd=work,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 or "Traceback" in output:
        return f"{block}: exit {result.returncode}\n{code}\n{output[-2000:]}"
    return None


def _lines(stream: IO[str] | None, deadline: float) -> Iterator[str]:
    while stream is not None and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            return
        yield line


def _background(block: Block, code: str, work: Path) -> str | None:
    """Start a server block, wait for its ready line, stop it with SIGTERM."""
    log = work / f"readme_{block.line}.log"
    with log.open("w") as stderr:
        child = subprocess.Popen(
            _command(block, code, work),
            cwd=work,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # the block's shell and whatever it starts
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            ready = any(
                line.startswith('{"event": "ready"') for line in _lines(child.stdout, deadline)
            )
            if not ready:
                return f"{block}: no ready line\n{code}\n{log.read_text()[-2000:]}"
            os.killpg(child.pid, signal.SIGTERM)
            code_at_exit = child.wait(30)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            assert child.stdout is not None
            child.stdout.close()
    if code_at_exit != 0 or "Traceback" in log.read_text():
        return f"{block}: exit {code_at_exit} after SIGTERM\n{code}\n{log.read_text()[-2000:]}"
    return None


def _tools_installed(block: Block) -> bool:
    return all(
        importlib.util.find_spec(module) is not None
        for tool, module in OPTIONAL_TOOLS.items()
        if re.search(rf"\b{tool}\b", block.code)
    )


def test_every_readme_block_runs_as_printed(clone: Path) -> None:
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.mode != "skip" and _tools_installed(b)]
    assert runnable, "the README has code to run"
    problems: list[str] = []
    data_dir = clone / ".ec-data"
    data_dir.mkdir()
    with up_process(data_dir) as running:
        rewrite = Rewrite(int(running.gateway_url.rsplit(":", 1)[1]))
        for block in runnable:
            code = rewrite(block.code)
            step = _background if block.mode == "background" else _run
            if (problem := step(block, code, clone)) is not None:
                problems.append(problem)
    assert not problems, "\n\n".join(problems)
