"""Build and run ``deploy/Dockerfile`` where no Docker engine runs: each stage a chroot.

What the image adds to its base is ours — the install steps, the user, the
entrypoint, the healthcheck — and those are what this runs, as written in the
Dockerfile: every ``RUN`` line by ``/bin/sh -c`` inside the stage's root as
its ``USER``, with the stage's ``ENV`` and ``ARG`` values, in its
``WORKDIR``; ``COPY`` from the build context or an earlier stage; the
container's command as ``ENTRYPOINT`` + ``CMD`` (or the arguments given), and
the ``HEALTHCHECK`` command beside it in the same root, as ``docker run`` and
Docker's health monitor would.

What it does not reproduce is the base image: every stage's root is the
machine's own ``/usr`` and the Python that runs the tests (read-only bind
mounts in a mount namespace of the command's own) and its Python 3
(``/usr/bin/python3`` with its venv module, Debian's python3-venv), not
``python:3.12-slim``; the network is the machine's. It supports the instructions our Dockerfile
uses: FROM, ARG, ENV, WORKDIR, COPY (``--from``), RUN, USER, EXPOSE,
HEALTHCHECK, ENTRYPOINT and CMD (exec form). Needs root, ``unshare`` and
``chroot`` (util-linux, coreutils).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Docker's PATH when an image sets none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The base image's ``python``: the machine's own.
BASE_PYTHON = "/usr/bin/python3"
#: Build arguments Docker passes on without an ARG line.
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def available() -> str | None:
    """Why the runner cannot work here, or None."""
    if os.geteuid() != 0:
        return "needs root (chroot, mount namespaces)"
    for tool in ("unshare", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"no {tool} command"
    if not Path(BASE_PYTHON).exists():
        return f"no {BASE_PYTHON}"
    probe = subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        return f"no mount namespace: {probe.stderr.decode(errors='replace').strip()}"
    return None


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) per logical line: continuations joined, comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        word, _, rest = whole.partition(" ")
        lines.append((word.upper(), rest.strip()))
    return lines


def expand(text: str, values: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` from ``values`` (unset: empty), as Docker expands them."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], ""), text)


def assignments(text: str, values: dict[str, str]) -> dict[str, str]:
    """``A=1 B="two words"`` (ENV's form), each value expanded."""
    return {
        name: expand(value, values)
        for name, _, value in (word.partition("=") for word in shlex.split(text))
    }


@dataclass
class Stage:
    """One stage's root and what its instructions set."""

    root: Path
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "0"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


@dataclass
class Image:
    """The last stage, ready to run."""

    stage: Stage
    entrypoint: list[str]
    cmd: list[str]
    healthcheck: list[str]
    builder: ImageBuilder

    def command(self, args: list[str] | None = None) -> list[str]:
        """``docker run IMAGE [ARGS]``: the entrypoint, then ARGS or the image's CMD."""
        return [*self.entrypoint, *(self.cmd if args is None else args)]

    def container(self, tmp: Path) -> Container:
        """A container of this image whose ``/tmp`` is ``tmp`` (its own, as in Docker)."""
        tmp.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o1777)
        return Container(self, tmp)


@dataclass
class Container:
    """``docker run``/``exec`` of an :class:`Image`: its root, with a ``/tmp`` of its own."""

    image: Image
    tmp: Path

    def start(
        self, args: list[str] | None = None, env: dict[str, str] | None = None, **popen: Any
    ) -> subprocess.Popen[bytes]:
        """The container's process (``docker run -e …``); signals reach it directly."""
        argv = self.image.builder.argv(
            self.image.stage, self.image.command(args), env or {}, tmp=self.tmp
        )
        return subprocess.Popen(argv, **popen)

    def exec(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``docker exec``: ``argv`` in the container, as the image's user."""
        return subprocess.run(
            self.image.builder.argv(self.image.stage, argv, env or {}, tmp=self.tmp),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def health(self) -> subprocess.CompletedProcess[str]:
        """One run of the image's HEALTHCHECK command, as Docker's monitor runs it."""
        return self.exec(self.image.healthcheck)


class BuildFailed(Exception):
    """A RUN step exited non-zero; the message holds its output."""


class ImageBuilder:
    """``docker build -f DOCKERFILE --build-arg … CONTEXT``, into ``workspace``."""

    def __init__(
        self,
        dockerfile: Path,
        context: Path,
        workspace: Path,
        build_args: dict[str, str] | None = None,
    ) -> None:
        self.dockerfile = dockerfile
        self.context = context
        self.workspace = workspace
        self.build_args = {
            **{k: os.environ[k] for k in PROXY_ARGS if k in os.environ},
            **(build_args or {}),
        }
        self.local_bin = workspace / "usr-local-bin"  # the base image's `python`
        self.log: list[str] = []

    def build(self) -> Image:
        self.local_bin.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = self.local_bin / name
            if not link.is_symlink():
                link.symlink_to(BASE_PYTHON)
        stages: list[Stage] = []
        names: dict[str, Stage] = {}
        for word, rest in instructions(self.dockerfile.read_text()):
            if word == "FROM":
                stages.append(Stage(self.new_root(len(stages))))
                parts = rest.split()
                if len(parts) == 3 and parts[1].upper() == "AS":
                    names[parts[2]] = stages[-1]
            else:
                assert stages, f"{word} before FROM"
                self.apply(stages[-1], word, rest, names)
        assert stages, "no FROM"
        last = stages[-1]
        return Image(last, last.entrypoint, last.cmd, last.healthcheck, self)

    def apply(self, stage: Stage, word: str, rest: str, names: dict[str, Stage]) -> None:
        """One instruction of ``stage`` (all but FROM)."""
        values = {**stage.args, **stage.env}
        if word == "ARG":
            name, _, default = rest.partition("=")
            given = json.loads(default) if default.startswith('"') else default
            stage.args[name] = self.build_args.get(name, given)
        elif word == "ENV":
            stage.env.update(assignments(rest, values))
        elif word == "WORKDIR":
            stage.workdir = expand(rest, values)
            (stage.root / stage.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        elif word == "COPY":
            self.copy(stage, rest, names)
        elif word == "RUN":
            self.run(stage, rest)
        elif word == "USER":
            stage.user = expand(rest, values)
        elif word == "ENTRYPOINT":
            stage.entrypoint = json.loads(rest)
        elif word == "CMD":
            stage.cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest[rest.index("CMD ") + 4 :])
        elif word != "EXPOSE":
            raise NotImplementedError(f"{word} is not supported by this runner")

    def new_root(self, index: int) -> Path:
        root = self.workspace / f"stage-{index}"
        root.mkdir(parents=True)
        for top in ("bin", "lib", "lib64", "sbin"):  # merged-/usr links, as on the host
            host = Path("/") / top
            if host.is_symlink():
                (root / top).symlink_to(os.readlink(host))
        for top in ("usr", "dev", "proc", "sys", "opt", "root", "var/tmp", "run"):
            (root / top).mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        shutil.copytree("/etc", root / "etc", symlinks=True, ignore_dangling_symlinks=True)
        return root

    def copy(self, stage: Stage, rest: str, names: dict[str, Stage]) -> None:
        words = rest.split()
        source_root = self.context
        if words[0].startswith("--from="):
            source_root = names[words.pop(0).removeprefix("--from=")].root
        *sources, dest = words
        target = Path(stage.workdir) / dest if not dest.startswith("/") else Path(dest)
        into = stage.root / str(target).lstrip("/")
        for source in sources:
            origin = source_root / source.lstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, into, symlinks=True, dirs_exist_ok=True)
            else:
                into.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)

    def run(self, stage: Stage, script: str) -> None:
        done = subprocess.run(
            self.argv(stage, ["/bin/sh", "-c", script], stage.args),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.log.append(f"RUN {script}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise BuildFailed(f"RUN {script}\nexit {done.returncode}\n{done.stdout}{done.stderr}")

    def argv(
        self,
        stage: Stage,
        command: list[str],
        extra_env: dict[str, str],
        tmp: Path | None = None,
    ) -> list[str]:
        """unshare + mounts + chroot: ``command`` in ``stage``'s root as its user."""
        root = shlex.quote(str(stage.root))
        mounts = [
            f"mount --bind -o ro /usr {root}/usr",
            f"mount --bind {shlex.quote(str(self.local_bin))} {root}/usr/local/bin",
            f"mount --rbind /dev {root}/dev",
            f"mount --rbind /proc {root}/proc",
            f"mount --rbind /sys {root}/sys",
        ]
        if tmp is not None:
            mounts.append(f"mount --bind {shlex.quote(str(tmp))} {root}/tmp")  # noqa: S108
        env = {**stage.env, **extra_env}
        env.setdefault("HOME", "/root" if stage.user in ("0", "root") else "/")
        user = stage.user if ":" in stage.user else f"{stage.user}:0"
        inner = [
            "chroot",
            f"--userspec={user}",
            str(stage.root),
            "/usr/bin/env",
            "-i",
            "-C",
            stage.workdir,
            *(f"{k}={v}" for k, v in env.items()),
            *command,
        ]
        script = " && ".join(mounts) + " && exec " + shlex.join(inner)
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
