"""deploy/Dockerfile, read without a Docker engine: sources, stages, user, health check, and the
same install steps as scripts/setup.sh (what .ci/run runs natively); both images it makes, the
full one (the last stage) and the slim one (``--target runtime``), hardened alike."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
BASE_IMAGE = "python:3.11-slim-bookworm"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Options of `pip install` that take a value (the value is not a requirement).
PIP_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c"}
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|gcc|g\+\+|cc|make|build-essential|pip) install\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped, global ARG
    defaults substituted into FROM."""
    logical, pending = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in filter(str.strip, logical):
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], args).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern matching the
    path or one of its parent directories decides (``!`` re-includes)."""
    parents = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, p) for p in parents):
            excluded = not negated
    return excluded


def pip_requirements(command: str) -> list[str]:
    """The requirement arguments of one `pip install` command line."""
    words = shlex.split(command)
    words = words[words.index("install") + 1 :]
    requirements, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in PIP_VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            requirements.append(word)
    return requirements


def expand_build_args(command: str, values: dict[str, str]) -> str:
    """``command`` as the shell of a RUN step sees it with build arguments ``values``: the
    ``${NAME:+word}`` and ``$NAME`` forms the Dockerfile uses."""
    names = "|".join(map(re.escape, values)) or "(?!)"

    def if_set(match: re.Match[str]) -> str:
        return match.group(2) if values[match.group(1)] else ""

    command = re.sub(rf"\$\{{({names}):\+([^}}]*)\}}", if_set, command)
    return re.sub(rf"\$\{{?({names})\b\}}?", lambda match: values[match.group(1)], command)


def pip_installs(text: str) -> list[str]:
    """Every `pip install ...` command in a shell text, in order (`&&` chains split)."""
    commands = re.split(r"&&|\n", text)
    return [c.strip() for c in commands if re.search(r"\bpip install\b", c)]


def extras(requirement: str) -> tuple[str, set[str]]:
    path, _, rest = requirement.partition("[")
    return path, set(rest.rstrip("]").split(",")) if rest else set()


def lineage(stages: list[Stage], stage: Stage) -> list[Stage]:
    """``stage`` and the earlier stages it is built ``FROM``, the base-most first."""
    names = {s.name: s for s in stages if s.name}
    chain = [stage]
    while chain[0].base in names:
        chain.insert(0, names[chain[0].base])
    return chain


def image_config(stages: list[Stage], stage: Stage) -> Stage:
    """What an image built up to ``stage`` holds: the instructions of its whole lineage."""
    chain = lineage(stages, stage)
    return Stage(
        base=chain[0].base,
        name=stage.name,
        instructions=[instruction for s in chain for instruction in s.instructions],
    )


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def target(stages: list[Stage], name: str) -> Stage:
    """The image a target makes: ``full`` is the last stage (what a build without --target
    makes), ``runtime`` the slim one."""
    if name == "full":
        assert stages[-1].name == "full"
        return stages[-1]
    (stage,) = [s for s in stages if s.name == name]
    return stage


TARGETS = ["full", "runtime"]
# the stage each image copies its virtualenv from
BUILD_STAGES = {"full": "build", "runtime": "build-runtime"}


def build_stage(stages: list[Stage], image: str) -> Stage:
    (stage,) = [s for s in stages if s.name == BUILD_STAGES[image]]
    return stage


def test_multi_stage_on_debian_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    earlier: set[str] = set()
    for stage in stages:
        assert stage.base == BASE_IMAGE or stage.base in earlier, stage.base
        earlier.add(stage.name)
    for image in TARGETS:
        assert lineage(stages, target(stages, image))[0].base == BASE_IMAGE


def test_the_slim_target_comes_before_the_torch_stages(stages: list[Stage]) -> None:
    """A builder that builds every stage up to the target (no skipping of unused ones) builds
    no torch for ``--target runtime``."""
    names = [stage.name for stage in stages]
    runtime = names.index("runtime")
    assert names.index(BUILD_STAGES["full"]) > runtime
    for stage in stages[: runtime + 1]:
        assert "torch==" not in " ".join(stage.args("RUN")), stage.name


def test_copy_sources_exist_and_are_in_the_build_context(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [args for stage in stages for args in stage.args("COPY")]
    local = [args.split() for args in copies if not args.startswith("--from=")]
    assert local
    for words in local:
        for source in words[:-1]:
            assert (REPO / source).exists(), source
            assert not dockerignore_excludes(source, patterns), f"{source} is .dockerignored"
    for unwanted in (".venv", ".git", "tests", "deploy/secrets", "src/m2fp/__pycache__"):
        assert dockerignore_excludes(unwanted, patterns), unwanted


@pytest.mark.parametrize("image", TARGETS)
def test_final_stage_copies_only_the_venv(stages: list[Stage], image: str) -> None:
    config = image_config(stages, target(stages, image))
    copies = config.args("COPY")
    assert copies
    for args in copies:
        source_stage, *paths = args.removeprefix("--from=").split()
        assert source_stage == BUILD_STAGES[image]
        assert paths == ["/opt/m2fp", "/opt/m2fp"]


@pytest.mark.parametrize("image", TARGETS)
def test_final_stage_runs_as_numeric_non_root_user(stages: list[Stage], image: str) -> None:
    user = image_config(stages, target(stages, image)).args("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0
    assert not gid or (gid.isdigit() and int(gid) > 0)


@pytest.mark.parametrize("image", TARGETS)
def test_final_stage_health_check_uses_python_on_healthz(stages: list[Stage], image: str) -> None:
    (healthcheck,) = image_config(stages, target(stages, image)).args("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert command[0] == "python" and "urllib.request" in command[2]
    assert "/healthz" in command[2]


@pytest.mark.parametrize("image", TARGETS)
def test_final_stage_has_no_compiler_or_package_manager(stages: list[Stage], image: str) -> None:
    final_runs = " && ".join(image_config(stages, target(stages, image)).args("RUN"))
    assert not BUILD_TOOLS.search(final_runs)
    assert re.search(r"pip uninstall --yes pip setuptools", final_runs)
    assert "rm -f /usr/bin/apt" in final_runs and "/usr/bin/dpkg" in final_runs
    build_runs = " && ".join(build_stage(stages, image).args("RUN"))
    assert "/opt/m2fp/bin/pip uninstall --yes pip setuptools" in build_runs


@pytest.mark.parametrize("image", TARGETS)
def test_entrypoint_disables_core_dumps_and_runs_the_server(
    stages: list[Stage], image: str
) -> None:
    config = image_config(stages, target(stages, image))
    entrypoint = json.loads(config.args("ENTRYPOINT")[-1])
    assert entrypoint[:2] == ["/bin/sh", "-c"]
    assert entrypoint[2].startswith("ulimit -c 0 && exec m2fp serve ")
    env = " ".join(config.args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env


def test_slim_image_installs_the_runtime_extra_and_checks_for_torch(stages: list[Stage]) -> None:
    runs = " && ".join(build_stage(stages, "runtime").args("RUN"))
    (install,) = pip_installs(runs)
    assert pip_requirements(install) == [".[runtime]"]
    assert "find_spec('torch') is not None" in runs  # the build fails where torch came in
    env = " ".join(target(stages, "runtime").args("ENV"))
    assert "M2FP_ENGINE=openvino" in env  # the one engine it has


def build_arg_defaults(stage: Stage) -> dict[str, str]:
    return {
        name: default for name, _, default in (args.partition("=") for args in stage.args("ARG"))
    }


def test_install_steps_are_those_of_setup_script(stages: list[Stage]) -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "bash scripts/setup.sh" in (REPO / ".ci" / "run").read_text()
    # the project's venv (.venv-checkov is a tool venv the image has no use for)
    native = [c for c in pip_installs(setup) if c.startswith(".venv/")]
    defaults = build_arg_defaults(build_stage(stages, "full"))
    runs = " && ".join(build_stage(stages, "full").args("RUN"))
    image = pip_installs(expand_build_args(runs, defaults))
    assert len(native) == len(image) == 2
    # first the pinned CPU torch, the same pin, by default from the CPU wheel index
    assert pip_requirements(native[0]) == pip_requirements(image[0]) == ["torch==2.13.0"]
    assert shlex.split(image[0])[2:] == ["--index-url", TORCH_CPU_INDEX, "torch==2.13.0"]
    # then the package itself with the same extras, less the test tools and Ray (batch jobs
    # run in their own image, deploy/k8s/ray; the service never imports Ray)
    (native_pkg,), (image_pkg,) = pip_requirements(native[1]), pip_requirements(image[1])
    native_path, native_extras = extras(native_pkg)
    image_path, image_extras = extras(image_pkg)
    assert native_path == image_path == "."
    assert image_extras == native_extras - {"test", "ray"} == {"torch", "server", "crypto"}


def test_torch_source_is_a_build_argument(stages: list[Stage]) -> None:
    """What the container test passes where the CPU index is out of reach: pip's default index
    for torch's own requirements and a mounted directory holding the wheel."""
    runs = " && ".join(build_stage(stages, "full").args("RUN"))
    local = {"TORCH_INDEX_URL": "", "TORCH_FIND_LINKS": "/wheels"}
    (torch,) = [c for c in pip_installs(expand_build_args(runs, local)) if "torch==" in c]
    assert shlex.split(torch)[2:] == ["--find-links", "/wheels", "torch==2.13.0"]
