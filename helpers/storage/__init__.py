"""Where the workbook keeps its files, how it writes and checks them, and how it downloads: below everything else.

Any part of ``helpers`` may import this; it imports nothing else from ``helpers``.
"""
