"""dlrun report: run folders -> pandas -> findings, tables and figures in one HTML page.

load (read run folders) -> study (settings, metric, seed aggregates) -> curves,
sweep, bias_variance, layers (figures) + findings + tables -> html; cli ties
them together. Every plot_* function returns a matplotlib Figure.
"""
