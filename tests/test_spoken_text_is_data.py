"""Every spoken line comes from data files: the modules that decide what to say contain no Chinese strings."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEAKING_MODULES = ["assistant/dialogue.py", "assistant/skills.py", "assistant/chat.py", "assistant/weather.py",
                    "assistant/loop.py"]
ALLOWED = {"assistant/loop.py": {"事件："}}  # the text-mode protocol prefix, not speech


def chinese_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and any("\u4e00" <= ch <= "\u9fff" for ch in node.value)]


@pytest.mark.parametrize("module", SPEAKING_MODULES)
def test_no_sentences_in_code(module: str) -> None:
    found = set(chinese_literals(ROOT / module)) - ALLOWED.get(module, set())
    assert not found, f"{module} speaks from code: {sorted(found)}"
