"""Question normalisation and tokenisation: the original's ``nltk.word_tokenize`` without a data download.

dualvgr-original.md §1.2 steps 1-2: ``q = question.lower()[:-1]`` (the last character is dropped unconditionally,
on the assumption that it is ``?``; §5 B36), then ``nltk.word_tokenize(q)``.

``word_tokenize`` is Punkt sentence splitting followed by nltk's improved Treebank tokenizer
(``NLTKWordTokenizer``) on each sentence. The Treebank part needs no data; Punkt needs the ``punkt_tab``
download that nltk >= 3.9 raises ``LookupError`` for (B8). Skipping the splitter is *not* equivalent: the Treebank
tokenizer detaches only the text's final period, so ``"what is the man doing. where is he"`` gives ``doing .``
after Punkt splits but ``doing.`` without it, and the same holds for ``3. administrators``, ``(it.) now`` or
``"stop." then``; ``mr. smith``, ``u.s. army`` or ``a. b`` are not split by Punkt, and there both agree. So we run
nltk's own Punkt algorithm with the English model's parameters embedded in :mod:`dualvgr.text.punkt_english`,
reduced to what lower-case text consults. On lower-case text the tokens equal ``nltk.word_tokenize`` of the
installed nltk (tested against the real function with the full model); upper-case text is refused.

Tokens can differ between nltk versions (B8): to evaluate an original checkpoint, import its vocabulary.
"""

from __future__ import annotations

from importlib.metadata import version

from dualvgr.text import punkt_english

QUESTION_MARK = "?"


def normalise_question(question: str) -> str:
    """The original normalisation: lower-case, then drop the last character whatever it is (§1.2 step 1, B36)."""
    return question.lower()[:-1]


class _ZeroDefault(dict):
    """An orthographic-context table whose missing words read as 0 without being inserted (a ``defaultdict``
    would grow with every word looked up)."""

    def __missing__(self, key: str) -> int:
        return 0


class QuestionTokenizer:
    """``nltk.word_tokenize(text)`` for lower-case text, from the embedded English Punkt model (no download)."""

    def __init__(self) -> None:
        # Imported here: importing nltk takes seconds and ~180 MB (it pulls in scipy), which readers of the encoded
        # questions (the trainer) should not pay.
        from nltk.tokenize.destructive import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

        params = PunktParameters()
        params.abbrev_types = set(punkt_english.ABBREV_TYPES)
        params.collocations = set(punkt_english.COLLOCATIONS)
        params.sent_starters = set(punkt_english.SENT_STARTERS)
        params.ortho_context = _ZeroDefault(punkt_english.ORTHO_CONTEXT)
        self._sentences = PunktSentenceTokenizer(params)
        self._words = NLTKWordTokenizer()

    def __call__(self, text: str) -> list[str]:
        # Not `any(c.isupper())`: 'ℂ' is upper-case but lower() keeps it, and it reads 0 in the full model too.
        if text != text.lower():
            raise ValueError(
                f"tokenize() got {text!r}, which has upper-case characters: it reproduces nltk.word_tokenize "
                f"only on lower-case text (its Punkt model is embedded for lower-case input, B8) — "
                f"lower-case the text first, as normalise_question() does"
            )
        return [token for sentence in self._sentences.tokenize(text) for token in self._words.tokenize(sentence)]

    @property
    def description(self) -> str:
        """What produced the tokens, for run metadata (tokens depend on the nltk version, B8)."""
        return f"nltk {version('nltk')} word_tokenize (punkt_tab english, embedded)"


def tokenize(question: str, tokenizer: QuestionTokenizer | None = None) -> list[str]:
    """The tokens ``nltk.word_tokenize(question)`` gives, without downloading ``punkt_tab`` (B8).

    ``question`` must not contain upper-case characters (normalise it first); pass a ``tokenizer`` to reuse one
    across many questions.
    """
    return (tokenizer or QuestionTokenizer())(question)
