"""Tests of the pure parsers and renderers (ocfs2lab.formats)."""
