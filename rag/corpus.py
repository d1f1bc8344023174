"""Reading paper files: daily-papers text dumps and JSONL.

A text dump is page chrome, then for each paper a title line, a blank line, the
abstract paragraph, and optionally an author-count line (``• 9 authors``), a ``·``
separator and a date line that may end in an upvote count (``Aug 11 2``)::

    Music Transformer

    Music relies heavily on repetition to build structure and meaning. ...

      • 10 authors
    ·
    Sep 12, 2018

JSONL holds one object per line with at least ``title`` and ``abstract``.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from .errors import CorpusError

#: Page chrome of the daily-papers listing, skipped wherever it appears.
CHROME_LINES = frozenset(
    {
        "new",
        "get trending papers in your email inbox!",
        "subscribe",
        "daily papers",
        "byak and the research community",
    }
)
#: A title is at most this long; a longer line is abstract text.
MAX_TITLE_CHARS = 300
#: An abstract paragraph is at least this long.
MIN_ABSTRACT_CHARS = 80
#: Largest paper file accepted.
MAX_FILE_BYTES = 200 * 1024 * 1024

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE_RE = re.compile(rf"^(?P<date>{_MONTH} \d{{1,2}}(?:, \d{{4}})?)(?:\s+(?P<upvotes>\d+))?$")
_AUTHORS_RE = re.compile(r"^[•·*-]?\s*(?P<n>\d+)\s+authors?$", re.IGNORECASE)
_UPVOTES_RE = re.compile(r"^\d+$")
_SEPARATOR_RE = re.compile(r"^[·•|]$")
_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"'`]+|(?<![\w/.])(?:github\.com|huggingface\.co)/[^\s<>\"'`]+")
SUPPORTED_SUFFIXES = (".txt", ".jsonl")


class PaperInfo(BaseModel):
    """What every API shape shows of a paper: all the listing says about it."""

    id: str = Field(description="Stable id derived from the title and abstract.")
    title: str
    abstract: str
    authors: int | None = Field(None, description="Number of authors, when listed.")
    date: str | None = Field(None, description="Date as written in the listing (year may be missing).")
    upvotes: int | None = None
    urls: list[str] = Field(default_factory=list, description="Links mentioned in the abstract.")

    def shown(self) -> dict:
        """The paper's fields as the answer and search records flatten them (its id as ``paper_id``).

        >>> PaperInfo(id="p1", title="T", abstract="A.").shown()
        {'title': 'T', 'paper_id': 'p1', 'date': None, 'authors': None, 'upvotes': None, 'urls': [], 'abstract': 'A.'}
        """
        return {"title": self.title, "paper_id": self.id, "date": self.date, "authors": self.authors,
                "upvotes": self.upvotes, "urls": list(self.urls), "abstract": self.abstract}


class Paper(PaperInfo):
    """One paper: what the listing says about it, and where it was read from."""

    sources: list[str] = Field(default_factory=list, description="Files the paper was read from.")

    def info(self) -> PaperInfo:
        """The paper as the API lists it (without where it was read from)."""
        return PaperInfo(**self.model_dump(exclude={"sources"}))


def normalize_text(text: str) -> str:
    """Fold case, Unicode forms and whitespace so equal texts compare equal.

    >>> normalize_text("  Self-RAG:\\u00a0Learning  ")
    'self-rag: learning'
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def paper_id(title: str, abstract: str) -> str:
    """Content-derived id: the same title and abstract always give the same id.

    >>> paper_id("A", "b") == paper_id(" a ", "B")
    True
    """
    digest = hashlib.sha256(f"{normalize_text(title)}\n{normalize_text(abstract)}".encode()).hexdigest()
    return digest[:16]


def extract_urls(text: str) -> list[str]:
    """Links in ``text``, trailing punctuation removed, in order, without repeats.

    >>> extract_urls("Code: https://github.com/a/b. See www.x.org/y), or github.com/c/d")
    ['https://github.com/a/b', 'www.x.org/y', 'github.com/c/d']
    """
    found: list[str] = []
    for match in _URL_RE.finditer(text):
        url = match.group(0).rstrip(".,;:)]}!?'\"")
        if url not in found:
            found.append(url)
    return found


def web_link(url: str) -> bool:
    """Whether ``url`` is a web address (http, https, or a bare host/path): never ``javascript:``, ``data:`` and the like.

    >>> web_link("https://x.org/a"), web_link("github.com/a/b"), web_link("java\tscript:alert(1)"), web_link("data:,x")
    (True, True, False, False)
    """
    compact = "".join(ch for ch in url if ch.isprintable() and not ch.isspace()).lower()
    scheme = re.match(r"^([a-z][a-z0-9+.-]*):", compact)
    return scheme is None or scheme.group(1) in ("http", "https") or compact.split(":", 1)[1][:1].isdigit()


def _clean(line: str) -> str:
    return line.replace("\ufeff", "").replace("\x00", "").strip()


def _is_meta(line: str) -> bool:
    return bool(
        _AUTHORS_RE.match(line) or _DATE_RE.match(line) or _UPVOTES_RE.match(line) or _SEPARATOR_RE.match(line)
    )


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusError(
            path,
            line,
            f"the file is not UTF-8 text (byte 0x{data[err.start]:02x} cannot be decoded).",
            "Convert it to UTF-8, e.g. `iconv -f latin1 -t utf-8 IN > OUT`.",
        ) from None


def _read(path: Path) -> str:
    """The file's text; a FIFO, device or socket (also behind a symlink) and oversize files are refused."""
    try:
        info = path.stat()  # follows symlinks: a link to /dev/zero is a character device
        if not stat.S_ISREG(info.st_mode):
            raise CorpusError(
                path, None, "is not a regular file (a FIFO, device or socket cannot be read as papers).",
                "Pass .txt or .jsonl files.",
            )
        if info.st_size > MAX_FILE_BYTES:
            raise CorpusError(path, None, f"the file is {info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}.",
                              "Split it into smaller files.")
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
        if len(data) > MAX_FILE_BYTES:
            raise CorpusError(path, None, f"the file is larger than the limit of {MAX_FILE_BYTES:,} bytes.",
                              "Split it into smaller files.")
    except OSError as err:
        raise CorpusError(path, None, f"cannot be read ({err.strerror or err}).") from None
    return _decode(path, data)


def _starts_paper(line: str, nxt: str | None) -> bool:
    """A short non-metadata line followed by an abstract-length line opens a paper."""
    return (
        len(line) <= MAX_TITLE_CHARS
        and not _is_meta(line)
        and nxt is not None
        and len(nxt) >= MIN_ABSTRACT_CHARS
        and not _is_meta(nxt)
    )


def _finish_paper(current: dict, source: str) -> Paper:
    """The :class:`Paper` of a parsed entry (title, abstract paragraphs, listing fields)."""
    abstract = " ".join(current["abstract"])
    return Paper(
        id=paper_id(current["title"], abstract),
        title=current["title"],
        abstract=abstract,
        authors=current.get("authors"),
        date=current.get("date"),
        upvotes=current.get("upvotes"),
        urls=extract_urls(abstract),
        sources=[source],
    )


def _read_field(current: dict, line: str, n: int, source: str) -> None:
    """Add a line after a paper's abstract to ``current``: authors, date, upvotes, or a further paragraph."""
    if _AUTHORS_RE.match(line):
        current["authors"] = int(_AUTHORS_RE.match(line)["n"])
    elif m := _DATE_RE.match(line):
        current["date"] = m["date"]
        if m["upvotes"]:
            current["upvotes"] = int(m["upvotes"])
    elif _UPVOTES_RE.match(line):
        current["upvotes"] = int(line)
    elif _SEPARATOR_RE.match(line):
        pass
    elif len(line) >= MIN_ABSTRACT_CHARS:
        current["abstract"].append(line)  # a further paragraph of the abstract
    else:
        raise CorpusError(
            source,
            n,
            f"'{line[:60]}' is neither a paper title followed by its abstract nor an author, date or "
            "upvote line.",
            "Each paper must be a title line, a blank line, then the abstract paragraph.",
        )


def parse_listing(text: str, source: str = "<text>") -> list[Paper]:
    """Papers in a daily-papers text dump, in file order (raises CorpusError)."""
    lines = [(n, _clean(raw)) for n, raw in enumerate(text.splitlines(), start=1)]
    lines = [(n, s) for n, s in lines if s and s.casefold() not in CHROME_LINES]
    papers: list[Paper] = []
    current: dict | None = None
    i = 0
    while i < len(lines):
        n, line = lines[i]
        nxt = lines[i + 1][1] if i + 1 < len(lines) else None
        if _starts_paper(line, nxt):
            if current is not None:
                papers.append(_finish_paper(current, source))
            current = {"title": line, "abstract": [nxt], "line": n}
            i += 2
            continue
        # Page chrome before the first paper (e.g. the listing's own date) is skipped.
        if current is not None:
            _read_field(current, line, n, source)
        i += 1
    if current is not None:
        papers.append(_finish_paper(current, source))
    if not papers:
        raise CorpusError(
            source,
            None,
            "no papers found.",
            "A paper is a title line, a blank line, then its abstract paragraph "
            f"(at least {MIN_ABSTRACT_CHARS} characters); or use JSONL with 'title' and 'abstract'.",
        )
    return papers


def _int_field(value: object, source: str, n: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CorpusError(source, n, f"'{name}' must be a number, not {value!r}.")
    if isinstance(value, list):  # a list of author names
        return len(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise CorpusError(source, n, f"'{name}' must be a number, not {value!r}.") from None


def parse_jsonl(text: str, source: str = "<jsonl>") -> list[Paper]:
    """Papers in a JSONL file: one object per line with 'title' and 'abstract' (raises CorpusError)."""
    papers: list[Paper] = []
    for n, raw in enumerate(text.split("\n"), start=1):  # not splitlines(): U+2028 is valid inside JSON
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            raise CorpusError(source, n, f"not valid JSON ({err.msg} at column {err.colno}).") from None
        except RecursionError:
            raise CorpusError(source, n, "the JSON is nested too deeply to read.", "Each line must be a flat paper object.") from None
        except ValueError as err:  # e.g. an integer with more digits than Python converts
            raise CorpusError(source, n, f"not valid JSON ({err}).") from None
        if not isinstance(obj, dict):
            raise CorpusError(source, n, "each line must be a JSON object with 'title' and 'abstract'.")
        fields = {}
        for key in ("title", "abstract"):
            value = obj.get(key)
            if not isinstance(value, str) or not value.strip():
                raise CorpusError(source, n, f"missing or empty '{key}'.", "Every paper needs a title and an abstract.")
            fields[key] = " ".join(value.replace("\x00", "").split())
        date = obj.get("date")
        urls = obj.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise CorpusError(source, n, "'urls' must be a list of strings.")
        abstract_urls = extract_urls(fields["abstract"])
        papers.append(
            Paper(
                id=paper_id(fields["title"], fields["abstract"]),
                title=fields["title"],
                abstract=fields["abstract"],
                authors=_int_field(obj.get("authors"), source, n, "authors"),
                date=str(date) if date is not None else None,
                upvotes=_int_field(obj.get("upvotes"), source, n, "upvotes"),
                urls=abstract_urls + [u for u in urls if u not in abstract_urls and web_link(u)],
                sources=[source],
            )
        )
    if not papers:
        raise CorpusError(source, None, "no papers found (the file is empty).")
    return papers


def parse_file(path: Path) -> list[Paper]:
    """Papers in one file, chosen by suffix (.txt or .jsonl)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(
            path, None, f"unsupported file type '{suffix or '(none)'}'.", "Use .txt listings or .jsonl files."
        )
    text = _read(path)
    if suffix == ".jsonl":
        return parse_jsonl(text, source=path.name)
    return parse_listing(text, source=path.name)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named, with directories expanded to their .txt and .jsonl files (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise CorpusError(path, None, "the folder holds no .txt or .jsonl paper files.")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise CorpusError(path, None, "no such file or folder.")
    return files


def merge(papers: Sequence[Paper]) -> list[Paper]:
    """One record per paper: repeats (same title and abstract) merge, keeping the richest metadata.

    A title seen again with a *different* abstract is kept as a separate paper: nothing is dropped.
    """
    merged: dict[str, Paper] = {}
    for paper in papers:
        seen = merged.get(paper.id)
        if seen is None:
            merged[paper.id] = paper.model_copy(deep=True)
            continue
        for name in ("authors", "date", "upvotes"):
            if getattr(seen, name) is None and getattr(paper, name) is not None:
                setattr(seen, name, getattr(paper, name))
        seen.urls += [u for u in paper.urls if u not in seen.urls]
        seen.sources += [s for s in paper.sources if s not in seen.sources]
    return list(merged.values())


def load_papers(paths: Iterable[Path]) -> list[Paper]:
    """Parse every file under ``paths`` and merge repeats; raises CorpusError on the first bad file."""
    found: list[Paper] = []
    for file in expand_paths(paths):
        found.extend(parse_file(file))
    return merge(found)
