"""The twin's live page (`dashboardUrl`): the canary, a rollout, the serverless half and the shop, updated each second.

`sampler` reads the running twin through the same readers as the CLI (`sections`), `history` turns cumulative
counters into rates and windows, `app` serves the page and a server-sent event stream, `server` runs both beside
the twin. The page (`static/`) draws with uPlot, vendored, so it works with no network.
"""

from local.dashboard.sampler import TwinView
from local.dashboard.server import Dashboard

__all__ = ["Dashboard", "TwinView"]
