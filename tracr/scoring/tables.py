"""Tables found in OCR output, markdown and HTML, parsed the way olmOCR-Bench parses them.

olmOCR-Bench's table tests read tables with its own line-based markdown parser and
with BeautifulSoup's ``html.parser`` tree. Pass/fail depends on the details (a
markdown block is any run of lines containing ``|``; unclosed HTML tags nest rather
than close; a rowspan copies its text only straight down), so this module reproduces
them with the standard library instead of depending on BeautifulSoup.

``Node``/``parse_html`` is a small DOM with BeautifulSoup-html.parser nesting rules:
void elements never take children, an end tag closes the most recent open element of
that name (and everything opened inside it), an end tag with no open match is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = [
    "Node",
    "Table",
    "TableParseError",
    "parse_html",
    "parse_markdown_tables",
    "parse_html_tables",
    "markdown_table_blocks",
    "own_rows",
    "own_cells",
]

VOID_ELEMENTS = frozenset(
    "area base br col embed hr img input keygen link menuitem meta param source track wbr "
    "basefont bgsound command frame image isindex nextid spacer".split()
)


class TableParseError(ValueError):
    """An HTML table carries a span that is not an integer (olmOCR's ``int()`` fails there too)."""


@dataclass(eq=False)
class Node:
    """An element (``name`` set) or a text node (``text`` set)."""

    name: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    text: str = ""
    parent: Node | None = None

    def find_all(self, names: frozenset[str] | set[str]) -> list[Node]:
        """Descendant elements with one of ``names``, in document order."""
        found: list[Node] = []
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.name is None:
                continue
            if node.name in names:
                found.append(node)
            stack.extend(reversed(node.children))
        return found

    def find(self, name: str) -> Node | None:
        """The first descendant element called ``name``."""
        hits = self.find_all({name})
        return hits[0] if hits else None

    def get_text(self, br: str = "\n") -> str:
        """Concatenated descendant text; each ``<br>`` contributes ``br``."""
        parts: list[str] = []
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            if node.name is None:
                parts.append(node.text)
            elif node.name == "br":
                parts.append(br)
            else:
                stack.extend(reversed(node.children))
        return "".join(parts)

    def same_as(self, other: Node) -> bool:
        """Structural equality, as BeautifulSoup's ``Tag.__eq__`` (used by olmOCR's ``rows.index``)."""
        if self is other:
            return True
        if self.name != other.name or self.text != other.text or self.attrs != other.attrs:
            return False
        if len(self.children) != len(other.children):
            return False
        return all(a.same_as(b) for a, b in zip(self.children, other.children, strict=False))


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node(name="[document]")
        self.open: list[Node] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values: dict[str, str] = {}
        for key, value in attrs:
            values[key] = "" if value is None else value
        node = Node(name=tag, attrs=values, parent=self.open[-1])
        self.open[-1].children.append(node)
        if tag not in VOID_ELEMENTS:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].name == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        parent = self.open[-1]
        if parent.children and parent.children[-1].name is None:
            parent.children[-1].text += data
        else:
            parent.children.append(Node(text=data, parent=parent))


def own_rows(table: Node) -> list[Node]:
    """``tr`` elements whose nearest enclosing table is ``table`` (rows of nested tables excluded)."""
    return [tr for tr in table.find_all({"tr"}) if nearest(tr, "table") is table]


def own_cells(tr: Node) -> list[Node]:
    """``td``/``th`` elements whose nearest enclosing row is ``tr``."""
    return [cell for cell in tr.find_all({"td", "th"}) if nearest(cell, "tr") is tr]


def nearest(node: Node, name: str) -> Node | None:
    """The closest ancestor of ``node`` called ``name``."""
    parent = node.parent
    while parent is not None and parent.name != name:
        parent = parent.parent
    return parent


def parse_html(html: str) -> Node:
    """Parse HTML into a ``Node`` tree with BeautifulSoup-``html.parser`` nesting."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


@dataclass
class Table:
    """A rectangular grid of cell texts plus what olmOCR-Bench knows about its headers.

    ``col_headers[c]`` lists ``(row, text)`` header cells over column ``c``;
    ``row_headers[r]`` lists ``(col, text)`` header cells left of row ``r``.
    ``spans`` records each HTML cell's ``(row, col, rowspan, colspan)`` for TEDS.
    """

    cells: list[list[str]]
    header_rows: set[int] = field(default_factory=set)
    header_cols: set[int] = field(default_factory=set)
    col_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    row_headers: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    source: str = "markdown"

    @property
    def n_rows(self) -> int:
        return len(self.cells)

    @property
    def n_cols(self) -> int:
        return len(self.cells[0]) if self.cells else 0


def _pad(rows: list[list[str]]) -> list[list[str]]:
    width = max((len(row) for row in rows), default=0)
    return [row + [""] * (width - len(row)) for row in rows]


def markdown_table_blocks(markdown: str) -> list[list[str]]:
    """Runs of consecutive lines that contain ``|`` (olmOCR's notion of a table candidate)."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in markdown.strip().split("\n"):
        if "|" in line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _is_separator(line: str) -> bool:
    content = line.replace("|", "").strip()
    return bool(content) and all(c in "- :" for c in content)


def split_markdown_rows(lines: list[str]) -> list[list[str]]:
    """Cell texts of a markdown block: first separator row and all-formatting lines dropped."""
    separator = next((i for i, line in enumerate(lines) if _is_separator(line)), None)
    rows: list[list[str]] = []
    for i, line in enumerate(lines):
        if i == separator:
            continue
        if line.strip() and all(c in "- :|" for c in line):
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if cells and cells[0] == "":
            cells = cells[1:]
        if cells and cells[-1] == "":
            cells = cells[:-1]
        if cells:
            rows.append(cells)
    return rows


def parse_markdown_tables(markdown: str) -> list[Table]:
    """Markdown tables: blocks of two or more ``|`` lines; row 0 and column 0 are headings."""
    tables: list[Table] = []
    for block in markdown_table_blocks(markdown):
        if len(block) < 2:
            continue
        rows = split_markdown_rows(block)
        if not rows:
            continue
        cells = _pad(rows)
        width = len(cells[0])
        tables.append(
            Table(
                cells=cells,
                header_rows={0},
                header_cols={0} if width > 0 else set(),
                col_headers={c: [(0, cells[0][c])] for c in range(width)},
                row_headers={r: [(0, cells[r][0])] for r in range(1, len(cells))} if width > 0 else {},
                source="markdown",
            )
        )
    return tables


def _span(cell: Node, name: str) -> int:
    raw = cell.attrs.get(name, "1")
    try:
        return int(raw)
    except ValueError as exc:
        raise TableParseError(f"<{cell.name} {name}={raw!r}> is not an integer span") from exc


def _html_table(table: Node) -> Table | None:
    rows = table.find_all({"tr"})
    data: list[list[str]] = []
    header_rows: set[int] = set()
    header_cols: set[int] = set()
    col_headers: dict[int, list[tuple[int, str]]] = {}
    row_headers: dict[int, list[tuple[int, str]]] = {}

    thead = table.find("thead")
    if thead is not None:
        for tr in thead.find_all({"tr"}):
            header_rows.add(next(i for i, row in enumerate(rows) if row.same_as(tr)))

    grid: dict[tuple[int, int], str] = {}
    col_span_info: dict[str, set[int]] = {}
    row_span_info: dict[str, set[int]] = {}

    for r, row in enumerate(rows):
        row_data: list[str] = []
        c = 0
        if row.find("th") is not None:
            header_rows.add(r)
        for cell in row.find_all({"th", "td"}):
            while (r, c) in grid:
                row_data.append(grid[(r, c)])
                c += 1
            text = cell.get_text().strip()
            rowspan = _span(cell, "rowspan")
            colspan = _span(cell, "colspan")
            row_data.append(text)
            for i in range(rowspan):
                for j in range(colspan):
                    if i == 0 and j == 0:
                        continue
                    grid[(r + i, c + j)] = text if (j == 0 and i > 0) else ""
            if cell.name == "th":
                for j in range(colspan):
                    header_cols.add(c + j)
                for i in range(1, rowspan):
                    if r + i < len(rows):
                        header_rows.add(r + i)
                for j in range(colspan):
                    col_headers.setdefault(c + j, []).append((r, text))
                    if text and colspan > 1:
                        col_span_info.setdefault(text, set()).add(c + j)
                if text and rowspan > 1:
                    row_span_info.setdefault(text, set()).update(r + i for i in range(rowspan))
            if cell.name == "td" and rowspan > 1 and c in header_cols:
                for i in range(1, rowspan):
                    if r + i < len(rows):
                        row_headers.setdefault(r + i, []).append((c, text))
            c += colspan
        data.append(row_data)

    # Spanning column headers are inherited by the data cells from their column rightwards.
    for text, columns in col_span_info.items():
        for col in columns:
            for r in range(len(data)):
                if r in header_rows:
                    continue
                for j in range(col, len(data[r])):
                    headers = col_headers.setdefault(j, [])
                    if not any(h[1] == text for h in headers):
                        header_row = min(row for row, _ in col_headers.get(col, [(0, "")]))
                        headers.append((header_row, text))

    for text, spanned in row_span_info.items():
        for r in spanned:
            if r < len(data):
                header_col = min(header_cols) if header_cols else 0
                headers = row_headers.setdefault(r, [])
                if not any(h[1] == text for h in headers):
                    headers.append((header_col, text))

    for col in header_cols:
        for r, row_data in enumerate(data):
            if col < len(row_data) and row_data[col].strip():
                headers = row_headers.setdefault(r, [])
                if not any(h[1] == row_data[col] for h in headers):
                    headers.append((col, row_data[col]))

    if not data:
        return None
    return Table(
        cells=_pad(data),
        header_rows=header_rows,
        header_cols=header_cols,
        col_headers=col_headers,
        row_headers=row_headers,
        source="html",
    )


def parse_html_tables(html: str) -> list[Table]:
    """Every ``<table>`` (nested ones too, and an outer table also sees its inner rows).

    Raises ``TableParseError`` on a non-integer rowspan/colspan, where olmOCR's scorer
    raises too (its benchmark then counts the repeat as failed).
    """
    if "<table" not in html.lower():
        return []
    root = parse_html(html)
    tables: list[Table] = []
    for node in root.find_all({"table"}):
        table = _html_table(node)
        if table is not None:
            tables.append(table)
    return tables
