"""The promotion rule (pure) and its config."""

import pytest

from chatbot.autonomy import ceiling, evidence, next_mode, settle
from chatbot.config import AutonomyConfig

CFG = AutonomyConfig(min_drafts=20, min_unedited=0.9)


@pytest.mark.parametrize(
    ("current", "outcomes", "expected"),
    [
        ("draft", ["approved"] * 19, "draft"),  # one short of min_drafts
        ("draft", ["approved"] * 20, "auto"),
        ("draft", ["approved"] * 20 + ["thumbs_up"] * 5, "auto"),  # thumbs up are not drafts
        ("draft", ["approved"] * 30 + ["edited"], "shadow"),  # a correction demotes at once
        ("draft", ["approved"] * 30 + ["rejected"], "shadow"),
        ("auto", ["thumbs_down"], "draft"),
        ("auto", ["approved"] * 50, "auto"),  # nothing above auto
        ("shadow", ["approved"] * 18 + ["edited"] * 2, "draft"),  # 18/20 = 0.9 >= 0.9
        ("shadow", ["approved"] * 17 + ["edited"] * 3, "shadow"),  # 17/20 < 0.9
        ("shadow", ["approved"] * 25 + ["thumbs_down"], "shadow"),  # a 👎 blocks the promotion
        ("shadow", ["rejected"] * 5, "shadow"),  # nothing below shadow
    ],
)
def test_next_mode(current, outcomes, expected):
    assert next_mode(current, outcomes, CFG) == expected


def test_settle_restarts_the_evidence_at_each_change():
    outcomes = ["approved"] * 20 + ["thumbs_down"] + ["approved"] * 19 + ["approved"]
    # 20 approvals: draft -> auto (index 19); the 👎: auto -> draft (20); 20 more approvals: draft -> auto (40)
    assert settle("draft", outcomes, CFG) == [(19, "auto"), (20, "draft"), (40, "auto")]
    assert settle("draft", ["approved"] * 5, CFG) == []


def test_evidence_counts():
    ev = evidence(["approved", "approved", "edited", "rejected", "thumbs_down", "thumbs_up"])
    assert ev == {"drafts": 4, "unedited": 2, "unedited_share": 0.5, "corrections": 2, "thumbs_down": 1}


@pytest.mark.parametrize(
    ("mode", "routing", "expected"),
    [("auto", "auto", "auto"), ("auto", "draft_only", "draft"), ("shadow", "draft_only", "shadow"),
     ("draft", "off", "shadow"), ("draft", "auto", "draft")],
)  # fmt: skip
def test_ceiling(mode, routing, expected):
    assert ceiling(mode, routing) == expected


def test_bad_input_says_what_is_allowed():
    with pytest.raises(ValueError, match="unknown review outcome.*'liked'"):
        next_mode("draft", ["approved", "liked"], CFG)
    with pytest.raises(ValueError, match="unknown autonomy mode 'manual'"):
        next_mode("manual", [], CFG)
    with pytest.raises(ValueError, match="autonomy.min_unedited"):
        AutonomyConfig(min_unedited=90)
    with pytest.raises(ValueError, match="autonomy.min_drafts"):
        AutonomyConfig(min_drafts=0)
