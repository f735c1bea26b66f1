"""``bert-serving-benchmark``: how fast a server answers as one setting varies at a time.

``experiments`` says what varies, ``load`` makes sentences and times concurrent clients,
``runner`` starts a server per setting and measures each point, ``machine`` describes
where it ran, ``report`` writes tables, JSON and CSV, and ``plots`` draws one PNG per
experiment.
"""
