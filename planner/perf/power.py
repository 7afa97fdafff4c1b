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

    def per_job(self, hours: float | None) -> dict[str, float | None]:
        def scale(x: float | None) -> float | None:
            return None if x is None or hours is None else x * hours
        return {"usd": scale(self.usd_per_hour), "energy_kwh": scale(self.energy_kwh_per_hour),
                "carbon_kg": scale(self.carbon_kg_per_hour)}


def economics(devices: int, power_w: float | None, offering: Offering | None, region: Region | None) -> Economics:
    units = ceil_div(devices, offering.devices) if offering else None
    usd = units * offering.usd_per_hour if offering else None
    pue = region.pue.value if region and region.pue else None
    energy = power_w / 1000.0 * pue if power_w is not None and pue is not None else None
    carbon = None
    if energy is not None and region and region.grid_gco2_per_kwh:
        carbon = energy * region.grid_gco2_per_kwh.value / 1000.0
    return Economics(usd_per_hour=usd, billed_units=units, energy_kwh_per_hour=energy, carbon_kg_per_hour=carbon, pue=pue)


def usd_per_million_tokens(usd_per_hour: float | None, tokens_per_s: float | None) -> float | None:
    if usd_per_hour is None or not tokens_per_s:
        return None
    return usd_per_hour / (tokens_per_s * HOUR_S / 1e6)
