"""Conversion service: queue, limits, settings, charts; the layer every front end calls."""
