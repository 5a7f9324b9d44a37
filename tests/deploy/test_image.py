"""The Dockerfiles, read without Docker: a non-root image with no development defaults.

There is no Docker daemon here, so the images are never built. These tests
read the Dockerfile and .dockerignore as Docker would (the build context, then
each COPY) and run the start-up check the image's commands begin with, in the
image's environment.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

import pytest

from tests.deploy.manifests import BASE, K8S, containers, pod_spec, render, workloads
from walletbot.settings import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
MODEL_DOCKERFILE = K8S / "model.Dockerfile"
PYTHON = str(PROJECT_ROOT / ".venv" / "bin" / "python")
IMAGE_USER = "10001"
# Files of the dev profile and of a developer's machine: none may reach the image.
DEV_ONLY = ["config/dev.env", "config/agents.dev.yml", ".env", ".env.example", "scripts/env.sh",
            "scripts/run.sh", "scripts/screenshots.py", "scripts/desk_screenshots.py",
            "docker-compose.yml", "Makefile"]
DEV_ONLY_FOLDERS = ["tests/", "var/", "models/", "bench/", ".venv/", ".git/", "deploy/"]


def instructions(path: Path) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def read_ignore(path: Path) -> List[Tuple[bool, str]]:
    """(negated, pattern) of a .dockerignore file."""
    patterns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        patterns.append((negated, pattern.strip("/")))
    return patterns


def _glob(pattern: str, path: str) -> bool:
    regex = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex += "(?:.*/)?"
            index += 3
        elif pattern.startswith("**", index):
            regex += ".*"
            index += 2
        elif pattern[index] == "*":
            regex += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            regex += "[^/]"
            index += 1
        else:
            regex += re.escape(pattern[index])
            index += 1
    return re.fullmatch(regex, path) is not None


def ignored(path: str, patterns: List[Tuple[bool, str]]) -> bool:
    """Docker's rule: the last pattern matching the path, or one of its folders, decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    result = False
    for negated, pattern in patterns:
        if any(_glob(pattern, prefix) for prefix in prefixes):
            result = not negated
    return result


def context_files(root: Path, patterns: List[Tuple[bool, str]]) -> Set[str]:
    """The files of a build context after its .dockerignore."""
    can_prune = not any(negated for negated, _ in patterns)
    files = set()
    for folder, dirs, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        relative = "" if relative == "." else relative + "/"
        if can_prune:
            dirs[:] = [d for d in dirs if not ignored(relative + d, patterns)]
        files.update(relative + name for name in names if not ignored(relative + name, patterns))
    return files


def copied(files: Iterable[str], dockerfile: Path) -> Set[str]:
    """The context files the Dockerfile's COPY instructions put into the image."""
    chosen = set()
    for word, rest in instructions(dockerfile):
        if word != "COPY":
            continue
        sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
        for source in sources:
            source = source.rstrip("/")
            chosen.update(f for f in files if f == source or f.startswith(source + "/")
                          or fnmatch.fnmatch(f, source))
    return chosen


@pytest.fixture(scope="module")
def image_files() -> Set[str]:
    files = context_files(PROJECT_ROOT, read_ignore(PROJECT_ROOT / ".dockerignore"))
    return copied(files, DOCKERFILE)


def test_the_ignore_reader_follows_dockers_rules():
    patterns = [(False, "var"), (False, "**/__pycache__"), (False, "*.egg-info"),
                (False, "config/dev.env"), (False, "*"), (True, "keep.txt")]
    assert ignored("var/prod/pg/x", patterns[:1])
    assert ignored("walletbot/channels/__pycache__/a.pyc", patterns[1:2])
    assert ignored("__pycache__/a.pyc", patterns[1:2])
    assert ignored("walletbot.egg-info/PKG-INFO", patterns[2:3])
    assert not ignored("walletbot/store/db.py", patterns[:4])
    assert not ignored("config/prod/prod.env", patterns[:4])
    assert ignored("anything", patterns) and not ignored("keep.txt", patterns)


def test_the_image_holds_no_development_defaults(image_files):
    assert image_files, "nothing copied?"
    for path in DEV_ONLY:
        assert path not in image_files, path
    for folder in DEV_ONLY_FOLDERS:
        assert not [f for f in image_files if f.startswith(folder)], folder
    assert not [f for f in image_files if f.endswith((".pyc", ".env.example"))
                or "__pycache__" in f]
    # The same check finds them when .dockerignore stops leaving them out.
    careless = context_files(PROJECT_ROOT, [p for p in read_ignore(PROJECT_ROOT / ".dockerignore")
                                            if "dev" not in p[1]])
    assert {"config/dev.env", "config/agents.dev.yml"} <= copied(careless, DOCKERFILE)


def test_the_image_holds_what_production_runs(image_files):
    needed = {"pyproject.toml", "requirements.txt", "constraints.txt", "config.yml",
              "domain.yml", "credentials.yml", "config/prod/endpoints.yml",
              "scripts/prod/bootstrap.py", "walletbot/settings.py", "walletbot/server.py",
              "actions/__init__.py", "data/desk/canned.yml", "data/faq/_placeholders.yml"}
    assert needed <= image_files, sorted(needed - image_files)
    # Every file the Kubernetes commands name is in the image.
    named = set()
    for workload in workloads(render(BASE)):
        for container in containers(workload):
            if container["image"].split("/")[-1].startswith("walletbot:"):
                named.update(re.findall(r"(?:scripts|config)/[\w./-]+\.(?:py|yml)",
                                        " ".join(container["command"])))
    assert "scripts/prod/bootstrap.py" in named and "config/prod/endpoints.yml" in named
    assert named <= image_files, sorted(named - image_files)


def test_the_image_runs_as_a_numeric_non_root_user():
    steps = instructions(DOCKERFILE)
    users = [rest for word, rest in steps if word == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it; the pods' runAsUser.
    assert uid == gid == IMAGE_USER
    assert any(word == "RUN" and f"--uid {IMAGE_USER} --gid {IMAGE_USER}" in rest
               and f"groupadd --system --gid {IMAGE_USER}" in rest for word, rest in steps)
    assert [word for word, _ in steps].index("USER") > max(
        i for i, (word, _) in enumerate(steps) if word == "RUN")  # nothing runs as root after
    for workload in workloads(render(BASE)):
        assert str(pod_spec(workload)["securityContext"]["runAsUser"]) == IMAGE_USER


def test_the_image_is_marked_and_skips_the_test_tools():
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(
        rest for word, rest in instructions(DOCKERFILE) if word == "ENV")))
    assert env["WALLETBOT_IN_IMAGE"] == "1" and env["WALLETBOT_ENV"] == "production"
    install = next(rest for word, rest in instructions(DOCKERFILE)
                   if word == "RUN" and "requirements.txt" in rest)
    left_out = re.search(r"grep -v -E '\^\(([^)]*)\)=='", install).group(1).split("|")
    assert {"pytest", "playwright", "kubernetes-validate"} <= set(left_out)
    cmd = next(rest for word, rest in instructions(DOCKERFILE) if word == "CMD")
    assert "python -m walletbot.settings &&" in cmd


def image_environment(**overrides: str) -> Dict[str, str]:
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(
        rest for word, rest in instructions(DOCKERFILE) if word == "ENV")))
    env["PATH"] = os.environ["PATH"]  # the image's PATH names its own venv
    env.update(overrides)
    return env


@pytest.mark.parametrize("profile", ["dev", "prod", ""])
def test_the_start_up_check_refuses_the_dev_profile_in_the_image(profile):
    done = subprocess.run([PYTHON, "-m", "walletbot.settings"], cwd=PROJECT_ROOT,
                          env=image_environment(WALLETBOT_ENV=profile), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "inside the walletbot image" in done.stderr and "WALLETBOT_IN_IMAGE=1" in done.stderr


def test_outside_the_image_the_dev_profile_still_starts():
    env = image_environment(WALLETBOT_ENV="dev")
    del env["WALLETBOT_IN_IMAGE"]
    done = subprocess.run([PYTHON, "-m", "walletbot.settings"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_model_image_holds_the_served_model_only():
    steps = instructions(MODEL_DOCKERFILE)
    base_image = next(rest for word, rest in steps if word == "FROM")
    assert re.fullmatch(r"busybox:\d+\.\d+\.\d+", base_image)  # pinned, and it has `cp`
    assert ("USER", f"{IMAGE_USER}:{IMAGE_USER}") in steps
    patterns = read_ignore(MODEL_DOCKERFILE.with_name(MODEL_DOCKERFILE.name + ".dockerignore"))
    names = ["walletbot.tar.gz", "walletbot-20261202-061200-abc123.tar.gz",
             "walletbot-20261202-061200-abc123.json", "history/log.jsonl",
             "history/walletbot-old.tar.gz", ".gitkeep"]
    assert [n for n in names if not ignored(n, patterns)] == ["walletbot.tar.gz"]
    assert copied(["walletbot.tar.gz"], MODEL_DOCKERFILE) == {"walletbot.tar.gz"}
