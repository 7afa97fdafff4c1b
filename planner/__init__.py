"""planner: choose devices, clouds and parallel layouts for AI workloads, and explain the choice."""

__version__ = "0.1.0"
