"""The site computer's own work for a vision workload on an edge device: decoding the camera streams, and
running the operators the accelerator leaves to its CPU.

The computer is the add-on card's host (the Pi 5 under a Hailo HAT or a Coral stick) or the device itself
(a Jetson, a Mac mini). Per unit, with the streams spread evenly over the units:
    decoder load = pixel rate / the hardware decoders' pixel rate for the stream's codec
    CPU load     = pixel rate / (cores x software decode rate per core)    (no hardware decoder for the codec)
                   + the share of the CPU the fallback operators keep busy
    load         = max(decoder load, CPU load)          (`site.video_decode` holds it within the headroom)
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.catalog.schema import EdgeDevice
from planner.perf.edge import EdgeTarget
from planner.tier.spec import VisionTierWorkload


@dataclass(frozen=True)
class HostLoad:
    load: float  # the busier of the decoder and the CPU, as a share of one unit's
    decoder: str  # what decodes: "hardware", "software" or "none" (frames arrive decoded)


def host_load(w: VisionTierWorkload, target: EdgeTarget, units: int, fallback_cpu_share: float) -> HostLoad | str:
    """One unit's host load, or why the catalog cannot say (no decoder or CPU figures for the codec)."""
    computer: EdgeDevice = target.host or target.device
    codec = w.video.codec
    pixels = w.streams * w.fps * w.video.resolution[0] * w.video.resolution[1] / units
    if codec == "none":
        return HostLoad(fallback_cpu_share, "none")
    hardware = sum(d.pixels_per_s for d in computer.video_decoders if d.codec == codec)
    if hardware:
        return HostLoad(max(pixels / hardware, fallback_cpu_share), "hardware")
    per_core = computer.software_decode_pixels_per_s_per_core.get(codec)
    if per_core is None or computer.cpu_cores is None:
        return (f"{computer.id} has no {codec.upper()} hardware decoder or software decode rate in the catalog "
                f"(set workloads[].video.codec: none if frames arrive decoded)")
    return HostLoad(pixels / (computer.cpu_cores * per_core.value) + fallback_cpu_share, "software")
