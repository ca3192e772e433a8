"""WeightCard keeps every field of the card JSON it reads."""

from __future__ import annotations

import json

from ivfuse.models import WeightCard
from ivfuse.models.registry import weights_dir


def test_unknown_card_fields_survive_a_round_trip(tmp_path):
    doc = {"file": "x.safetensors", "sha256": "ab", "steps": 3, "metrics": {"tno/vifb/EN": 6.9},
           "training_command": "ivfuse train --preset cpu", "wall_seconds_640x480": 0.41,
           "baselines_tno": {"gff": {"vifb/EN": 7.1}}, "extra": "a field literally named extra"}
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    card = WeightCard.from_json(src)
    assert card.steps == 3 and card.metrics == {"tno/vifb/EN": 6.9}
    assert card.extra == {k: doc[k] for k in ("training_command", "wall_seconds_640x480", "baselines_tno", "extra")}
    out = card.to_dict()
    assert {k: out[k] for k in doc} == doc  # nothing lost, nothing changed
    assert "extra" not in WeightCard(file="y.safetensors").to_dict()
    again = tmp_path / "out.json"
    again.write_text(json.dumps(out))
    assert WeightCard.from_json(again) == card


def test_shipped_cards_round_trip_in_order():
    cards = sorted(weights_dir().glob("*.json"))
    assert cards, "the package ships weight cards"
    for path in cards:
        doc = json.loads(path.read_text())
        assert list(WeightCard.from_json(path).to_dict().items()) == list(doc.items()), path.name
