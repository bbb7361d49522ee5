"""Option groups: declared once, shown to typer as options of the command, rebuilt for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from marketpulse.cli import options
from marketpulse.cli.option_groups import flatten, grouped, option_group

Level = Annotated[int | None, typer.Option("--level"), options.Setting("lateness")]
Label = Annotated[str, typer.Option("--label")]


@option_group
@dataclass(frozen=True, slots=True)
class Knobs:
    level: Level = None
    label: Label = "plain"


def test_a_group_is_expanded_into_its_options_and_rebuilt_for_the_call():
    seen = []

    @grouped
    def command(name: str = typer.Option("x", "--name"), knobs: Knobs = Knobs()) -> None:
        seen.append((name, knobs))

    app = typer.Typer()
    app.command()(command)
    result = CliRunner().invoke(app, ["--name", "y", "--level", "3"])
    assert result.exit_code == 0, result.output
    assert seen == [("y", Knobs(level=3, label="plain"))]
    help_text = CliRunner().invoke(app, ["--help"]).output
    assert "--level" in help_text and "--label" in help_text and "--knobs" not in help_text


def test_the_settings_of_a_groups_options_are_overlaid(tmp_path):
    @grouped
    def command(knobs: Knobs = Knobs(), config: options.Config = None) -> None:
        pass

    arguments = {"knobs": Knobs(level=7), "config": tmp_path / "missing.toml"}
    assert flatten(arguments)["level"] == 7
    assert options.overlay(command, {"knobs": Knobs(level=7), "config": None}).lateness == 7.0


def test_an_option_declared_twice_is_refused_when_the_command_is_defined():
    with pytest.raises(TypeError, match="options declared twice: level"):

        @grouped
        def command(level: Level = None, knobs: Knobs = Knobs()) -> None:
            pass


def test_only_a_dataclass_can_be_a_group():
    with pytest.raises(TypeError, match="an option group is a dataclass"):
        option_group(int)
