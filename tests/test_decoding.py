"""Honest decoding: BOMs, UTF-16/32 without one, damaged UTF-8, legacy code pages, and --encoding."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from pipeline.documents import load_document
from pipeline.documents.text import decode_text
from pipeline.errors import ConfigError, DocumentEncodingError

STORIES = Path(__file__).parent / "fixtures" / "languages"
ALICE = (
    "Alice’s Adventures\n\n"
    + "“Curiouser and curiouser!” cried Alice; she was so much surprised that for the moment she quite "
    "forgot how to speak good English. Now I’m opening out like the largest telescope that ever was!\n\n" * 30
)


def _story(code: str) -> str:
    return (STORIES / f"{code}.txt").read_text(encoding="utf-8")


def _damage(data: bytes, count: int) -> bytes:
    """Insert ``count`` invalid UTF-8 bytes (0xff never occurs in UTF-8) after newlines in the second half."""
    head, tail = data[: len(data) // 2], data[len(data) // 2 :]
    return head + tail.replace(b"\n", b"\n\xff", count)


@pytest.mark.parametrize("text", [ALICE, _story("zh") * 5, _story("ru") * 5])
def test_almost_utf8_stays_utf8_with_a_warning(tmp_path: Path, text: str) -> None:
    data = _damage(text.encode("utf-8"), 5)
    decoded = decode_text(data, path=tmp_path / "damaged.txt")
    assert decoded.encoding == "utf-8"
    assert decoded.text.count("\ufffd") == 5
    assert decoded.text.replace("\ufffd", "") == text
    assert len(decoded.warnings) == 1 and "5 byte(s) are not valid UTF-8" in decoded.warnings[0]
    assert "line " in decoded.warnings[0] and "byte " in decoded.warnings[0]


def test_damaged_utf8_document_loads_and_keeps_the_warning(tmp_path: Path) -> None:
    path = tmp_path / "alice.txt"
    path.write_bytes(_damage(ALICE.encode("utf-8"), 5))
    doc = load_document(path)
    assert "Alice’s" in doc.text and "‚Äô" not in doc.text and "\ufffd" in doc.text
    assert doc.warnings and "not valid UTF-8" in doc.warnings[0]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_text_without_bom(tmp_path: Path, codec: str) -> None:
    decoded = decode_text(ALICE.encode(codec), path=tmp_path / "wide.txt")
    assert decoded.text == ALICE and decoded.encoding == codec


@pytest.mark.parametrize("codec", ["utf-32", "utf-16", "utf-8-sig"])
def test_boms(tmp_path: Path, codec: str) -> None:
    assert decode_text(_story("el").encode(codec), path=tmp_path / "bom.txt").text == _story("el")


def test_latin1_naive_is_not_a_central_european_letter(tmp_path: Path) -> None:
    text = "A naïve reader thinks the café is open. " * 3 + "She was naïve about it, and so was he.\n"
    decoded = decode_text(text.encode("latin-1"), path=tmp_path / "naive.txt")
    assert decoded.text == text
    assert "naďve" not in decoded.text


@pytest.mark.parametrize(
    ("code", "codec"),
    [("fr", "cp1252"), ("de", "latin-1"), ("es", "cp1252"), ("pt", "cp1252"), ("ru", "cp1251"),
     ("ru", "koi8-r"), ("el", "cp1253"), ("ar", "cp1256"), ("he", "cp1255"), ("ja", "shift_jis"),
     ("ja", "euc_jp"), ("ko", "euc_kr"), ("zh", "gb18030")],
)  # fmt: skip
def test_legacy_code_pages_are_read_right(tmp_path: Path, code: str, codec: str) -> None:
    text = _story(code) * 3
    path = tmp_path / f"{code}.txt"
    path.write_bytes(text.encode(codec))
    doc = load_document(path)
    assert doc.text.split("\n\n")[1] == text.split("\n\n")[1]
    assert doc.language == code


def test_unclear_bytes_are_refused_naming_the_option(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes(b"\xc8\xe5\xf0 \xe4\xee\xec\xe0 \xed\xe5\xf2")
    with pytest.raises(DocumentEncodingError, match="--encoding"):
        load_document(path)


def test_encoding_option_forces_the_codec(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_bytes("Мир дома нет".encode("cp1251"))
    assert load_document(path, encoding="cp1251").text == "Мир дома нет"
    with pytest.raises(DocumentEncodingError, match="not valid utf-8"):
        load_document(path, encoding="utf-8")
    with pytest.raises(ConfigError, match="Unknown --encoding 'klingon'"):
        load_document(path, encoding="klingon")


def test_utf8_bom_with_garbage_after_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentEncodingError, match="byte-order mark"):
        decode_text(codecs.BOM_UTF8 + b"ok \xff\xfe broken", path=tmp_path / "bad.txt")


def test_cli_unsure_encoding_exits_2_naming_the_option_and_the_option_fixes_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    path = tmp_path / "short.txt"
    path.write_bytes("Мир дома нет".encode("cp1251"))
    runner = CliRunner()
    refused = runner.invoke(app, ["plan", str(path)])
    assert refused.exit_code == 2
    assert "--encoding" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert "Traceback" not in refused.stderr
    forced = runner.invoke(app, ["plan", str(path), "--encoding", "cp1251", "--json"])
    assert forced.exit_code == 0, forced.stderr
    unknown = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", str(path),
                                  "--encoding", "klingon"])  # fmt: skip
    assert unknown.exit_code == 2 and "Unknown --encoding 'klingon'" in unknown.stderr
    done = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", "--no-progress",
                               str(path), "--encoding", "cp1251"])  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert "Мир дома нет" in done.stdout


@pytest.mark.parametrize(("code", "codec"), [("zh", "utf-16-le"), ("ja", "utf-16-be"), ("ru", "utf-16-le")])
def test_utf16_without_bom_in_other_scripts(tmp_path: Path, code: str, codec: str) -> None:
    text = _story(code) * 2
    decoded = decode_text(text.encode(codec), path=tmp_path / "wide.txt")
    assert decoded.text == text and decoded.encoding == codec
