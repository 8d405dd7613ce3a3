"""render.layout lays expressions out as ruff format does: random trees, one ruff run."""

import random
import subprocess
import sys
from pathlib import Path

from protoc_gen_pyservice.model.plan import Literal
from protoc_gen_pyservice.render import layout
from protoc_gen_pyservice.render.layout import Call, DictOf, Expression, ListOf, Name, Statement

BIN = Path(sys.executable).parent


def _word(rng: random.Random) -> str:
    # No "e" in the alphabet: no keyword (`def`) can come out.
    return "".join(rng.choice("abcdfgh_") for _ in range(rng.randint(1, 30))).strip("_") or "a"


def _tree(rng: random.Random, depth: int) -> Expression:
    kind = rng.random()
    if depth == 0 or kind < 0.35:
        choice = rng.random()
        if choice < 0.3:
            literals: list[Literal] = [0, -1, 2.5, True, b"\x00ab", 10**12]
            return layout.Value(rng.choice(literals))
        if choice < 0.6:
            text = _word(rng) * rng.randint(1, 4) + "a" * rng.choice([0, 3, 9, 40, 150])
            return layout.Value(text)
        return Name(f"mod_pb2.{_word(rng)}.{_word(rng).upper()}")
    count = rng.choice([0, 1, 1, 2, 3, 5])
    if kind < 0.7:
        arguments = tuple(
            (rng.choice(["", _word(rng)]) if i == 0 else _word(rng), _tree(rng, depth - 1))
            for i in range(count)
        )
        # Positional arguments only before keywords.
        arguments = tuple(
            sorted(arguments, key=lambda argument: bool(argument[0]))  # positional first
        )
        return Call(f"pkg_pb2.{_word(rng).title()}", arguments)
    if kind < 0.85:
        return ListOf(tuple(_tree(rng, depth - 1) for _ in range(count)))
    return DictOf(tuple((layout.Value(_word(rng)), _tree(rng, depth - 1)) for _ in range(count)))


def test_layout_matches_ruff_format(tmp_path: Path) -> None:
    rng = random.Random(20260107)
    chunks = []
    for number in range(400):
        tree = _tree(rng, rng.randint(1, 4))
        indent = rng.choice([4, 8])
        pad = " " * indent
        if rng.random() < 0.5:
            body = pad + layout.expression(tree, indent, "return ")
        else:
            target = "request." + ".".join(_word(rng) for _ in range(rng.randint(1, 3)))
            body = pad + layout.statement(Statement(target, tree), indent)
        if indent == 8:
            body = f"    if x:\n{body}"
        chunks.append(f"def f{number}():\n{body}\n")
    source = tmp_path / "laid_out.py"
    source.write_text("\n\n".join(chunks))
    result = subprocess.run(
        [BIN / "ruff", "format", "--isolated", "--line-length=100", "--diff", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[:5000]
