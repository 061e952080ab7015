"""The reproduction report: train runs in the tracking store -> ``reports/<experiment>/``.

Modules, in the order the report is made: ``paper`` (the published tables as data: their columns, data set,
split sizes and source; the report's columns and everything it knows about a data set come from there),
``ledger`` (the original's bugs fixed and quirks kept, as data), ``collect`` (select runs), ``stats`` (mean,
std, t-interval, verdict), ``results`` (accuracies per question type or category, ``results.csv``), ``audit``
+ ``evidence`` (fidelity audit; vocabulary in ``findings``), ``provenance``, ``figures`` (PNG), ``sections``
(the document), ``render`` (Markdown and self-contained HTML), ``stage`` (``REPORT_STAGE`` and
:func:`write_report`).
"""
