"""The pinned flag lists of every launcher (catalogs/launchers.yaml) and the check each emitted command
passes before it is written: every flag exists at that version, every choice is one the parser accepts.

The engines' own argument parsers do not import on a machine without their GPU packages (vLLM, SGLang and
TensorRT-LLM all pull CUDA builds of PyTorch), so the lists are read from each version's source, with the
file and line beside every flag.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import EmitError, Problem


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flag(_Entry):
    locator: str
    values: list[str] | None = None  # the parser's choices, when it has them


class Launcher(_Entry):
    id: str
    version: str
    source: str
    # Command-line flags (--name) and config-file keys (section.key) the version reads.
    flags: dict[str, Flag]
    images: dict[str, str] = {}  # vendor -> container image


class DevicePlugin(_Entry):
    resource: str
    source: str


class Launchers(_Entry):
    schema_version: Literal[1]
    launchers: list[Launcher]
    device_plugins: dict[str, DevicePlugin]
    skypilot_clouds: dict[str, str] = Field(description="catalog provider -> SkyPilot cloud name")

    def get(self, launcher_id: str, version: str) -> Launcher:
        for entry in self.launchers:
            if entry.id == launcher_id and entry.version == version:
                return entry
        raise EmitError(Problem(f"no flag list for {launcher_id} {version} in catalogs/launchers.yaml",
                                fix="add that version's flags with their source, or pin the version launchers.yaml has"))

    def image(self, launcher_id: str, version: str, vendor: str) -> str | None:
        """The container image published for this launcher's pinned version on the vendor's devices, if any."""
        images = next((e.images for e in self.launchers if e.id == launcher_id and e.version == version), {})
        return images.get(vendor)


def launchers_path() -> Path:
    from planner.catalog.loader import default_catalog_dir

    return default_catalog_dir() / "launchers.yaml"


@cache
def load_launchers() -> Launchers:
    import yaml

    return Launchers.model_validate(yaml.safe_load(launchers_path().read_text()))


def flag_problems(launcher: Launcher, argv: list[str]) -> list[str]:
    """Flags of `argv` the launcher's version does not have, or choices it does not accept."""
    problems = []
    for i, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        name, _, inline = token.partition("=")
        flag = launcher.flags.get(name)
        if flag is None:
            problems.append(f"{launcher.id} {launcher.version} has no flag {name}")
            continue
        value = inline or (argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None)
        if flag.values is not None and value is not None and value not in flag.values:
            problems.append(f"{launcher.id} {launcher.version}: {name} {value} is not one of {', '.join(flag.values)}")
    return problems


def key_problems(launcher: Launcher, keys: list[str]) -> list[str]:
    """Keys (section.key, or key=value overrides) the launcher's version does not read."""
    return [f"{launcher.id} {launcher.version} reads no setting {k}" for k in keys if k not in launcher.flags]


def check_launch(launchers: Launchers, launch) -> None:
    """Refuse to write a command the pinned version would reject (a bug in the emitter, never the user's):
    each launch lists the pieces it hands to which launcher (`checks`: launcher, version, argv or keys)."""
    problems = []
    for which, version, kind, items in launch.checks:
        entry = launchers.get(which, version)
        problems += flag_problems(entry, items) if kind == "argv" else key_problems(entry, items)
    if problems:
        raise EmitError([Problem(p, fix="report this: the emitted configuration would not start") for p in problems])
