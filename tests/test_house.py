"""The house plan: the error tree is complete and drawn."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import newsbot
from newsbot import errors
from newsbot.errors import NewsbotError

# Exceptions that are not NewsbotErrors on purpose; errors.py says why.
OUTSIDE_THE_TREE = {
    "newsbot.activitypub.inbox.Rejected",
    "newsbot.publish.report.StopTarget",
    "newsbot.publish.report.Interrupted",
    "newsbot.publish.fitting.NoRoom",
    "newsbot.mastodon.documents.Unreadable",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(newsbot.__path__, "newsbot."):
        if ".migrations" in module.name or module.name == "newsbot.__main__":
            continue
        loaded = importlib.import_module(module.name)
        for _, value in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.name:
                found[f"{module.name}.{value.__qualname__}"] = value
    return found


def test_every_error_is_a_newsbot_error_or_says_why_not() -> None:
    classes = _exception_classes()
    assert "newsbot.errors.SettingsError" in classes
    outside = {name for name, cls in classes.items() if not issubclass(cls, NewsbotError)}
    assert outside == OUTSIDE_THE_TREE
    for name in OUTSIDE_THE_TREE:
        assert name.rsplit(".", 1)[1] in (errors.__doc__ or "")


def test_the_docstring_draws_every_newsbot_error_where_it_lives() -> None:
    drawn = {
        line.split("──", 1)[1].split()[0]: line
        for line in (errors.__doc__ or "").splitlines()
        if "──" in line
    }
    for name, cls in _exception_classes().items():
        if not issubclass(cls, NewsbotError) or cls is NewsbotError:
            continue
        assert cls.__name__ in drawn, f"{name} is missing from the tree in errors.py"
        parent = cls.__mro__[1].__name__
        line = drawn[cls.__name__]
        indent = line.index("──")
        above = [other for other in drawn.values() if other.index("──") == indent - 4]
        if parent != "NewsbotError":
            assert any(parent in other for other in above), f"{name} is not drawn under {parent}"
        module = cls.__module__.removeprefix("newsbot.").replace(".", "/") + ".py"
        if module != "errors.py" and parent == "NewsbotError":
            assert module in line, f"{name}: the tree should say it lives in {module}"
