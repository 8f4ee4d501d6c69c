"""The ``--gpu`` argument's corner cases: underscores in card names, the sizes a card may have, and
error messages that say what was wrong and what would do."""

from __future__ import annotations

import pytest

from gguf_inspect.core.errors import UsageError
from gguf_inspect.llamacpp.devices import GPU, KNOWN_GPUS_MIB, parse_gpus, parse_size

MIB = 1 << 20


def test_underscores_in_a_card_name_read_as_hyphens() -> None:
    assert parse_gpus("A100_80G") == (GPU("a100-80g", KNOWN_GPUS_MIB["a100-80g"] * MIB),)
    assert parse_gpus("rtx_a6000") == (GPU("rtx-a6000", KNOWN_GPUS_MIB["rtx-a6000"] * MIB),)


def test_any_positive_size_is_a_card_and_zero_is_refused() -> None:
    # llama.cpp splits the layers in proportion to memory: one byte is a (tiny) share, none is not
    assert parse_gpus("1") == (GPU("1", 1),)
    with pytest.raises(UsageError, match=r"^a GPU of '0GiB' holds nothing: give its memory"):
        parse_gpus("0GiB")


def test_an_unknown_card_is_answered_with_every_known_name() -> None:
    with pytest.raises(UsageError) as caught:
        parse_gpus("voodoo2")
    message = str(caught.value)
    assert message.startswith("unknown GPU 'voodoo2': give a size (24GiB) or one of ")
    listed = message.split(" or one of ", 1)[1].split(", ")
    assert listed == sorted(KNOWN_GPUS_MIB)


def test_size_and_list_errors_name_the_bad_text() -> None:
    with pytest.raises(UsageError, match=r"^not a size: '12 parsecs' \(use e\.g\. 24GiB"):
        parse_size("12 parsecs")
    with pytest.raises(UsageError, match=r"^empty GPU entry in 'rtx4090,,t4'$"):
        parse_gpus("rtx4090,,t4")
