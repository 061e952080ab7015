"""A small document model (sections of paragraphs, tables, lists, figures) and its Markdown and HTML renderings.

``sections.py`` builds the document once; both renderings come from it, so ``report.md`` and ``report.html``
cannot disagree. The HTML is self-contained: inline CSS, figures embedded as base64 PNG data URIs, no script
and no external resource, so it opens from a mail attachment or an MLflow artifact view alike. Inline markup
in text is limited to ``**bold**`` and ```code```.

A table's header may group consecutive columns under one heading (the SVQA table's "Integer comparison: More,
Equal, Less"): HTML draws a second header row with spanning cells; Markdown, which has one header row, says both
in each cell ("Integer comparison: More").
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    emphasis: frozenset[int] = frozenset()  # row indices drawn bold
    table_id: str = ""  # an id for the HTML table (tests and anchors)
    groups: tuple[str, ...] = ()  # per header cell, the group heading over it ("" = none); () = no groups

    def __post_init__(self) -> None:
        if self.groups and len(self.groups) != len(self.header):
            raise ValueError(f"table groups {self.groups} name {len(self.groups)} cells, the header {self.header} "
                             f"has {len(self.header)}")
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(
                    f"table row {row} has {len(row)} cells, the header {self.header} has {len(self.header)}")


@dataclass(frozen=True)
class Figure:
    path: Path  # a PNG beside the report
    caption: str


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    banner: str | None  # a warning shown above everything (the demo's "not comparable")
    sections: list[Section]


# ------------------------------------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = []
    if table.caption:
        lines += [f"*{table.caption}*", ""]
    groups = table.groups or ("",) * len(table.header)
    header = [f"{group}: {cell}" if group else cell for group, cell in zip(groups, table.header, strict=True)]
    lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    for i, row in enumerate(table.rows):
        cells = [_md_cell(c) for c in row]
        if i in table.emphasis:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(document: Document) -> str:
    lines = [f"# {document.title}", "", document.subtitle, ""]
    if document.banner:
        lines += [f"> **{document.banner}**", ""]
    lines += ["Contents: " + " · ".join(f"[{s.title}](#{s.anchor})" for s in document.sections), ""]
    for section in document.sections:
        lines += [f'<a id="{section.anchor}"></a>', "", f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines.append(block.text)
            elif isinstance(block, Bullets):
                lines += [f"- {item}" for item in block.items]
            elif isinstance(block, Table):
                lines += _md_table(block)
            elif isinstance(block, Figure):
                lines.append(f"![{block.caption}]({block.path.name})")
                lines += ["", f"*{block.caption}*"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1b1b1b;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.subtitle{color:#555;margin-top:0}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.8em 1em;font-weight:600;margin:1em 0}
nav a{margin-right:1em}
.wide{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0 1em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f4f7}th.group{text-align:center}tr.em td{font-weight:700;background:#f7fbff}
caption{caption-side:top;text-align:left;font-style:italic;color:#444;padding-bottom:.3em}
code{background:#f4f4f4;padding:0 .25em;border-radius:3px;font-size:.92em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#444;font-style:italic}
"""


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html_table(table: Table) -> str:
    ident = f' id="{html.escape(table.table_id)}"' if table.table_id else ""
    parts = [f'<div class="wide"><table{ident}>']
    if table.caption:
        parts.append(f"<caption>{_inline(table.caption)}</caption>")
    parts.append(f"<thead>{_html_header(table)}</thead><tbody>")
    for i, row in enumerate(table.rows):
        css = ' class="em"' if i in table.emphasis else ""
        parts.append(f"<tr{css}>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table></div>")
    return "".join(parts)


def _spans(groups: tuple[str, ...]) -> list[tuple[str, int]]:
    """Consecutive header cells of one group as (group, count); ungrouped cells one each."""
    spans: list[tuple[str, int]] = []
    for group in groups:
        if group and spans and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1] + 1)
        else:
            spans.append((group, 1))
    return spans


def _html_header(table: Table) -> str:
    """One header row, or with groups two: group cells spanning their columns, ungrouped cells spanning both rows."""
    if not any(table.groups):
        return "<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in table.header) + "</tr>"
    top, bottom, index = [], [], 0
    for group, count in _spans(table.groups):
        cells = table.header[index:index + count]
        index += count
        if group:
            top.append(f'<th colspan="{count}" class="group">{_inline(group)}</th>')
            bottom += [f"<th>{_inline(cell)}</th>" for cell in cells]
        else:
            top.append(f'<th rowspan="2">{_inline(cells[0])}</th>')
    return "<tr>" + "".join(top) + "</tr><tr>" + "".join(bottom) + "</tr>"


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    caption = _inline(figure.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.caption)}" '
            f'data-file="{html.escape(figure.path.name)}"><figcaption>{caption}</figcaption></figure>')


def render_html(document: Document) -> str:
    body = [f"<h1>{_inline(document.title)}</h1>", f'<p class="subtitle">{_inline(document.subtitle)}</p>']
    if document.banner:
        body.append(f'<div class="banner" id="banner" role="alert">{_inline(document.banner)}</div>')
    body.append("<nav>" + "".join(f'<a href="#{s.anchor}">{_inline(s.title)}</a>' for s in document.sections)
                + "</nav>")
    for section in document.sections:
        body.append(f'<section id="{section.anchor}"><h2>{_inline(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Paragraph):
                body.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>")
            elif isinstance(block, Table):
                body.append(_html_table(block))
            elif isinstance(block, Figure):
                body.append(_html_figure(block))
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(document.title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body) + "\n</body></html>\n"
    )
