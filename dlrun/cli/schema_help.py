"""`dlrun train --help`: the composed config, each key with the comment the schema gives it.

The descriptions are the comments beside (or just above) each field in
dlrun/config/schema.py, read from its source, so the help never drifts from the
schema. No Hydra here: the CLI composes, this module only writes the page.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from dataclasses import is_dataclass
from functools import cache
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from dlrun.config import schema

COMMENT_COLUMN = 44  # where descriptions start, when the key and value leave room


@cache
def field_comments() -> dict[tuple[str, str], str]:
    """{(class name, field): description} from the comments in dlrun/config/schema.py."""
    source = inspect.getsource(schema)
    comments: dict[int, str] = {}  # line -> a comment beside code
    blocks: dict[int, str] = {}  # line -> a comment alone on its line
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            alone = token.line.strip().startswith("#")
            (blocks if alone else comments)[token.start[0]] = token.string.lstrip("#").strip()
    found: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                lines = range(item.lineno, (item.end_lineno or item.lineno) + 1)
                beside = " ".join(comments[n] for n in lines if n in comments)
                above, n = [], item.lineno - 1
                while n in blocks and not beside:  # a comment block just above the field
                    above.insert(0, blocks[n])
                    n -= 1
                text = beside or first_sentence(" ".join(above))
                if text:
                    found[(node.name, item.target.id)] = text
    return found


def first_sentence(text: str) -> str:
    """A block comment's first sentence: the help shows one line per key."""
    head, dot, _ = text.partition(". ")
    return head + dot.strip()


def describe(cls: type | None, key: str) -> str:
    """The field's description, looked up along the dataclass's bases (MLPConfig -> ModelConfig)."""
    if cls is None or not is_dataclass(cls):
        return ""
    for base in cls.__mro__:
        text = field_comments().get((base.__name__, key))
        if text:
            return text
    return ""


def scalar(value: Any) -> str:
    """A value as YAML writes it on one line (lists in flow style)."""
    if isinstance(value, ListConfig) and value._is_none():
        return "null"
    if isinstance(value, (ListConfig, list)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    text = OmegaConf.to_yaml({"v": value}).strip()
    return text[len("v: ") :] if text.startswith("v: ") else text


def annotated(node: DictConfig, indent: str = "", path: str = "") -> list[str]:
    """YAML lines of `node` (interpolations as written), each key with its description."""
    from dlrun.config.choices import CHOICES, SCHEMAS

    lines = []
    cls = OmegaConf.get_type(node)
    group = path.rstrip("/")
    if not is_dataclass(cls):  # model and data are stored as plain dicts: find their schema
        name = str(node.get("name"))
        values = CHOICES.get(group, {}).get(name, (None, None))[1]
        cls = (
            values
            if isinstance(values, type)
            else SCHEMAS.get(group)
            if values is not None
            else None
        )
    for key in node.keys():
        value = node._get_node(key)._value() if OmegaConf.is_missing(node, key) is False else "???"
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_interpolation():
            lines.append(f"{indent}{key}:")
            lines += annotated(child, indent + "  ", f"{path}{key}/")
            continue
        text = f"{indent}{key}: {scalar(value if not isinstance(child, ListConfig) else child)}"
        note = describe(cls, str(key))
        if key == "name" and group in CHOICES:
            note = f"the choice of {group}=: {', '.join(CHOICES[group])}"
        if note:
            text = f"{text.ljust(COMMENT_COLUMN - 1)} # {note}"
        lines.append(text)
    return lines


def page(cfg: DictConfig, header: str, groups: dict[str, list[str]], footer: str) -> str:
    """The whole help page: header, config groups and their choices, the config, footer."""
    group_lines = [f"{group}: {', '.join(choices)}" for group, choices in groups.items()]
    return "\n".join(
        [
            header.rstrip(),
            "== Config groups (group=choice; `dlrun list` describes each) ==",
            *group_lines,
            "",
            "== Config (key=value; `# ...` says what each key means) ==",
            *annotated(cfg),
            "",
            footer.rstrip(),
            "",
        ]
    )
