"""Look one entry up across the catalogs, with its sources spelled out."""

from __future__ import annotations

from planner.catalog.loader import Catalog
from planner.errors import CatalogError, Problem, did_you_mean


def find_entry(catalog: Catalog, name: str) -> dict:
    tables = {
        "device": catalog.accelerators,
        "system": catalog.systems,
        "model": catalog.models,
        "family": catalog.families,
        "edge device": catalog.edge_devices,
        "edge family": catalog.edge_families,
        "serving engine": catalog.engines,
        "training framework": catalog.frameworks,
    }
    for kind, table in tables.items():
        if name in table:
            entry = table[name].model_dump(mode="json")
            return {"kind": kind, **entry, "sources": _sources(catalog, entry)}
    offers = [o for o in catalog.offerings if o.instance == name]
    if offers:
        return {"kind": "instance", "instance": name,
                "offerings": [o.model_dump(mode="json") | {"sources": _sources(catalog, o.model_dump(mode="json"))}
                              for o in offers]}
    names = [*catalog.accelerators, *catalog.systems, *catalog.models, *catalog.families, *catalog.edge_devices,
             *catalog.engines, *catalog.frameworks,
             *{o.instance for o in catalog.offerings}]
    raise CatalogError(Problem(f"nothing named `{name}` in the catalogs.{did_you_mean(name, names)}",
                               fix="see `planner catalog list devices|systems|models|prices|edge|engines|frameworks`"))


def _sources(catalog: Catalog, entry: dict) -> dict:
    """Sources cited anywhere in the entry (engines cite one per parameter)."""
    ids: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "source" and isinstance(value, list):
                    ids.extend(v for v in value if v not in ids)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(entry)
    return {sid: catalog.sources[sid].model_dump(mode="json") for sid in ids if sid in catalog.sources}
