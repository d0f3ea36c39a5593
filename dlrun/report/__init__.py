"""`dlrun report`: run and sweep folders turned into figures, tables and an HTML page.

cli (the command), figures (which figures a study gets), html, tables, style
(one matplotlib style for every figure), and one module per kind of figure:
curves, sweep, layers, rates, findings, bias_variance, double_descent,
published. A new figure is a function here, planned in figures.py.

May import claims (verdicts on the page) and every layer below it.
"""
