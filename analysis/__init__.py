"""Analysis of a grid's results: re-evaluation, statistics and the report.

Figures are drawn off-screen: the matplotlib backend is chosen here, once,
before any module of the package imports ``matplotlib.pyplot``.
"""
import matplotlib

matplotlib.use('Agg')
