"""Alerts: rules loaded from files, evaluated on closed bars, sent to notifiers.

>>> from marketpulse.alerts import AlertEngine, default_rules
>>> engine = AlertEngine(default_rules())
>>> alerts = engine.evaluate(columns)  # doctest: +SKIP
"""

from marketpulse.alerts.channels import Channel, Notifications, load_notifications
from marketpulse.alerts.engine import AlertEngine
from marketpulse.alerts.loading import default_rules, load_rules
from marketpulse.alerts.notifiers import JsonLinesNotifier, Notifier, Notifiers
from marketpulse.alerts.rules import (
    RULE_TYPES,
    BollingerRule,
    CrossRule,
    GapRule,
    HalfSpaceRule,
    IsolationForestRule,
    MacdCrossRule,
    PctChangeRule,
    PriceCrossRule,
    RobustZRule,
    RsiRule,
    Rule,
    StaleFeedRule,
    VolRegimeRule,
    VolumeSpikeRule,
)

__all__ = [
    "RULE_TYPES",
    "AlertEngine",
    "BollingerRule",
    "Channel",
    "CrossRule",
    "GapRule",
    "HalfSpaceRule",
    "IsolationForestRule",
    "JsonLinesNotifier",
    "MacdCrossRule",
    "Notifications",
    "Notifier",
    "Notifiers",
    "PctChangeRule",
    "PriceCrossRule",
    "RobustZRule",
    "RsiRule",
    "Rule",
    "StaleFeedRule",
    "VolRegimeRule",
    "VolumeSpikeRule",
    "default_rules",
    "load_notifications",
    "load_rules",
]
