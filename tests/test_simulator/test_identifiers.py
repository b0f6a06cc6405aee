"""The simulator's port of Harness's group-identifier rule (harness-api.md 2.2-2.6)."""

from __future__ import annotations

import pytest

from collectors.simulator.identifiers import group_identifier, identifier_problem


@pytest.mark.parametrize(
    ("name", "legacy", "new"),
    [
        ("example-group", "example_group", "example_group"),
        ("Dev Team", "Dev_Team", "Dev_Team"),
        ("Dev-Team", "Dev_Team", "Dev_Team"),
        ("dev.team", "dev_team", "dev_team"),
        ("Team (Prod)", "Team_Prod", "Team_Prod"),
        ("Ops/SRE", "OpsSRE", "OpsSRE"),
        ("grp@corp", "grpcorp", "grpcorp"),
        ("Équipe Été", "Equipe_Ete", "Equipe_Ete"),
        ("-test", "_test", "_test"),
        (".test", "_test", "_test"),
        ("5test", "test", "test_870ce581"),
        ("123 Team", "_Team", "_Team_30fe2bf3"),
        ("456 Team", "_Team", "_Team_0003c561"),
        ("1-abc", "_abc", "_abc_5ebbff0d"),
        ("$%^abc.ksxjx_+$++&UII J", "abc_ksxjx_$UII_J", "abc_ksxjx_$UII_J"),
        ("test$", "test$", "test$"),
        ("日本語", "", ""),
    ],
)
def test_identifier_matches_the_documented_examples(name: str, legacy: str, new: str) -> None:
    assert group_identifier(name, "core-2023-12") == legacy
    assert group_identifier(name, "core-new") == new


@pytest.mark.parametrize(
    ("identifier", "problem"),
    [("", "cannot be empty"), ("org", "org is a keyword, so cannot be used"), ("Dev_Team", None)],
)
def test_identifier_validation(identifier: str, problem: str | None) -> None:
    assert identifier_problem(identifier) == problem
