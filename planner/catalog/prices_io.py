"""Fresher prices and price scenarios, applied on top of the shipped (dated) catalog.

- `read_skypilot_csv`: a SkyPilot-style catalog CSV (InstanceType, AcceleratorName, AcceleratorCount,
  Price, SpotPrice, Region; optional Cloud) becomes offerings. Each row names an instance the catalog
  already knows (so its system is known) or an accelerator the catalog knows with a node of that size.
  Rows the catalog cannot place are reported, not guessed. Prices read this way cite the file and its date.
- `apply_scenario`: a YAML file of rules that scale or replace prices (spot -60%, a negotiated discount, a
  new region), so a buyer sees when the answer flips.

Bad input names the file, the row (or rule) and the column, with a fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

from pydantic import Field, ValidationError

from planner.strict import Strict
from planner.catalog.loader import Catalog
from planner.catalog.schema import PRICING_MODELS, Offering, Source
from planner.errors import CatalogError, Problem, did_you_mean
from planner.yamlio import MAX_TABLE_BYTES, load_yaml, read_text, validation_problems

REQUIRED_COLUMNS = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "Region")
# No accelerator instance lists near this per hour; a larger figure is a unit slip (cents, per month).
MAX_USD_PER_HOUR = 10_000.0
MAX_DEVICES_PER_INSTANCE = 1024

# SkyPilot's accelerator names -> catalog ids (names SkyPilot uses in its vms.csv files).
ACCELERATOR_ALIASES = {
    "a100": "a100-40gb", "a100-80gb": "a100-80gb", "h100": "h100-sxm", "h100-mega": "h100-sxm",
    "h200": "h200-sxm", "b200": "b200", "gb200": "gb200", "l4": "l4", "l40s": "l40s", "a10g": "a10g",
    "t4": "t4", "v100": "v100", "mi300x": "mi300x", "mi325x": "mi325x", "inferentia2": "inferentia2",
    "trainium": "trainium1", "trainium2": "trainium2", "tpu-v5e": "tpu-v5e", "tpu-v5p": "tpu-v5p",
    "tpu-v6e": "tpu-v6e", "gaudi2": "gaudi2", "gaudi3": "gaudi3",
}


def _number(text: str, file: str, row: int, column: str, allow_empty: bool = False) -> float | None:
    text = (text or "").strip()
    if not text and allow_empty:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CatalogError(Problem(f"column {column}: {text!r} is not a number", file=file, line=row,
                                   fix=f"give {column} as a finite number (or leave SpotPrice empty)"))
    if value <= 0:
        raise CatalogError(Problem(f"column {column}: {value} must be positive", file=file, line=row,
                                   fix=f"give {column} in USD per hour"))
    limit = MAX_DEVICES_PER_INSTANCE if column == "AcceleratorCount" else MAX_USD_PER_HOUR
    if value > limit:
        raise CatalogError(Problem(f"column {column}: {value:g} is too large (at most {limit:g})", file=file,
                                   line=row, fix=f"give {column} per instance" + ("" if column == "AcceleratorCount"
                                                                                  else " and hour, in USD")))
    return value


def _system_for(catalog: Catalog, instance: str, device: str, count: int) -> str | None:
    known = next((o.system for o in catalog.offerings if o.instance == instance), None)
    if known:
        return known
    fitting = sorted((s for s in catalog.systems_for(device) if s.devices_per_node == count), key=lambda s: s.id)
    return fitting[0].id if fitting else None


def read_skypilot_csv(path: Path, catalog: Catalog, provider: str | None = None) -> tuple[list[Offering], list[str]]:
    """Offerings from a SkyPilot-style CSV, and the rows that could not be placed (with why)."""
    name = str(path)
    text = read_text(path, CatalogError, MAX_TABLE_BYTES)
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise CatalogError(Problem(f"missing column(s) {', '.join(missing)}", file=name, line=1,
                                   fix=f"the header needs {', '.join(REQUIRED_COLUMNS)} (SpotPrice and Cloud "
                                       "are optional)"))
    as_of = dt.date.fromtimestamp(path.stat().st_mtime)
    source_id = f"file:{path.name}"
    offerings: dict[tuple, Offering] = {}
    first_row: dict[tuple, int] = {}
    skipped = []
    width = len(reader.fieldnames or [])
    for row_no, row in enumerate(reader, start=2):
        if None in row or None in row.values():
            given = width - sum(v is None for v in row.values()) + len(row.get(None) or [])
            raise CatalogError(Problem(f"{given} columns where the header has {width}", file=name, line=row_no,
                                       fix="give every column of the header (leave SpotPrice empty, not out)"))
        accel = (row.get("AcceleratorName") or "").strip()
        if not accel:
            continue  # CPU-only instances
        device = ACCELERATOR_ALIASES.get(accel.lower(), accel.lower())
        if device not in catalog.accelerators:
            skipped.append(f"row {row_no}: accelerator {accel!r} is not in the catalog")
            continue
        count_value = _number(row["AcceleratorCount"], name, row_no, "AcceleratorCount")
        count = int(count_value)
        if count != count_value:
            raise CatalogError(Problem(f"column AcceleratorCount: {count_value} is not a whole number", file=name,
                                       line=row_no, fix="give the accelerators per instance"))
        instance = row["InstanceType"].strip()
        system = _system_for(catalog, instance, device, count)
        if system is None:
            skipped.append(f"row {row_no}: no {count}-device system of {device} in the catalog for {instance}")
            continue
        cloud = (row.get("Cloud") or provider or path.stem).strip().lower()
        region = row["Region"].strip()
        if not region:
            raise CatalogError(Problem("column Region is empty", file=name, line=row_no, fix="name the region"))
        price = _number(row["Price"], name, row_no, "Price")
        spot = _number(row.get("SpotPrice", ""), name, row_no, "SpotPrice", allow_empty=True)
        for pricing, value in (("on-demand", price), ("spot", spot)):
            if value is None:
                continue
            key = (cloud, region, instance, pricing)
            earlier = offerings.get(key)
            if earlier is not None and earlier.usd_per_hour != value:
                raise CatalogError(Problem(
                    f"{pricing} price of {instance} in {cloud} {region} is {value:g} here and {earlier.usd_per_hour:g} "
                    f"in row {first_row[key]}", file=name, line=row_no,
                    fix="keep one row per instance, region and pricing"))
            first_row.setdefault(key, row_no)
            # The user's own file: the prices they pay, so trusted as given.
            offerings[key] = Offering(provider=cloud, region=region, instance=instance, system=system, devices=count,
                                      pricing=pricing, usd_per_hour=value, source=[source_id], as_of=as_of,
                                      confidence="high", notes=f"{name} row {row_no}")
    return list(offerings.values()), skipped


def with_prices(catalog: Catalog, offerings: list[Offering], label: str) -> Catalog:
    """The catalog with these offerings replacing any of the same provider, region, instance and pricing."""
    key = lambda o: (o.provider, o.region, o.instance, o.pricing)  # noqa: E731
    fresh = {key(o): o for o in offerings}
    kept = [o for o in catalog.offerings if key(o) not in fresh]
    sources = dict(catalog.sources)
    for o in offerings:
        sources.setdefault(o.source[0], Source(title=f"user price file {label}", url=None, as_of=o.as_of))
    return replace(catalog, offerings=tuple(kept + list(fresh.values())), sources=sources)


# ------------------------------------------------------------------------------------------- scenarios




class Match(Strict):
    provider: str | None = None
    region: str | None = None
    instance: str | None = None
    device: str | None = None
    pricing: str | None = None


class PriceRule(Strict):
    match: Match = Match()
    scale: float | None = Field(default=None, gt=0, description="multiply the price (0.4 = 60% off)")
    usd_per_device_hour: float | None = Field(default=None, gt=0, description="replace the price")


class NewOffering(Strict):
    provider: str
    region: str
    instance: str
    system: str
    devices: int = Field(ge=1)
    pricing: str = "on-demand"
    usd_per_hour: float = Field(gt=0)


class PriceScenario(Strict):
    name: str
    description: str | None = None
    rules: list[PriceRule] = []
    add: list[NewOffering] = []


def _matches(rule: PriceRule, o: Offering, catalog: Catalog) -> bool:
    m = rule.match
    device = catalog.systems[o.system].accelerator
    return all(want is None or want == have for want, have in (
        (m.provider, o.provider), (m.region, o.region), (m.instance, o.instance), (m.device, device),
        (m.pricing, o.pricing)))


def _unmatched(rule: PriceRule, index: int, catalog: Catalog, file: str, doc) -> Problem:
    """Why a rule matches no offering: the first field naming something the catalog does not have, else the mix."""
    known = {"provider": {o.provider for o in catalog.offerings}, "region": {o.region for o in catalog.offerings},
             "instance": {o.instance for o in catalog.offerings}}
    for field_name, names in known.items():
        want = getattr(rule.match, field_name)
        if want is not None and want not in names:
            return Problem(f"unknown {field_name} `{want}`.{did_you_mean(want, sorted(names))}", file=file,
                           path=f"rules[{index}].match.{field_name}",
                           line=doc.line_of(("rules", index, "match", field_name)),
                           fix="see `planner catalog list prices`")
    return Problem("matches no offering in the catalog", file=file, path=f"rules[{index}].match",
                   line=doc.line_of(("rules", index, "match")),
                   fix="loosen the match; `planner catalog list prices` shows what exists")


def apply_scenario(catalog: Catalog, path: Path) -> tuple[Catalog, PriceScenario]:
    doc = load_yaml(path, CatalogError)
    try:
        scenario = PriceScenario.model_validate(doc.data if isinstance(doc.data, dict) else {})
    except ValidationError as exc:
        raise CatalogError(validation_problems(exc, doc, PriceScenario)) from None
    problems = []
    for i, rule in enumerate(scenario.rules):
        if (rule.scale is None) == (rule.usd_per_device_hour is None):
            problems.append(Problem("give exactly one of scale or usd_per_device_hour", file=str(path),
                                    path=f"rules[{i}]", line=doc.line_of(("rules", i)), fix="keep one of the two"))
        if rule.match.device and rule.match.device not in catalog.accelerators:
            problems.append(Problem(f"unknown device `{rule.match.device}`."
                                    f"{did_you_mean(rule.match.device, catalog.accelerators)}", file=str(path),
                                    path=f"rules[{i}].match.device", line=doc.line_of(("rules", i, "match", "device")),
                                    fix="see `planner catalog list devices`"))
        if rule.match.pricing and rule.match.pricing not in PRICING_MODELS:
            problems.append(Problem(f"unknown pricing `{rule.match.pricing}`", file=str(path),
                                    path=f"rules[{i}].match.pricing", fix=f"one of {', '.join(PRICING_MODELS)}"))
    for i, new in enumerate(scenario.add):
        if new.system not in catalog.systems:
            problems.append(Problem(f"unknown system `{new.system}`.{did_you_mean(new.system, catalog.systems)}",
                                    file=str(path), path=f"add[{i}].system", line=doc.line_of(("add", i, "system")),
                                    fix="see `planner catalog list systems`"))
        if new.pricing not in PRICING_MODELS:
            problems.append(Problem(f"unknown pricing `{new.pricing}`", file=str(path), path=f"add[{i}].pricing",
                                    fix=f"one of {', '.join(PRICING_MODELS)}"))
    if problems:
        raise CatalogError(problems)
    for i, rule in enumerate(scenario.rules):
        if not any(_matches(rule, o, catalog) for o in catalog.offerings):
            problems.append(_unmatched(rule, i, catalog, str(path), doc))
    if problems:
        raise CatalogError(problems)
    source_id = f"scenario:{scenario.name}"
    as_of = dt.date.fromtimestamp(path.stat().st_mtime)
    offerings = []
    for o in catalog.offerings:
        for rule in scenario.rules:
            if _matches(rule, o, catalog):
                price = o.usd_per_hour * rule.scale if rule.scale else rule.usd_per_device_hour * o.devices
                o = o.model_copy(update={"usd_per_hour": price, "source": [*o.source, source_id],
                                         "notes": f"{o.notes or ''} [price from scenario {scenario.name}]".strip()})
        offerings.append(o)
    for new in scenario.add:
        offerings.append(Offering(**new.model_dump(), source=[source_id], as_of=as_of, confidence="high",
                                  notes=f"added by scenario {scenario.name}"))
    sources = {**catalog.sources, source_id: Source(title=f"price scenario {scenario.name} ({path.name})",
                                                    url=None, as_of=as_of)}
    return replace(catalog, offerings=tuple(offerings), sources=sources), scenario
