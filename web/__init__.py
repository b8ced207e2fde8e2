"""The web front end: the photo page, its JSON API, the admin dashboard, health and metrics.

`WebFrontEnd(runtime)` serves it on `settings.host:settings.port`; `make_app(runtime)` builds the
aiohttp application alone (tests use it with `aiohttp.test_utils.TestServer`).
"""

from web.app import WebFrontEnd, make_app

__all__ = ["WebFrontEnd", "make_app"]
