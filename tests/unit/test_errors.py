"""One root exception per package: a caller can catch everything a package raises, and nothing else."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from models import errors as model_errors
from monitor import errors as monitor_errors
from streams import errors as stream_errors


@pytest.mark.parametrize(
    ("module", "root"),
    [
        (model_errors, model_errors.ModelError),
        (stream_errors, stream_errors.StreamError),
        (monitor_errors, monitor_errors.MonitorError),
    ],
)
def test_every_error_of_a_package_derives_from_its_root(module: ModuleType, root: type[Exception]) -> None:
    defined = [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__]
    assert len(defined) >= 3
    assert all(issubclass(c, root) for c in defined), [c.__name__ for c in defined if not issubclass(c, root)]
