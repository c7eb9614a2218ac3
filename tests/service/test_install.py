"""The container image's build, without Docker: the Dockerfile's steps done by hand.

The build stage copies the sources the Dockerfile names into an empty directory and builds the
wheel there; the wheel goes into a fresh virtual environment; the service then starts from an
empty working directory holding only what the final stage copies (the policy and the runbooks),
with the final stage's environment, its ENTRYPOINT and CMD, and its HEALTHCHECK is run against
it. Package data the wheel lacks (migrations, templates) or a reliance on the repository shows
up here, not in production.

The project's dependencies are not downloaded again: the fresh environment sees the test
environment's site-packages through a ``.pth`` line, which comes after its own site-packages,
and which does not run that directory's own ``.pth`` hooks (so the editable install of the
repository stays out of sight).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select

from bot.db import Database
from bot.models import Incident, Postmortem
from bot.sandbox import SlackSimulator
from tests.ports import free_port
from tests.service.conftest import (
    BOUND,
    ROOT,
    SECRET,
    HoldingFakeSlack,
    ServeProcess,
    eventually,
    get,
)

DOCKERFILE = ROOT / "Dockerfile"
IMAGE_VENV = "/opt/firebreak"
IMAGE_DATA = "/data"
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"

Instruction = tuple[str, str]


def read_stages(path: Path) -> list[list[Instruction]]:
    """Each stage's instructions as (INSTRUCTION, arguments): continuations joined, comments
    dropped."""
    stages: list[list[Instruction]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instruction, _, arguments = (pending + line).partition(" ")
        pending = ""
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def arguments(stage: list[Instruction], name: str) -> list[str]:
    return [args for instruction, args in stage if instruction == name]


def copied(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    """``COPY`` instructions that take files from the build context: (sources, destination)."""
    result = []
    for args in arguments(stage, "COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        result.append((paths[:-1], paths[-1]))
    return result


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


@dataclass(frozen=True)
class Image:
    """The final stage as it would run: where things are and with which environment."""

    venv: Path
    workdir: Path
    data: Path
    env: dict[str, str]
    command: list[str]
    healthcheck: list[str]

    def run_environment(self, **extra: str) -> dict[str, str]:
        return {**self.env, "HOME": str(self.workdir), **extra}


def run(
    command: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{shlex.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result


def place(sources: list[str], destination: str, directory: Path) -> None:
    """``COPY sources destination`` from the repository into ``directory`` (the WORKDIR)."""
    for source in sources:
        target = directory / destination
        if destination.endswith("/"):
            target = target / Path(source).name
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, target)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    stages = read_stages(DOCKERFILE)
    build, final = stages[0], stages[-1]
    root = tmp_path_factory.mktemp("image")

    # Build stage: only what it copies, in an empty directory, then the wheel.
    src = root / "src"
    src.mkdir()
    for sources, destination in copied(build):
        place(sources, destination, src)
    wheels = root / "wheels"
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(src)],
        env=pip_env,
    )
    [wheel] = wheels.glob("firebreak-*.whl")

    # A fresh environment with the wheel in it, and the test environment's dependencies.
    venv = root / IMAGE_VENV.lstrip("/")
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], env=pip_env)
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "test-environment-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )

    # Final stage: the working directory holds only what the stage copies into it.
    [workdir_arg] = arguments(final, "WORKDIR")
    workdir = root / workdir_arg.lstrip("/")
    workdir.mkdir(parents=True)
    for sources, destination in copied(final):
        place(sources, destination, workdir)
    data = root / IMAGE_DATA.lstrip("/")
    data.mkdir()

    env: dict[str, str] = {}
    for args in arguments(final, "ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            env[name] = value.replace("$PATH", BASE_PATH).replace(IMAGE_VENV, str(venv))
    assert env["DATABASE_URL"] == f"sqlite:///{IMAGE_DATA}/firebreak.db"
    env["DATABASE_URL"] = f"sqlite:///{data}/firebreak.db"

    [entrypoint], [cmd] = arguments(final, "ENTRYPOINT"), arguments(final, "CMD")
    [healthcheck] = arguments(final, "HEALTHCHECK")
    _, _, probe = healthcheck.partition(" CMD ")
    return Image(
        venv=venv,
        workdir=workdir,
        data=data,
        env=env,
        command=exec_form(entrypoint) + exec_form(cmd),
        healthcheck=exec_form(probe),
    )


@pytest.fixture
def start_image(image: Image, fake: HoldingFakeSlack) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(**extra: str) -> ServeProcess:
        port = free_port()
        env = image.run_environment(
            PORT=str(port),
            SLACK_BOT_TOKEN=fake.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.api_url,
            **extra,
        )
        program = shutil.which(image.command[0], path=env["PATH"])
        assert program == str(image.venv / "bin" / image.command[0])
        process = ServeProcess([program, *image.command[1:]], env=env, cwd=image.workdir, port=port)
        started.append(process)
        return process.wait_ready()

    yield start
    for process in started:
        process.stop()


def healthcheck(image: Image, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        image.healthcheck,
        env=image.run_environment(PORT=str(port)),
        cwd=image.workdir,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=BOUND
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_from_the_wheel_alone(image: Image) -> None:
    # The working directory holds nothing importable, and the package comes from the wheel.
    assert sorted(p.name for p in image.workdir.iterdir()) == ["firebreak.toml", "runbooks"]
    where = run(
        [str(image.venv / "bin" / "python"), "-c", "import bot; print(bot.__file__)"],
        env=image.run_environment(),
        cwd=image.workdir,
    )
    assert Path(where.stdout.strip()).is_relative_to(image.venv)


def test_the_image_start_command_serves_and_passes_its_healthcheck(
    image: Image, start_image: Callable[..., ServeProcess], fake: HoldingFakeSlack
) -> None:
    service = start_image()
    assert healthcheck(image, service.port).returncode == 0
    assert get(f"{service.url}/readyz").status == 200  # the wheel's migrations ran
    [loaded] = [r for r in service.log_records() if r["message"] == "runbooks loaded"]
    assert loaded["count"] == len(list((ROOT / "runbooks").glob("*.md")))

    # A declaration and a postmortem draft: the built-in template comes from the wheel.
    slack = SlackSimulator(fake, service.events_url, SECRET)
    declared = slack.slash_command("Checkout returns 500s", user="ana.garcia", channel="general")
    eventually(lambda: fake.response_posts(declared.request.response_url), "the declaration")
    database = Database(image.env["DATABASE_URL"])
    try:

        def channel_ready() -> str | None:
            # The answer comes at once; the channel is an effect of the declare, and the
            # reporter is invited right after it is created.
            with database.transaction() as session:
                found = session.exec(select(Incident)).one().slack_channel_id
            ana = fake.user_id("ana.garcia")
            return found if found and ana in fake.members(found) else None

        where = eventually(channel_ready, "the incident channel, with the reporter in it")

        def drafted() -> Postmortem | None:
            with database.transaction() as session:
                return session.exec(select(Postmortem)).first()

        slack.slash_command("postmortem", user="ana.garcia", channel=where)
        draft = eventually(drafted, "the postmortem draft is generated")
    finally:
        database.dispose()
    assert draft.template == "default" and draft.template_error is None
    assert "Checkout returns 500s" in draft.markdown
    [upload] = eventually(lambda: [f for f in fake.files() if f.completed], "the draft is uploaded")
    assert upload.channels == [where]

    service.terminate()
    assert service.wait() == 0, service.output()
    assert healthcheck(image, service.port).returncode != 0


def test_the_installed_service_runs_on_the_backend_under_test(
    start_image: Callable[..., ServeProcess], service_database_url: str
) -> None:
    service = start_image(DATABASE_URL=service_database_url)
    assert get(f"{service.url}/readyz").status == 200
