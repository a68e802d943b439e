"""Around the lecture: the pipeline notebooks 5–6 start from, checkpoints, instructor mode and ``prepare``,
the book's own numbers, deployment measurements, offline slides, ``show_source`` and the command line."""
