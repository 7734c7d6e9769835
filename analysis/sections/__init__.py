"""The report's sections, one module per concern; the order they are shown
in is :mod:`analysis.sections.report_order`."""
