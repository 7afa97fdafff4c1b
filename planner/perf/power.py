"""Power, energy, carbon and cost of a configuration.

Device power = TDP x (idle + (full - idle) x utilisation), with the idle and full-load fractions of the
device family; node power beyond the accelerators (host_power_w) is added per node when the catalog
knows it. Energy at the meter multiplies by the region's PUE; carbon multiplies by the grid intensity.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.schema import Accelerator, DeviceFamily, Offering, Region, System
from planner.units import HOUR_S, ceil_div


def device_power_w(device: Accelerator, family: DeviceFamily, utilization: float) -> float | None:
    if device.tdp_w is None:
        return None
    u = min(max(utilization, 0.0), 1.0)
    idle, full = family.power_at_idle.value, family.power_at_full_load.value
    return device.tdp_w * (idle + (full - idle) * u)


def it_power_w(device: Accelerator, family: DeviceFamily, system: System, devices: int,
               utilization: float) -> float | None:
    per_device = device_power_w(device, family, utilization)
    if per_device is None:
        return None
    nodes = ceil_div(devices, system.devices_per_node)
    return per_device * devices + (system.host_power_w or 0.0) * nodes


@dataclass(frozen=True)
class Economics:
    usd_per_hour: float | None
    billed_units: int | None
    energy_kwh_per_hour: float | None
    carbon_kg_per_hour: float | None
    pue: float | None
    commitment_hours: float = 0.0  # a reservation's term: a shorter job still pays all of it

    def per_job(self, hours: float | None) -> dict[str, float | None]:
        def scale(x: float | None, billed: float | None) -> float | None:
            return None if x is None or billed is None else x * billed
        billed = None if hours is None else max(hours, self.commitment_hours)
        return {"usd": scale(self.usd_per_hour, billed), "energy_kwh": scale(self.energy_kwh_per_hour, hours),
                "carbon_kg": scale(self.carbon_kg_per_hour, hours)}


@dataclass(frozen=True)
class SiteFacts:
    """Where the energy is drawn: PUE, grid intensity and (for owned hardware) the electricity price."""

    pue: float | None
    grid_gco2_per_kwh: float | None
    electricity_usd_per_kwh: float | None = None

    @classmethod
    def of_region(cls, region: Region | None) -> "SiteFacts":
        if region is None:
            return cls(None, None, None)
        return cls(region.pue.value if region.pue else None,
                   region.grid_gco2_per_kwh.value if region.grid_gco2_per_kwh else None,
                   region.electricity_usd_per_kwh.value if region.electricity_usd_per_kwh else None)


def economics(devices: int, power_w: float | None, offering: Offering | None, site: SiteFacts) -> Economics:
    """Cloud rows pay the offering's price; owned rows (no offering) pay their electricity."""
    energy = power_w / 1000.0 * site.pue if power_w is not None and site.pue is not None else None
    carbon = energy * site.grid_gco2_per_kwh / 1000.0 if energy is not None and site.grid_gco2_per_kwh is not None else None
    if offering is not None:
        units = ceil_div(devices, offering.devices)
        usd = units * offering.usd_per_hour
    else:
        units = None
        usd = energy * site.electricity_usd_per_kwh if energy is not None and site.electricity_usd_per_kwh else None
    return Economics(usd_per_hour=usd, billed_units=units, energy_kwh_per_hour=energy, carbon_kg_per_hour=carbon,
                     pue=site.pue, commitment_hours=offering.commitment_hours if offering is not None else 0.0)


def usd_per_million_tokens(usd_per_hour: float | None, tokens_per_s: float | None) -> float | None:
    if usd_per_hour is None or not tokens_per_s:
        return None
    return usd_per_hour / (tokens_per_s * HOUR_S / 1e6)
