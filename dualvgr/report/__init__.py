"""The reproduction report: train runs in the tracking store -> ``reports/<experiment>/``.

Modules, in the order the report is made: ``paper`` (the published tables as data, with their source),
``ledger`` (the original's bugs fixed and quirks kept, as data), ``collect`` (select runs), ``stats`` (mean,
std, t-interval, verdict), ``results`` (per-type accuracies, ``results.csv``), ``audit`` + ``evidence``
(fidelity audit; vocabulary in ``findings``), ``provenance``, ``figures`` (PNG), ``sections`` (the document),
``render`` (Markdown and self-contained HTML), ``stage`` (``REPORT_STAGE`` and :func:`write_report`).
"""
