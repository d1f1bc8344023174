"""The answer HTML: list and comparison rows, withheld answers, related facts, the Papers tab; all escaped."""

from __future__ import annotations

from html.parser import HTMLParser

from paperchat.rag import prompts
from paperchat.rag.answer import Answer, AnswerRow, Citation, Related, Timings
from paperchat.rag.corpus import Paper
from paperchat.rag.critique import ClaimCheck
from paperchat.ui.render import (
    BADGES,
    MISSING_SIDE,
    RELATED_LABEL,
    answer_html,
    ask_about,
    badge,
    date_key,
    paper_html,
    paper_row,
    rows_html,
)

HOSTILE = 'Evil <script>alert(1)</script> <img src=x onerror="alert(2)"> Paper'
RED = "#cf222e"


class Tags(HTMLParser):
    """The element structure of a piece of HTML: tags with their classes, and the text inside each."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, str]] = []
        self.stack: list[str] = []
        self.text_in: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        self.tags.append((tag, cls))
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            self.stack.reverse()
            self.stack.remove(tag)
            self.stack.reverse()

    def handle_data(self, data):
        for tag in self.stack:
            self.text_in[tag] = self.text_in.get(tag, "") + data

    def count(self, tag: str, cls: str = "") -> int:
        return sum(1 for t, c in self.tags if t == tag and (not cls or cls in c.split()))


def citation(n: int, title: str) -> Citation:
    return Citation(n=n, title=title, paper_id=f"p{n}", abstract=f"Abstract of {title}.")


def make(**fields) -> Answer:
    base = dict(
        question="q", standalone_question="q", answer="Summary [1][2].", verdict="supported", citations=[],
        claims=[], draft="d", timings=Timings(first_token=0.5, total=1.0),
    )
    base.update(fields)
    return Answer(**base)


def test_list_answer_renders_each_paper_as_a_list_item_with_its_checked_statement():
    a = make(
        shape="list",
        citations=[citation(1, "SPELL: Self-Play"), citation(2, "SPaR: Tree search")],
        rows=[
            AnswerRow(label="SPELL: Self-Play", text="SPELL uses self-play for long contexts [1].", sources=[1]),
            AnswerRow(label="SPaR: Tree search", text="SPaR refines with tree search", sources=[2]),
        ],
    )
    out = answer_html(a)
    tags = Tags(out)
    assert tags.count("ul", "pc-list") == 1 and tags.count("li", "pc-row") == 2
    assert "<li class=\"pc-row\"><b>SPELL: Self-Play</b> — SPELL uses self-play for long contexts [1].</li>" in out
    assert "SPaR refines with tree search [2]" in out  # marks added where the statement carried none
    assert out.index("Summary [1][2].") < out.index("pc-list") < out.index("pc-badge")  # summary above, badge below
    assert tags.count("table") == 0


def test_comparison_renders_a_table_with_side_statement_and_source():
    a = make(
        shape="comparison",
        verdict="partially supported",
        citations=[citation(1, "SPELL: Self-Play")],
        rows=[
            AnswerRow(label="SPELL", text="SPELL reaches 60.1 on LongBench [1].", sources=[1]),
            AnswerRow(label="AlphaZero", text="", missing=True),
        ],
    )
    out = rows_html(a)
    tags = Tags(out)
    assert tags.count("table", "pc-comparison") == 1
    assert tags.text_in["thead"] == "SideWhat its paper statesSource"
    assert tags.count("tr", "pc-row") == 2 and tags.count("tr", "pc-row-missing") == 1
    assert "SPELL reaches 60.1 on LongBench [1]." in out and "[1] SPELL: Self-Play" in out
    assert f'<span class="pc-missing">{MISSING_SIDE}</span>' in out
    assert MISSING_SIDE == "not stated in the papers"


def test_no_rows_means_no_list_or_table():
    out = answer_html(make(shape="factoid"))
    assert "pc-rows" not in out and "<table" not in out


def test_hostile_titles_and_statements_in_rows_are_escaped():
    for shape in ("list", "comparison"):
        a = make(
            shape=shape,
            citations=[citation(1, HOSTILE)],
            rows=[AnswerRow(label=HOSTILE, text=f"{HOSTILE} does x [1].", sources=[1]), AnswerRow(label=HOSTILE, text="", missing=True)],
            related=[Related(n=1, title=HOSTILE, sentence=HOSTILE)],
        )
        out = answer_html(a)
        tags = Tags(out)
        assert tags.count("script") == 0 and tags.count("img") == 0, shape
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
        assert "onerror=" not in out.replace("onerror=&quot;", "")  # only ever as escaped text


def test_withheld_answer_reads_as_withheld_not_as_a_red_accusation():
    claim = ClaimCheck(
        text="SPELL extends the context to 128k tokens.", cited=[1], sources=[], verdict="unsupported",
        reasons=["'128k' is not in source [1]", prompts.REMOVED_NOTE],
    )
    a = make(answer=prompts.REFUSAL, verdict="not supported", claims=[claim], removed=1)
    out = answer_html(a)
    assert "withheld: not supported by the abstracts" in Tags(badge("not supported")).text_in["span"]
    assert RED not in out and BADGES["not supported"][1] != RED
    assert 'class="pc-badge pc-verdict-not-supported"' in out  # the class the browser tests use stays
    assert prompts.WITHHELD in out  # the text says the draft was withheld, even when the answer lacks it
    assert "1 claim withheld" in out and "removed" not in out
    assert "⊘ withheld" in out and "✖" not in out
    assert "&#x27;128k&#x27; is not in source [1]" in out  # the reason stays (escaped)
    assert "(the draft cited [1])" in out  # what it cited, not shown as a support mark


def test_partially_supported_answers_still_say_removed():
    kept = ClaimCheck(text="SPELL uses self-play.", cited=[1], sources=[1], verdict="supported")
    dropped = ClaimCheck(text="It has 9 authors.", cited=[1], verdict="unsupported", reasons=[prompts.REMOVED_NOTE])
    out = answer_html(make(verdict="partially supported", claims=[kept, dropped], removed=1))
    assert "1 claim removed" in out and "✖ removed" in out and "withheld" not in out


def test_refused_badge_says_not_in_the_abstracts():
    assert "not in the abstracts" in badge("refused")
    assert RED not in badge("refused")


def test_related_facts_are_shown_labelled_under_a_withheld_answer():
    a = make(
        answer=f"{prompts.REFUSAL} {prompts.WITHHELD}",
        verdict="not supported",
        related=[Related(n=2, title="SPELL: Self-Play", sentence="SPELL integrates three roles.")],
    )
    out = answer_html(a)
    tags = Tags(out)
    assert tags.count("div", "pc-related") == 1
    assert RELATED_LABEL == "What the abstracts do state (not an answer to the question):"
    assert RELATED_LABEL in tags.text_in["div"]
    assert "SPELL integrates three roles." in out and "[2] SPELL: Self-Play" in out
    assert out.count(prompts.WITHHELD) == 1  # not repeated when the answer already says it
    assert "pc-related" not in answer_html(make())


def test_papers_tab_rows_panel_and_question():
    paper = Paper(
        id="p1", title=f"SPELL: {HOSTILE}", abstract=f"We propose {HOSTILE}.", authors=8, date="Sep 28",
        upvotes=None, urls=["https://github.com/x/spell", 'javascript:alert(1)"><script>'],
    )
    row = paper_row(paper)
    assert row[:4] == [paper.title, "Sep 28", 8, None]  # text columns are shown as text by the table
    links = Tags(row[4])
    assert links.count("a") == 1 and 'href="https://github.com/x/spell"' in row[4] and "<script>" not in row[4]
    panel = paper_html(paper)
    tags = Tags(panel)
    assert tags.count("script") == 0 and tags.count("img") == 0
    assert "8 authors" in panel and "upvotes not listed" in panel and "Sep 28" in panel
    assert "We propose Evil &lt;script&gt;" in panel
    assert ask_about(paper) == 'What does "SPELL" propose?'


def test_date_sort_puts_dated_papers_newest_first_and_undated_last():
    dates = ["Dec 12", "Jun 16, 2024", None, "May 27, 2022", "Dec 4, 2017"]
    assert sorted(dates, key=date_key, reverse=True) == ["Jun 16, 2024", "May 27, 2022", "Dec 4, 2017", "Dec 12", None]
