"""The one check every YAML rules file passes before it is loaded: no aliases.

A YAML alias (``*name``) repeats an anchored value by reference; nested, a
few hundred bytes of aliases stand for gigabytes once anything walks, copies
or converts the value (the "billion laughs"). A rules file is short and
written by hand, so aliases buy nothing there: they are refused, with the
line of the first, before any value is built.
"""

from __future__ import annotations

import yaml

from marketpulse.exceptions import RulesError

__all__ = ["refuse_aliases"]


def refuse_aliases(text: str, source: str) -> None:
    """Raise if the YAML ``text`` holds an alias.

    Reads the parser's events only (no value is built), so it costs the
    text's length whatever the aliases would expand to.

    Raises:
        RulesError: ``<source>:<line>: ...`` naming the first alias.
        yaml.YAMLError: the text is not YAML (the caller says where).
    """
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise RulesError(
                f"{source}:{event.start_mark.line + 1}: YAML alias *{event.anchor} is not "
                "accepted in a rules file (an alias can expand without limit): write the value "
                "out in full"
            )
