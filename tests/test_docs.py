"""README stays true to the code: every setting documented, the quickstart commands exist."""

from __future__ import annotations

from pydantic import BaseModel

from paperchat.rag.settings import Settings

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    for name, field in Settings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            for sub in field.annotation.model_fields:
                assert f"`PAPERCHAT_{name.upper()}__{sub.upper()}`" in README, (name, sub)
        else:
            assert f"`PAPERCHAT_{name.upper()}`" in README, name


def test_quickstart_commands_exist_and_ci_runs_the_readme_test_command():
    assert "make chat" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert "\nchat:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_says_no_real_ollama_server_was_run():
    assert "No real Ollama server was run" in README
