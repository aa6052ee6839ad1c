"""Outputs that downstream tools take as they are: label maps in other label sets, grouped
masks, try-on agnostic masks, per-person scoping and COCO RLE.

The rule tables (``label_sets``, ``mask_rules``) are standard library only, so the CLI can
check its arguments without numpy; the pixel work is in the other modules. ``ParsingResult``
(``m2fp.results.parsing_result``) exposes all of it as methods.
"""
