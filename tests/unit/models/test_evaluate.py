from models.evaluate import confusion_matrix, format_report, metrics


def test_metrics_match_a_hand_computed_case() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    result = metrics(truth, pred, ["a", "b", "c"])
    assert result["accuracy"] == round(4 / 6, 4)
    per_class = result["per_class"]
    assert per_class["a"] == {"precision": 1.0, "recall": round(2 / 3, 4), "f1": 0.8, "support": 3}
    assert per_class["b"]["f1"] == 0.5
    assert per_class["c"]["f1"] == round(2 / 3, 4)
    assert result["macro_f1"] == round((0.8 + 0.5 + 2 / 3) / 3, 4)
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_macro_f1_ignores_classes_absent_from_the_truth() -> None:
    result = metrics(["a", "a"], ["a", "a"], ["a", "b"])
    assert result["macro_f1"] == 1.0


def test_confusion_matrix_rows_are_truth() -> None:
    assert confusion_matrix(["x"], ["y"], ["x", "y"]).tolist() == [[0, 1], [0, 0]]


def test_report_names_every_class() -> None:
    text = format_report("sentiment", metrics(["a", "b"], ["a", "a"], ["a", "b"]))
    assert "accuracy 0.5000" in text
    assert "\na " in text and "\nb " in text
