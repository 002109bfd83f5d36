"""TEDS: tree-edit-distance similarity of tables (PubTabNet / OmniDocBench), with Zhang–Shasha.

A table becomes the tree ``table > tr > td``; each ``td`` carries rowspan, colspan and
its text. Insert and delete cost 1; renaming costs 1 when tag or spans differ, else
(for cells) the normalised Levenshtein distance of the texts (0 in structure-only
mode). ``TEDS = 1 - distance / max(nodes)``. ``thead``/``tbody``/``tfoot`` wrappers are
dropped and ``th`` counts as ``td`` so that markdown and HTML renderings of the same
table compare equal. Own implementation so no extra dependency is needed; the test
suite cross-checks it against the ``apted`` package when that is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from tracr.scoring.normalise import normalize_text
from tracr.scoring.tables import Node, TableParseError, markdown_table_blocks, own_cells, own_rows, parse_html, split_markdown_rows

__all__ = ["TableTree", "tables_as_trees", "tree_edit_distance", "teds"]


@dataclass(eq=False)
class TableTree:
    """One node of a table tree."""

    tag: str
    text: str = ""
    rowspan: int = 1
    colspan: int = 1
    children: list[TableTree] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(child.size() for child in self.children)


def _cell_text(text: str) -> str:
    return normalize_text(text).strip()


def _span(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def _html_tree(table: Node) -> TableTree:
    root = TableTree("table")
    for tr in own_rows(table):
        row = TableTree("tr")
        for cell in own_cells(tr):
            row.children.append(
                TableTree("td", _cell_text(cell.get_text(br=" ")), _span(cell.attrs.get("rowspan")), _span(cell.attrs.get("colspan")))
            )
        root.children.append(row)
    return root


def _markdown_tree(rows: list[list[str]]) -> TableTree:
    return TableTree("table", children=[TableTree("tr", children=[TableTree("td", _cell_text(c)) for c in row]) for row in rows])


def tables_as_trees(text: str) -> list[TableTree]:
    """Every markdown table, then every outermost-or-nested HTML table, of ``text`` as trees."""
    trees = [_markdown_tree(split_markdown_rows(block)) for block in markdown_table_blocks(text) if len(block) >= 2]
    trees = [t for t in trees if t.children]
    if "<table" in text.lower():
        try:
            root = parse_html(text)
        except TableParseError:  # pragma: no cover - parse_html itself does not read spans
            return trees
        trees.extend(_html_tree(node) for node in root.find_all({"table"}))
    return trees


def _postorder(root: TableTree) -> tuple[list[TableTree], list[int]]:
    """Nodes in postorder and, for each, the postorder index of its leftmost leaf."""
    nodes: list[TableTree] = []
    leftmost: list[int] = []

    def visit(node: TableTree) -> int:
        first = -1
        for child in node.children:
            lm = visit(child)
            if first < 0:
                first = lm
        nodes.append(node)
        index = len(nodes) - 1
        leftmost.append(index if first < 0 else first)
        return leftmost[-1]

    visit(root)
    return nodes, leftmost


def _rename_cost(a: TableTree, b: TableTree, structure_only: bool) -> float:
    if a.tag != b.tag or a.rowspan != b.rowspan or a.colspan != b.colspan:
        return 1.0
    if a.tag == "td" and not structure_only and (a.text or b.text):
        return float(Levenshtein.normalized_distance(a.text, b.text))
    return 0.0


def tree_edit_distance(a: TableTree, b: TableTree, *, structure_only: bool = False) -> float:
    """Zhang–Shasha tree edit distance with unit insert/delete and the TEDS rename cost."""
    na, la = _postorder(a)
    nb, lb = _postorder(b)
    keyroots_a = sorted({leaf: i for i, leaf in enumerate(la)}.values())
    keyroots_b = sorted({leaf: j for j, leaf in enumerate(lb)}.values())
    dist = [[0.0] * len(nb) for _ in range(len(na))]
    for i in keyroots_a:
        for j in keyroots_b:
            li, lj = la[i], lb[j]
            rows, cols = i - li + 2, j - lj + 2
            fd = [[0.0] * cols for _ in range(rows)]
            for x in range(1, rows):
                fd[x][0] = fd[x - 1][0] + 1
            for y in range(1, cols):
                fd[0][y] = fd[0][y - 1] + 1
            for x in range(1, rows):
                ia = li + x - 1
                for y in range(1, cols):
                    jb = lj + y - 1
                    if la[ia] == li and lb[jb] == lj:
                        fd[x][y] = min(
                            fd[x - 1][y] + 1,
                            fd[x][y - 1] + 1,
                            fd[x - 1][y - 1] + _rename_cost(na[ia], nb[jb], structure_only),
                        )
                        dist[ia][jb] = fd[x][y]
                    else:
                        fd[x][y] = min(
                            fd[x - 1][y] + 1,
                            fd[x][y - 1] + 1,
                            fd[la[ia] - li][lb[jb] - lj] + dist[ia][jb],
                        )
    return dist[len(na) - 1][len(nb) - 1]


def teds(a: TableTree, b: TableTree, *, structure_only: bool = False) -> float:
    """Similarity in [0, 1]: 1 means the same structure (and, unless structure-only, the same text)."""
    size = max(a.size(), b.size())
    return 1.0 - tree_edit_distance(a, b, structure_only=structure_only) / size
