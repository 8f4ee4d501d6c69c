"""``embed``: a query row holding NaN or infinity has no direction, and says so: it is not
reported as "all zero" (issue 20). The file is the planted f16 fixture rewritten by gguf-py's
GGUFWriter with rows 300 (a NaN) and 301 (an infinity) changed."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import fixture_path
from gguf_inspect.cli import app
from gguf_inspect.core.constants import ExitCode
from gguf_inspect.gguf.open import open_model
from gguf_inspect.reports.embed import QueryError, nearest, open_embedding_model
from tests.conftest import write_gguf

ARRAY = gguf.GGUFValueType.ARRAY


def _with_bad_rows(out: Path) -> Path:
    reader = gguf.GGUFReader(fixture_path("tiny-llama-planted-f16.gguf"))
    writer = gguf.GGUFWriter(str(out), reader.get_field("general.architecture").contents())
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        item_type = field.types[-1] if field.types[0] == ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], item_type)
    for tensor in reader.tensors:
        data = np.array(tensor.data)
        if tensor.name == "token_embd.weight":
            data[300, 7] = np.nan
            data[301, 0] = np.inf
        writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
    write_gguf(writer)
    return out


@pytest.mark.parametrize("word", ["300", "301"])
def test_a_non_finite_query_row_is_not_called_all_zero(tmp_path: Path, word: str) -> None:
    path = _with_bad_rows(tmp_path / "bad.gguf")
    with open_model(path) as model:
        embedding = open_embedding_model(model)
        try:
            with pytest.raises(QueryError, match="non-finite") as raised:
                nearest(embedding, word, 3)
        finally:
            embedding.close()
    assert "all zero" not in str(raised.value) and "1 non-finite value" in str(raised.value)


def test_the_command_gives_one_line_and_the_usage_exit_code(tmp_path: Path) -> None:
    path = _with_bad_rows(tmp_path / "bad.gguf")
    result = CliRunner().invoke(app, ["embed", str(path), "--nearest", "300"])
    assert result.exit_code == ExitCode.USAGE
    assert "non-finite" in result.output and "Traceback" not in result.output
