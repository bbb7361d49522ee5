"""The web dashboard, REST API and Prometheus metrics, served by MarketPulse itself.

Example::

    from marketpulse.serve import Dashboard, ServeSettings

    with Dashboard.from_lake("data/lake", ServeSettings(port=8050)) as dashboard:
        print(dashboard.url)
"""

from marketpulse.serve.app import create_app
from marketpulse.serve.dashboard import Dashboard
from marketpulse.serve.exceptions import ServeError
from marketpulse.serve.lake_data import LakeData
from marketpulse.serve.market import LakeMarket, LiveMarket
from marketpulse.serve.server import DashboardServer
from marketpulse.serve.settings import ServeSettings
from marketpulse.serve.topics_feed import TopicsFeed

__all__ = [
    "Dashboard",
    "DashboardServer",
    "LakeData",
    "LakeMarket",
    "LiveMarket",
    "ServeError",
    "ServeSettings",
    "TopicsFeed",
    "create_app",
]
