"""What the statistics front ends render (`ConversionService.stats`, `recent_failures`), so
a front end names these types without importing storage."""

from storage import Failure, StatsSummary

__all__ = ["Failure", "StatsSummary"]
