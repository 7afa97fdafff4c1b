"""The analytical performance model: pure functions from a configuration to numbers with units.

No solver is imported here. Every efficiency factor comes from the device family in the catalog.
"""
