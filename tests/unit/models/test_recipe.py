"""The training recipe's parts on small inputs: class weights, bucketed batches, layer-wise decay and
the teacher's labels (the shipped model is the teacher here, as in the README's command)."""

import random

import pytest
import torch
from torch import nn

from models.dataset import Example
from models.settings import DEFAULT_MODEL_DIR
from models.training.recipe import (
    add_teacher_labels,
    bucketed_batches,
    class_weights,
    long_examples,
    parameter_groups,
)


def test_rare_classes_weigh_more_and_the_average_example_weighs_one() -> None:
    examples = [Example(f"n{i}", sentiment="negative") for i in range(10)]
    examples += [Example(f"u{i}", sentiment="neutral") for i in range(90)]
    weights = class_weights(examples, "sentiment", power=0.5)
    negative, neutral, positive = weights.tolist()
    assert negative == pytest.approx(3 * neutral)  # (10 / 90) ** -0.5
    assert positive == pytest.approx(neutral / (90 / 50) ** -0.5)  # unseen: raw weight 1, scaled alike
    assert (10 * negative + 90 * neutral) / 100 == pytest.approx(1.0)
    assert class_weights(examples, "sentiment", power=0).tolist() == [1.0, 1.0, 1.0]


def test_guessed_labels_do_not_count_towards_class_weights() -> None:
    people = [Example("a", sentiment="negative"), Example("b", sentiment="neutral")]
    guessed = [Example(f"g{i}", sentiment="neutral", guessed={"sentiment"}) for i in range(50)]
    assert class_weights(people + guessed, "sentiment", 1.0).tolist()[:2] == pytest.approx([1.0, 1.0])


def test_batches_cover_every_example_once_with_similar_lengths() -> None:
    rng = random.Random(1)
    examples = [Example("w " * rng.randint(1, 60)) for _ in range(1000)]
    batches = bucketed_batches(examples, 32, random.Random(2))
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    spread = [max(len(examples[i].text) for i in b) - min(len(examples[i].text) for i in b) for b in batches]
    assert sorted(spread)[len(spread) // 2] < 10  # a random batch would span nearly the whole range
    assert batches != bucketed_batches(examples, 32, random.Random(3))


def test_lower_layers_learn_slower_and_norms_have_no_weight_decay() -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Module()
            self.encoder.embeddings = nn.Embedding(10, 4)
            self.encoder.encoder = nn.Module()
            self.encoder.encoder.layer = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
            self.topic = nn.Linear(4, 2)

    groups = parameter_groups(Tiny(), 1.0, 0.01, 0.5)
    by_lr = {round(g["lr"], 4): g for g in groups}
    assert sorted(by_lr) == [0.125, 0.25, 0.5, 1.0]  # embeddings, layer 0, layer 1, head
    assert {g["weight_decay"] for g in groups if all(p.ndim == 1 for p in g["params"])} == {0.0}
    assert sum(len(g["params"]) for g in groups) == 7


def test_the_teacher_fills_only_the_missing_head_where_it_is_sure() -> None:
    examples = [
        Example("Acme shares plunge 40% after fraud probe", topic="Stock Movement"),
        Example("Acme beats estimates and raises guidance", sentiment="positive"),
    ]
    added = add_teacher_labels(examples, DEFAULT_MODEL_DIR, threshold=0.5)
    assert examples[0].sentiment == "negative" and examples[0].guessed == {"sentiment"}
    assert examples[0].topic == "Stock Movement"  # a person's label is never replaced
    assert examples[1].sentiment == "positive" and "sentiment" not in examples[1].guessed
    assert added["sentiment"] == 1
    unsure = [Example("Acme", topic="Markets")]
    assert add_teacher_labels(unsure, DEFAULT_MODEL_DIR, threshold=1.0) == {"sentiment": 0, "topic": 0}
    assert unsure[0].sentiment is None
    assert torch.is_tensor(class_weights(examples, "topic", 0.3))


def test_long_examples_join_texts_of_one_sentiment_and_keep_no_topic() -> None:
    examples = [Example(f"bad news {i}", sentiment="negative", topic="Earnings") for i in range(10)]
    examples += [Example(f"good news {i}", sentiment="positive", weight=3.0) for i in range(10)]
    examples += [Example("guessed good news", sentiment="positive", guessed={"sentiment"})]
    examples += [Example("only a topic", topic="Macro"), Example("rare", sentiment="neutral")]
    made = long_examples(examples, 40, random.Random(1))
    assert len(made) == 40  # neutral has too few texts to join: the others alternate
    assert {e.sentiment for e in made} == {"negative", "positive"} and all(e.topic is None for e in made)
    for example in made:
        kind = "bad" if example.sentiment == "negative" else "good"
        assert example.text.count("news") == example.text.count(f"{kind} news"), example.text
        assert 3 <= example.text.count("news") <= 6
        assert ("guessed" in example.text) == (example.guessed == {"sentiment"})
        assert example.weight == (3.0 if example.sentiment == "positive" and "guessed" not in example.text else 1.0)
    assert long_examples(examples[:2], 5, random.Random(1)) == []
