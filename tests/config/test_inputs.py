"""Finding a job's PDFs: strings in the order their paths' parts sort, each PDF once, linked folders not entered."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracr.config.inputs import InputError, discover_pdfs
from tracr.outputs.slugs import pdf_slugs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4\n")
    return path


def test_a_folder_gives_absolute_strings_sorted_by_their_parts(tmp_path: Path) -> None:
    for name in ("b/x.pdf", "b-c/x.pdf", "b/sub/y.PDF", "a.pdf", ".pdf", "notes.txt", "b/z.pdf.txt"):
        _touch(tmp_path / name)
    outside = _touch(tmp_path.parent / f"{tmp_path.name}-outside" / "linked.pdf")
    os.symlink(outside.parent, tmp_path / "linked-folder")
    os.symlink(tmp_path / "a.pdf", tmp_path / "b" / "same-as-a.pdf")  # one file through two names: listed once

    found = discover_pdfs(str(tmp_path))

    assert all(isinstance(p, str) and os.path.isabs(p) for p in found)
    relative = [os.path.relpath(p, tmp_path) for p in found]
    # parts order, as sorting Paths gave: b/… before b-c/… (a plain string sort puts "b-c" first)
    assert relative == ["a.pdf", "b/sub/y.PDF", "b/x.pdf", "b-c/x.pdf"]
    assert sorted(Path(p) for p in found) == [Path(p) for p in found]


def test_globs_and_files_combine_without_duplicates_and_a_bad_entry_is_named(tmp_path: Path) -> None:
    one = _touch(tmp_path / "in" / "one.pdf")
    _touch(tmp_path / "in" / "two.pdf")
    assert discover_pdfs([str(tmp_path / "in" / "*.pdf"), str(one)]) == [str(one), str(tmp_path / "in" / "two.pdf")]
    with pytest.raises(InputError, match="missing"):
        discover_pdfs([str(tmp_path / "in"), str(tmp_path / "missing")])


def test_slugs_are_the_same_for_strings_and_paths() -> None:
    paths = ["/d/a/report.pdf", "/d/b/report.pdf", "/d/other.pdf", "/x/a/r.pdf", "/y/x/a/r.pdf", "/top.pdf"]
    by_string = pdf_slugs(paths)
    assert pdf_slugs([Path(p) for p in paths]) == {Path(p): slug for p, slug in by_string.items()}
    assert by_string["/d/a/report.pdf"] == "d-a-report" and by_string["/d/other.pdf"] == "other" and by_string["/top.pdf"] == "top"
    assert by_string["/x/a/r.pdf"] != by_string["/y/x/a/r.pdf"] and len(set(by_string.values())) == len(paths)
