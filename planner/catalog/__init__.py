"""Catalogs of accelerators, systems, models and prices, and the topology graphs built from them."""
