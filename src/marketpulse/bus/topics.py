"""The topics of MarketPulse, as DESIGN.md lists them, and their settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FORECAST_TOPICS",
    "NEWS_TOPICS",
    "OPTIONAL_TOPICS",
    "OUTPUT_TOPICS",
    "PLUGIN_TOPICS",
    "QUOTE_TOPICS",
    "TOPICS",
    "TRADE_TOPICS",
    "TopicSpec",
    "Topics",
    "topic_specs",
]

#: Every topic, by its name without the prefix.
TOPICS = ("ticks", "bars", "indicators", "alerts", "dlq", "state", "custom", "trades", "quotes",
          "predictions", "news")  # fmt: skip

#: The processor's outputs, which sinks consume (the lake table has the same name).
OUTPUT_TOPICS = ("bars", "indicators", "alerts", "dlq")

#: The outputs of users' plugins (:mod:`marketpulse.plugins`): created with the
#: others; the process service requires them only when plugins are configured,
#: and sinks consume them when they exist.
PLUGIN_TOPICS = ("custom",)

#: The trades the processor kept (what ``run``/``replay`` store as the lake's
#: ``trades``): created with the others; the process service writes and requires
#: it unless ``[process] store_trades`` is off, and sinks consume it when it exists.
TRADE_TOPICS = ("trades",)

#: The feed's quotes, which the process service passes on as they came (the lake's
#: ``quotes``) where the topic exists. Quotes reach it as columns (the in-memory
#: bus); on Kafka the processor reads them for the bars' quote columns
#: (:mod:`marketpulse.stream.quote_windows`) but does not pass them on yet.
QUOTE_TOPICS = ("quotes",)

#: The forecasts of the stream's models (:mod:`marketpulse.forecast.stage`): created
#: with the others; the process service requires it only when models are configured,
#: and sinks consume it when it exists.
FORECAST_TOPICS = ("predictions",)

#: Headlines (:mod:`marketpulse.news`), scored as they arrived: ``marketpulse news
#: --kafka`` writes them, keyed by symbol, and sinks consume them where the topic exists.
#: They pass by the process service: a headline changes no bar or indicator.
NEWS_TOPICS = ("news",)

#: The outputs sinks consume only where the topic exists.
OPTIONAL_TOPICS = (*PLUGIN_TOPICS, *TRADE_TOPICS, *QUOTE_TOPICS, *FORECAST_TOPICS, *NEWS_TOPICS)


@dataclass(frozen=True, slots=True)
class Topics:
    """Full topic names under one prefix (``marketpulse.`` by default)."""

    prefix: str = "marketpulse."

    def name(self, topic: str) -> str:
        """Return the full name of ``topic`` (one of :data:`TOPICS`)."""
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r} (known: {', '.join(TOPICS)})")
        return self.prefix + topic

    def table(self, name: str) -> str:
        """Return the short name (and lake table) of a full topic name."""
        short = name[len(self.prefix) :] if name.startswith(self.prefix) else name
        if short not in TOPICS:
            raise ValueError(f"{name} is not a MarketPulse topic under prefix {self.prefix!r}")
        return short

    @property
    def ticks(self) -> str:
        """The input topic."""
        return self.prefix + "ticks"

    @property
    def state(self) -> str:
        """The processor's compacted state topic."""
        return self.prefix + "state"

    @property
    def outputs(self) -> list[str]:
        """The processor's output topics."""
        return [self.prefix + t for t in OUTPUT_TOPICS]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How one topic is created."""

    name: str
    config: dict[str, str]


def topic_specs(
    topics: Topics, retention_hours: float = 168.0, state_segment_mb: int = 64
) -> list[TopicSpec]:
    """Return every topic with its settings.

    Data topics delete records after ``retention_hours`` (``-1``: keep
    forever). ``state`` is compacted: only the latest state of each symbol
    stays, however old.
    """
    retention = "-1" if retention_hours < 0 else str(int(retention_hours * 3_600_000))
    specs = []
    for short in TOPICS:
        if short == "state":
            config = {
                "cleanup.policy": "compact",
                "segment.bytes": str(state_segment_mb * 1024 * 1024),
                "min.cleanable.dirty.ratio": "0.1",
            }
        else:
            config = {"cleanup.policy": "delete", "retention.ms": retention}
        specs.append(TopicSpec(topics.name(short), config))
    return specs
