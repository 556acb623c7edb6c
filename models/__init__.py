"""finmon's classifier: artifact checks, ONNX Runtime inference and evaluation.

Training and export live in ``models.training`` behind the ``[train]`` extra; nothing
else in this package imports torch.
"""
